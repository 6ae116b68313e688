"""The personal iCalendar feed (RFC 5545): planned and done activities, and customer follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from django.conf import settings
from django.utils.translation import gettext as _

from .models import ActivityStatus

DEFAULT_DURATION = timedelta(minutes=30)


def _domain() -> str:
    return settings.SITE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "crm.localhost"


def _url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def build_feed(*, user, activities, follow_ups, now: datetime) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Sales CRM//Activities//ZH")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", _("CRM · %(name)s") % {"name": user.display_name})
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    stamp = now.astimezone(UTC)
    domain = _domain()
    for activity in activities:
        start = activity.slot_at
        event = icalendar.Event()
        event.add("uid", f"activity-{activity.pk}@{domain}")
        event.add("dtstamp", stamp)
        event.add("last-modified", activity.updated_at.astimezone(UTC))
        event.add("dtstart", start.astimezone(UTC))
        event.add("dtend", (start + timedelta(minutes=activity.duration_minutes or 30)).astimezone(UTC))
        event.add("summary", f"{activity.kind} · {activity.subject} · {activity.customer.name}")
        lines = [str(activity.customer.name)]
        if activity.contact_id:
            lines.append(_("Contact: %(name)s") % {"name": activity.contact.name})
        if activity.notes:
            lines.append(activity.notes)
        if activity.next_step:
            lines.append(_("Next step: %(step)s") % {"step": activity.next_step})
        event.add("description", "\n".join(lines))
        event.add("url", _url(activity.get_absolute_url()))
        event.add("categories", [str(activity.kind)])
        event.add("status", "CONFIRMED")
        if activity.status == ActivityStatus.DONE:
            event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    for customer in follow_ups:
        start = customer.next_follow_up_at
        event = icalendar.Event()
        event.add("uid", f"follow-up-{customer.pk}-{int(start.timestamp())}@{domain}")
        event.add("dtstamp", stamp)
        event.add("dtstart", start.astimezone(UTC))
        event.add("dtend", (start + DEFAULT_DURATION).astimezone(UTC))
        event.add("summary", _("Follow up: %(customer)s") % {"customer": customer.name})
        event.add("url", _url(customer.get_absolute_url()))
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return calendar.to_ical()
