"""Small display helpers of the pipeline pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()


@register.filter
def money(value) -> str:
    """12345.6 → "12,346" (whole units: the board and lists show orders of magnitude)."""
    if value in (None, ""):
        return ""
    return f"{Decimal(value):,.0f}"


@register.filter
def duration(value) -> str:
    """Seconds or a timedelta, as "3 days", "5 hours" or "12 minutes"."""
    if value in (None, ""):
        return ""
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value)
    if seconds >= 86400:
        days = seconds // 86400
        return ngettext("%(n)s day", "%(n)s days", days) % {"n": days}
    if seconds >= 3600:
        hours = seconds // 3600
        return ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}
    minutes = max(1, seconds // 60) if seconds else 0
    return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}


@register.simple_tag
def days_in_stage(opportunity, now) -> int:
    return opportunity.days_in_stage(now)


@register.simple_tag
def is_stalled(opportunity, now) -> bool:
    return opportunity.is_stalled(now)


@register.filter
def stage_class(stage) -> str:
    if stage.is_won:
        return "text-bg-success"
    if stage.is_lost:
        return "text-bg-secondary"
    return "text-bg-primary"


@register.filter
def priority_class(score) -> str:
    score = score or 0
    if score >= 70:
        return "text-bg-danger"
    if score >= 40:
        return "text-bg-warning"
    return "text-bg-light border"


@register.simple_tag
def stalled_label() -> str:
    return _("Stalled")
