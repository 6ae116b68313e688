"""Our reminder sources, declared on ActivitiesConfig.reminder_sources and collected by the notifications
app's minute scan (which imports nothing of ours: it calls these by their dotted paths).

- planned activities: due the owner's lead minutes (preference, default 30) before the planned time;
- customers reaching their next follow-up date (the owner);
- stalled deals (`Opportunity.stalled_since`, set by the opportunities stall scan; the owner);
- the weekly review digest (定期复盘): Monday 09:00 for each manager, see activities/digest.py.

Each collect returns the items whose event time falls in the window it is given; each render returns the
message in the active language, or None when the reminder became moot (activity done, cancelled or moved;
follow-up date changed; deal moved on), and nothing is sent.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role, User
from leads.models import Customer
from opportunities.models import Opportunity, StageKind

from .models import Activity, ActivityStatus

DIGEST_WEEKDAY = 0  # Monday
DIGEST_TIME = time(9, 0)
STALLED_LOOKBACK = timedelta(days=30)


def _local(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


# --- planned activities -----------------------------------------------------------------------


def planned_collect(*, start: datetime, end: datetime) -> list[dict]:
    activities = (
        Activity.objects.filter(
            status=ActivityStatus.PLANNED, planned_at__gte=start, planned_at__lte=end, owner__is_active=True
        )
        .only("id", "owner_id", "planned_at", "updated_at")
        .order_by("planned_at")
    )
    return [
        {
            "key": f"activity:{activity.pk}",
            "recipient_id": activity.owner_id,
            "at": activity.planned_at,
            "changed_at": activity.updated_at,
            "target": activity,
        }
        for activity in activities
    ]


def planned_render(reminder) -> dict | None:
    activity = (
        Activity.objects.select_related("kind", "customer", "contact").filter(pk=reminder.object_id).first()
    )
    if (
        activity is None
        or activity.status != ActivityStatus.PLANNED
        or activity.planned_at != reminder.event_at
        or activity.owner_id != reminder.recipient_id
    ):
        return None
    lines = [str(activity.customer.name)]
    if activity.contact_id:
        lines.append(_("Contact: %(name)s") % {"name": activity.contact.name})
    if activity.notes:
        lines.append(activity.notes)
    return {
        "title": _("%(kind)s at %(time)s: %(subject)s")
        % {"kind": activity.kind, "time": timezone.localtime(activity.planned_at).strftime("%H:%M"),
           "subject": activity.subject},
        "body": "\n".join(lines),
        "link": activity.get_absolute_url(),
    }


# --- follow-ups -------------------------------------------------------------------------------


def follow_up_collect(*, start: datetime, end: datetime) -> list[dict]:
    customers = Customer.objects.filter(
        owner__isnull=False, owner__is_active=True, next_follow_up_at__gte=start, next_follow_up_at__lte=end
    ).only("id", "owner_id", "next_follow_up_at")
    return [
        {
            "key": f"customer:{customer.pk}",
            "recipient_id": customer.owner_id,
            "at": customer.next_follow_up_at,
            "target": customer,
        }
        for customer in customers
    ]


def follow_up_render(reminder) -> dict | None:
    customer = Customer.objects.filter(pk=reminder.object_id).first()
    if (
        customer is None
        or customer.owner_id != reminder.recipient_id
        or customer.next_follow_up_at != reminder.event_at
    ):
        return None
    body = [_("Tier %(tier)s") % {"tier": customer.tier}]
    if customer.last_contacted_at:
        body.append(_("Last contact: %(when)s") % {"when": _local(customer.last_contacted_at)})
    else:
        body.append(_("Not contacted yet."))
    return {
        "title": _("Follow up with %(customer)s") % {"customer": customer.name},
        "body": "\n".join(body),
        "link": customer.get_absolute_url(),
    }


# --- stalled deals ----------------------------------------------------------------------------


def stalled_collect(*, start: datetime, end: datetime) -> list[dict]:
    """Open deals flagged stalled in the last 30 days. The stall scan sets `stalled_since` to the moment
    the deal crossed its stage's limit, which can lie before our window, so the window is not used for
    the event time; the reminder is due when we first see the flag (`changed_at`)."""
    deals = Opportunity.objects.filter(
        stage__kind=StageKind.OPEN,
        stalled_since__isnull=False,
        stalled_since__gte=end - STALLED_LOOKBACK,
        owner__is_active=True,
    ).only("id", "owner_id", "stalled_since")
    return [
        {
            "key": f"opportunity:{deal.pk}",
            "recipient_id": deal.owner_id,
            "at": deal.stalled_since,
            "changed_at": end,
            "target": deal,
        }
        for deal in deals
    ]


def stalled_render(reminder) -> dict | None:
    deal = Opportunity.objects.select_related("stage", "customer").filter(pk=reminder.object_id).first()
    if (
        deal is None
        or deal.stalled_since != reminder.event_at
        or deal.stage.kind != StageKind.OPEN
        or deal.owner_id != reminder.recipient_id
    ):
        return None
    return {
        "title": _("Deal stalled: %(title)s") % {"title": deal.title},
        "body": _("%(customer)s · in stage “%(stage)s” since %(since)s, past its time limit.")
        % {"customer": deal.customer.name, "stage": deal.stage.name, "since": _local(deal.stage_entered_at)},
        "link": deal.get_absolute_url(),
    }


# --- weekly review digest ---------------------------------------------------------------------


def digest_times(start: datetime, end: datetime) -> list[datetime]:
    """The Mondays 09:00 (local time) in [start, end]."""
    tz = timezone.get_current_timezone()
    day = timezone.localdate(start)
    times = []
    while day <= timezone.localdate(end):
        if day.weekday() == DIGEST_WEEKDAY:
            moment = datetime.combine(day, DIGEST_TIME, tzinfo=tz)
            if start <= moment <= end:
                times.append(moment)
        day += timedelta(days=1)
    return times


def digest_collect(*, start: datetime, end: datetime) -> list[dict]:
    moments = digest_times(start, end)
    if not moments:
        return []
    managers = list(User.objects.filter(role=Role.MANAGER, is_active=True).values_list("pk", flat=True))
    return [
        {
            "key": f"digest:{timezone.localdate(moment).isoformat()}",
            "recipient_id": manager_id,
            "at": moment,
            "data": {"week_start": (timezone.localdate(moment) - timedelta(days=7)).isoformat()},
        }
        for moment in moments
        for manager_id in managers
    ]


def digest_render(reminder) -> dict | None:
    from . import digest

    manager = reminder.recipient
    if not manager.is_active or manager.role != Role.MANAGER:
        return None
    week_start = date.fromisoformat(reminder.data["week_start"])
    return digest.render(digest.build(manager=manager, week_start=week_start))
