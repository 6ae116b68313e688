"""contracts.demo: contracts and payments for the demo's won deals; idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contracts import demo
from contracts.models import Contract, ContractStatus, PaymentReceipt
from opportunities.models import Opportunity, StageKind
from tests.opportunities.factories import make_opportunity, stage

pytestmark = pytest.mark.django_db


def won_deal(owner, days_ago: int, amount="300000.00"):
    deal = make_opportunity(owner, amount=amount)
    Opportunity.objects.filter(pk=deal.pk).update(
        stage=stage(StageKind.WON), closed_at=timezone.now() - timedelta(days=days_ago))
    return deal


class TestSeed:
    def test_won_deals_get_signed_contracts_and_payments(self, org):
        deals = [won_deal(org.rep_a, 200), won_deal(org.rep_b, 90, amount="800000.00"), won_deal(org.rep_a2, 1)]
        summary = demo.seed(seed=2026)
        assert "3 contracts" in summary
        for deal in deals:
            contract = Contract.objects.get(opportunity=deal)
            assert contract.status in (ContractStatus.SIGNED, ContractStatus.ACTIVE, ContractStatus.COMPLETED)
            assert contract.attachments.filter(kind="signed_scan").exists()
            assert sum(i.amount for i in contract.instalments.all()) == contract.total_amount
            assert contract.approvals.filter(action="approved").exists()
        assert PaymentReceipt.objects.exists()
        big = Contract.objects.get(opportunity=deals[1])
        assert big.approvals.filter(action="approved", level="admin").exists(), "above the threshold: two levels"

    def test_idempotent(self, org):
        won_deal(org.rep_a, 100)
        demo.seed(seed=1)
        counts = (Contract.objects.count(), PaymentReceipt.objects.count())
        demo.seed(seed=1)
        assert (Contract.objects.count(), PaymentReceipt.objects.count()) == counts
