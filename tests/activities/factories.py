from datetime import timedelta

import factory
from django.utils import timezone

from activities.models import Activity, ActivityKind, ActivityStatus
from leads.models import Contact
from tests.factories import CustomerFactory


def kind(code: str = "call") -> ActivityKind:
    """The kinds seeded by migration (call, visit, meeting, email, wechat, demo, note; see conftest)."""
    return ActivityKind.objects.get(code=code)


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
