from datetime import timedelta

import pytest
from django.utils import timezone

from activities.defaults import ensure_defaults
from opportunities.models import Opportunity
from opportunities.services import opportunity_create


@pytest.fixture
def make_deal():
    """A deal through the opportunities service; `stalled=True` flags it as the stall scan would."""

    def make(customer, owner, *, stalled=False, title="Deal"):
        deal = opportunity_create(user=owner, customer=customer, title=title, owner=owner)
        if stalled:
            since = timezone.now() - timedelta(days=2)
            Opportunity.objects.filter(pk=deal.pk).update(stalled_since=since,
                                                          stage_entered_at=since - timedelta(days=30))
            deal.refresh_from_db()
        return deal

    return make


@pytest.fixture(autouse=True)
def activity_defaults(request):
    """The seeded kinds and the onboarding template, put back if a transactional test (of any app) that
    ran before in this process flushed them."""
    if request.node.get_closest_marker("django_db"):
        request.getfixturevalue("transactional_db" if request.node.get_closest_marker("django_db").kwargs.get(
            "transaction") else "db")
        ensure_defaults()
