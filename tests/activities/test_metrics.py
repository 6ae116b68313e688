"""The tier metric we give the leads app: done activities (not notes) in the last 90 days."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activities import services
from activities.metrics import activities_90d
from leads.tiering import registered_metrics
from tests.factories import CustomerFactory

from .factories import ActivityFactory, kind


@pytest.mark.django_db
def test_activities_90d(org):
    now = timezone.now()
    busy, quiet = CustomerFactory(owner=org.rep_a), CustomerFactory(owner=org.rep_a)
    for days in (1, 30, 89):
        services.activity_log(by=org.rep_a, customer=busy, kind=kind("call"), subject="c",
                              done_at=now - timedelta(days=days))
    services.activity_log(by=org.rep_a, customer=busy, kind=kind("call"), subject="old",
                          done_at=now - timedelta(days=91))
    services.activity_log(by=org.rep_a, customer=busy, kind=kind("note"), subject="note")
    ActivityFactory(customer=busy)  # planned, not done
    assert activities_90d([busy.pk, quiet.pk]) == {busy.pk: 3}
    assert registered_metrics()["activities_90d"].func is activities_90d
