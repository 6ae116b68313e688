"""Factories for the after-sales tests."""

from datetime import datetime

import factory
from django.utils import timezone

from aftersales import services
from aftersales.models import Priority, Ticket, TicketKind
from leads.models import Contact
from tests.factories import CustomerFactory


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.LazyAttribute(lambda o: f"{o.name.lower().replace(' ', '.')}@customer.example.com")


def kind(code: str = "repair") -> TicketKind:
    """A kind seeded by the migration (re-created after a transactional test flushed the tables)."""
    return TicketKind.objects.get_or_create(code=code, defaults={"name": code, "name_en": code.title()})[0]


def make_ticket(
    *,
    customer=None,
    owner=None,
    priority: str = Priority.NORMAL,
    now: datetime | None = None,
    subject: str = "Printer jams",
    contact=None,
    created_by=None,
    **kwargs,
) -> Ticket:
    """A ticket opened through the service (so it has its SLA snapshot and its opening row)."""
    customer = customer or CustomerFactory(owner=owner)
    return services.ticket_create(
        customer=customer,
        kind=kwargs.pop("kind", None) or kind(),
        subject=subject,
        priority=priority,
        owner=owner,
        contact=contact,
        created_by=created_by,
        now=now or timezone.now(),
        **kwargs,
    )
