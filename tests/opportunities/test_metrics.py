"""The tier metrics opportunities registers with leads.tiering."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from leads import tiering
from opportunities.metrics import open_weighted_pipeline, won_revenue_12m
from opportunities.models import Opportunity
from tests.factories import CustomerFactory
from tests.opportunities.factories import make_opportunity


@pytest.mark.django_db
class TestTierMetrics:
    def test_registered_with_leads(self):
        metrics = tiering.registered_metrics()
        assert metrics["won_revenue_12m"].func is won_revenue_12m
        assert metrics["open_weighted_pipeline"].func is open_weighted_pipeline

    def test_open_weighted_pipeline_is_amount_times_probability(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        make_opportunity(org.rep_a, customer=customer, amount=Decimal("10000.00"))
        make_opportunity(org.rep_a, customer=customer, amount=Decimal("5000.00"))
        other = CustomerFactory(owner=org.rep_a)
        expected = sum(o.amount * o.probability / 100 for o in Opportunity.objects.filter(customer=customer))
        assert open_weighted_pipeline([customer.pk, other.pk]) == {customer.pk: expected}

    def test_won_revenue_counts_only_deals_won_in_the_last_year(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        recent = make_opportunity(org.rep_a, customer=customer, amount=Decimal("8000.00"))
        old = make_opportunity(org.rep_a, customer=customer, amount=Decimal("3000.00"))
        won = Opportunity._meta.get_field("stage").related_model.objects.get(
            pipeline=recent.pipeline, kind="won"
        )
        now = timezone.now()
        # Put both deals in the won stage directly in SQL (the win rule needs a signed contract,
        # which is not what this metric is about).
        Opportunity.objects.filter(pk=recent.pk).update(stage_id=won.pk, closed_at=now - timedelta(days=30))
        Opportunity.objects.filter(pk=old.pk).update(stage_id=won.pk, closed_at=now - timedelta(days=400))
        assert won_revenue_12m([customer.pk]) == {customer.pk: Decimal("8000.00")}
