"""Overdue instalments as a reminder source of the notifications app (declared on
ContractsConfig.reminder_sources; notifications imports nothing of ours, it calls these by dotted path).

An unpaid instalment of a signed/active/completed contract is overdue from the day after its due date.
Its owner is reminded at REMIND_AT (local time) on that day and again every REMIND_EVERY_DAYS days while
it stays unpaid: each of those is one reminder event `instalment-<id>-<n>`, so the notifications app's
(source, key, recipient) uniqueness delivers each exactly once, and its collect window (which starts
where the previous successful scan ended) catches up after an outage.

`render` is asked again right before delivery: an instalment paid (or a contract terminated) in the
meantime cancels the reminder.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import COLLECTABLE_STATUSES, PaymentInstalment
from .selectors import instalments_overdue

SOURCE = "contracts.instalment_overdue"
REMIND_AT = time(9, 0)
REMIND_EVERY_DAYS = 7


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, REMIND_AT), timezone.get_current_timezone())


def reminder_days(start: datetime, end: datetime) -> list[date]:
    """The local days whose reminder time falls in the window (start, end]."""
    day = timezone.localdate(start) - timedelta(days=1)
    last = timezone.localdate(end)
    days = []
    while day <= last:
        if start < _at(day) <= end:
            days.append(day)
        day += timedelta(days=1)
    return days


def overdue_collect(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The overdue reminders whose time falls in (start, end]: on day d, every unpaid instalment due on
    d - 1, d - 8, d - 15, ... (one query per such day; none at all for a window without a reminder time)."""
    items: list[dict[str, Any]] = []
    for day in reminder_days(start, end):
        for instalment in instalments_overdue(today=day):
            late_days = (day - instalment.due_date).days  # 1, 8, 15, ... on reminder days
            if (late_days - 1) % REMIND_EVERY_DAYS:
                continue
            week = (late_days - 1) // REMIND_EVERY_DAYS
            items.append({
                "key": f"instalment-{instalment.pk}-{week}",
                "recipient_id": instalment.contract.owner_id,
                "at": _at(day),
                "target": instalment,
                "data": {"instalment_id": instalment.pk, "week": week},
            })
    return items


def overdue_render(reminder: Any) -> dict[str, str] | None:
    """The message (in the active language, the recipient's), or None when the instalment has been paid
    or the contract no longer collects."""
    instalment_id = (reminder.data or {}).get("instalment_id") or reminder.object_id
    instalment = (
        PaymentInstalment.objects.select_related("contract", "contract__customer")
        .filter(pk=instalment_id)
        .first()
    )
    if instalment is None or instalment.is_paid or instalment.contract.status not in COLLECTABLE_STATUSES:
        return None
    contract = instalment.contract
    return {
        "title": _("Overdue payment: %(number)s") % {"number": contract.number},
        "body": _("%(customer)s owes %(currency)s %(amount)s, due on %(due)s.") % {
            "customer": contract.customer.name, "currency": contract.currency, "amount": instalment.outstanding,
            "due": instalment.due_date.isoformat(),
        },
        "link": reverse("contracts:detail", args=[contract.pk]) + "#payments",
    }
