from datetime import timedelta

import factory
from django.utils import timezone

from activities.models import Activity, ActivityKind, ActivityStatus
from leads.models import Contact
from tests.factories import CustomerFactory


def kind(code: str = "call") -> ActivityKind:
    """The kinds are seeded by a data migration (call, visit, meeting, email, wechat, demo, note); a
    transactional test before this one may have flushed them, hence get_or_create."""
    return ActivityKind.objects.get_or_create(
        code=code, defaults={"name": code, "name_en": code.title(), "counts_as_contact": code != "note"}
    )[0]


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    kind = factory.LazyFunction(kind)
    subject = factory.Sequence(lambda n: f"Activity {n}")
    customer = factory.SubFactory(CustomerFactory)
    owner = factory.LazyAttribute(lambda o: o.customer.owner)
    status = ActivityStatus.PLANNED
    planned_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
