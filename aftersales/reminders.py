"""What after-sales tells the staff, through the one reminder mechanism of the notifications app.

Each function builds the message (in each recipient's language) and hands it to `_deliver`, the only
place that knows the notifications app's API (`notifications.services.notify`). The sources are declared
on AftersalesConfig.reminder_sources (labels for the admin and the bell). The (source, key, recipient)
triple is unique in the notifications app, so notifying the same event twice sends nothing new.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import User

from .models import ServicePlanItem, SlaKind, Ticket


def _language(user: User) -> str:
    return user.language or settings.LANGUAGE_CODE


# The reminder sources of this app (AftersalesConfig.reminder_sources names them for the admin).
SOURCE_PREFIX = "aftersales."


def _deliver(*, user: User, key: str, title: str, body: str, url: str, kind: str, target=None) -> None:
    """Hand one message to the reminder mechanism: delivered now, on the user's channels, once per key."""
    from notifications.services import notify

    notify(source=SOURCE_PREFIX + kind, key=key, recipient=user, title=title, body=body, link=url, target=target)


def _each(recipients, key: str, kind: str, url: str, build, target=None) -> None:
    seen: set[int] = set()
    for user in recipients:
        if user is None or user.pk in seen:
            continue
        seen.add(user.pk)
        with translation.override(_language(user)):
            title, body = build()
            _deliver(user=user, key=key, title=str(title), body=str(body), url=url, kind=kind, target=target)


def sla_breached(*, ticket: Ticket, kind: str, recipients: list[User], now: datetime) -> None:
    def build():
        what = _("response") if kind == SlaKind.RESPONSE else _("resolution")
        title = _("SLA breached (%(what)s): %(ticket)s") % {"what": what, "ticket": ticket}
        body = _("%(customer)s · the %(what)s was due %(due)s.") % {
            "customer": ticket.customer,
            "what": what,
            "due": _local(ticket.response_due_at if kind == SlaKind.RESPONSE else ticket.resolution_due_at),
        }
        return title, body

    _each(recipients, f"ticket-{ticket.pk}-{kind}", "sla_breach", ticket.get_absolute_url(), build, ticket)


def sla_approaching(*, ticket: Ticket, kind: str, recipients: list[User], now: datetime) -> None:
    def build():
        what = _("response") if kind == SlaKind.RESPONSE else _("resolution")
        due = ticket.response_due_at if kind == SlaKind.RESPONSE else ticket.resolution_due_at
        title = _("SLA deadline approaching (%(what)s): %(ticket)s") % {"what": what, "ticket": ticket}
        body = _("%(customer)s · the %(what)s is due %(due)s.") % {
            "customer": ticket.customer, "what": what, "due": _local(due),
        }
        return title, body

    _each(recipients, f"ticket-{ticket.pk}-{kind}", "sla_warning", ticket.get_absolute_url(), build, ticket)


def ticket_assigned(*, ticket_id: int) -> None:
    ticket = Ticket.objects.select_related("owner", "customer").get(pk=ticket_id)
    if ticket.owner is None:
        return

    def build():
        return (_("Ticket assigned to you: %(ticket)s") % {"ticket": ticket}, str(ticket.customer))

    _each([ticket.owner], f"ticket-{ticket.pk}-{int(ticket.updated_at.timestamp())}", "ticket_assigned",
          ticket.get_absolute_url(), build, ticket)


def _queue_watchers(ticket: Ticket) -> list[User]:
    if ticket.owner is not None:
        return [ticket.owner]
    manager = ticket.team.manager if ticket.team_id and ticket.team.manager_id else None
    return [manager] if manager is not None else []


def ticket_opened_by_customer(*, ticket_id: int) -> None:
    ticket = Ticket.objects.select_related("owner", "customer", "team__manager").get(pk=ticket_id)

    def build():
        return (_("New ticket from the customer: %(ticket)s") % {"ticket": ticket}, str(ticket.customer))

    _each(_queue_watchers(ticket), f"ticket-{ticket.pk}", "ticket_opened", ticket.get_absolute_url(), build, ticket)


def ticket_customer_replied(*, ticket_id: int) -> None:
    ticket = Ticket.objects.select_related("owner", "customer", "team__manager").get(pk=ticket_id)
    last = ticket.comments.filter(by_customer=True).order_by("-created_at", "-id").first()

    def build():
        return (_("The customer replied: %(ticket)s") % {"ticket": ticket}, (last.body[:200] if last else ""))

    _each(_queue_watchers(ticket), f"ticket-{ticket.pk}-comment-{last.pk if last else 0}", "ticket_reply",
          ticket.get_absolute_url(), build, ticket)


def plan_item_due(*, item: ServicePlanItem, recipients: list[User], now: datetime) -> None:
    from django.urls import reverse

    def build():
        return (
            _("Planned service due: %(title)s") % {"title": item.title},
            _("%(customer)s · due %(date)s") % {"customer": item.customer, "date": item.due_date.isoformat()},
        )

    _each(recipients, f"item-{item.pk}-{item.due_date.isoformat()}", "plan_item_due",
          reverse("aftersales:customer_plan", args=[item.customer_id]), build, item)


def _local(value: datetime | None) -> str:
    if value is None:
        return "-"
    from django.utils import timezone

    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
