from datetime import timedelta

import pytest
from django.utils import timezone

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
