"""Factories for the after-sales tests."""

import importlib
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


def ensure_default_rules() -> None:
    """The kinds, SLA policies, settings row and plan template the data migration seeds (idempotent).

    Another app's transactional test in the same worker flushes the tables (data included), so the
    after-sales tests put the defaults back before they run."""
    from django.apps import apps

    migration = importlib.import_module("aftersales.migrations.0002_default_rules")
    migration.forwards(apps, None)
