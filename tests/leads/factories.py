"""Factories for the customers tests (beside the shared ones in tests/factories.py)."""

import factory

from leads.models import Contact, FollowUpCadence, LeadSettings, SourceChannel, TierRule
from tests.factories import CustomerFactory

__all__ = ["ContactFactory", "CustomerFactory", "channel", "settings_row", "cadence", "rule"]


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")


def channel(code: str = "website", **kwargs) -> SourceChannel:
    """A source channel (the seeded rows vanish after a transactional test flushed the tables)."""
    obj, _created = SourceChannel.objects.get_or_create(code=code, defaults={"name": code.title()})
    for field, value in kwargs.items():
        setattr(obj, field, value)
    if kwargs:
        obj.save()
    return obj


def settings_row(**kwargs) -> LeadSettings:
    obj = LeadSettings.load()
    for field, value in kwargs.items():
        setattr(obj, field, value)
    obj.save()
    return obj


def cadence(tier: str, days: int) -> FollowUpCadence:
    obj, _created = FollowUpCadence.objects.update_or_create(tier=tier, defaults={"days": days})
    return obj


def rule(tier: str, metric: str, threshold) -> TierRule:
    return TierRule.objects.create(tier=tier, metric=metric, threshold=threshold)
