"""Signing wins the deal in the same transaction, and fails cleanly (nothing changes) when the deal
cannot be won; drafting from a deal in its last open stage; the win condition we register."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from contracts import selectors, services
from contracts.models import Contract, ContractStatus
from contracts.signals import contract_signed
from opportunities import rules as opportunity_rules
from opportunities import services as opportunity_services
from opportunities.models import StageChange, StageKind
from tests.opportunities.factories import advance_to, loss_reason, make_opportunity, open_stages

from .factories import days, line, pdf, to_status

pytestmark = pytest.mark.django_db


def deal_in_last_stage(owner, amount="120000.00"):
    opportunity = make_opportunity(owner, amount=amount, complete=True)
    return advance_to(opportunity, open_stages()[-1])


def contract_for(opportunity, amount="1000.00"):
    return services.contract_create(
        user=opportunity.owner, customer=opportunity.customer, opportunity=opportunity, title=opportunity.title,
        lines=[line(unit_price=amount)], instalments=[{"due_date": days(30), "amount": Decimal(amount)}],
    )


def sign(contract, user=None):
    return services.contract_sign(contract=contract, user=user or contract.owner, signed_on=days(0),
                                  our_signatory="张伟", customer_signatory="王总", scan=pdf())


class TestContractSignWinsTheDeal:
    def test_signing_wins_the_opportunity(self, org):
        opportunity = deal_in_last_stage(org.rep_a)
        contract = to_status(contract_for(opportunity), ContractStatus.APPROVED, org)
        signed = sign(contract)
        assert signed.status == ContractStatus.SIGNED
        opportunity.refresh_from_db()
        assert opportunity.stage.kind == StageKind.WON
        assert opportunity.closed_at is not None
        change = StageChange.objects.filter(opportunity=opportunity).latest("changed_at")
        assert (change.action, change.changed_by) == ("win", org.rep_a)

    def test_deal_moved_back_cannot_be_won_and_nothing_changes(self, org):
        """The deal left its last open stage after drafting: signing is refused with the reason, and
        neither the contract, nor its files, nor the deal change."""
        opportunity = deal_in_last_stage(org.rep_a)
        contract = to_status(contract_for(opportunity), ContractStatus.APPROVED, org)
        opportunity = opportunity_services.opportunity_move_back(opportunity=opportunity, user=org.rep_a,
                                                                 reason="客户重新评估 re-evaluating")
        stage_before = opportunity.stage_id
        changes_before = StageChange.objects.count()
        with pytest.raises(ValidationError) as info:
            sign(contract)
        assert info.value.code == "opportunity_not_winnable"
        assert "last open stage" in " ".join(info.value.messages)
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED
        assert contract.signed_on is None and contract.our_signatory == ""
        assert not contract.attachments.exists()
        opportunity.refresh_from_db()
        assert opportunity.stage_id == stage_before
        assert StageChange.objects.count() == changes_before
        assert contract.history.filter(status=ContractStatus.SIGNED).count() == 0

    def test_lost_deal_cannot_be_won(self, org):
        opportunity = deal_in_last_stage(org.rep_a)
        contract = to_status(contract_for(opportunity), ContractStatus.APPROVED, org)
        opportunity_services.opportunity_lose(opportunity=opportunity, user=org.rep_a, loss_reason=loss_reason())
        with pytest.raises(ValidationError):
            sign(contract)
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED

    def test_signed_signal_after_commit(self, org, django_capture_on_commit_callbacks):
        received = []

        def receiver(sender, contract, **kwargs):
            received.append(contract.pk)

        contract_signed.connect(receiver)
        try:
            contract = to_status(contract_for(deal_in_last_stage(org.rep_a)), ContractStatus.APPROVED, org)
            with django_capture_on_commit_callbacks(execute=True):
                sign(contract)
        finally:
            contract_signed.disconnect(receiver)
        assert received == [contract.pk]

    def test_the_sign_page_shows_the_reason(self, org, client_for):
        opportunity = deal_in_last_stage(org.rep_a)
        contract = to_status(contract_for(opportunity), ContractStatus.APPROVED, org)
        opportunity_services.opportunity_move_back(opportunity=opportunity, user=org.rep_a, reason="x")
        response = client_for(org.rep_a).post(reverse("contracts:sign", args=[contract.pk]), {
            "signed_on": days(0).isoformat(), "our_signatory": "张伟", "customer_signatory": "王总", "scan": pdf()})
        assert response.status_code == 200
        assert "its opportunity cannot be won" in response.content.decode()


class TestWinCondition:
    def test_registered(self):
        assert selectors.has_signed_contract in opportunity_rules.signed_contract_checks()

    def test_no_win_without_a_signed_contract(self, org):
        """A deal in its last open stage cannot be marked won by hand while its contract is unsigned."""
        opportunity = deal_in_last_stage(org.rep_a)
        to_status(contract_for(opportunity), ContractStatus.APPROVED, org)
        with pytest.raises(Exception) as info:
            opportunity_services.opportunity_win(opportunity=opportunity, user=org.rep_a)
        assert "no_signed_contract" in [u.code for u in info.value.unmet]

    @pytest.mark.parametrize(("status", "expected"), [
        (ContractStatus.APPROVED, False), (ContractStatus.SIGNED, True), (ContractStatus.ACTIVE, True),
        (ContractStatus.COMPLETED, True), (ContractStatus.TERMINATED, False),
    ])
    def test_check(self, org, status, expected):
        opportunity = deal_in_last_stage(org.rep_a)
        contract = to_status(contract_for(opportunity), ContractStatus.APPROVED, org)
        if status != ContractStatus.APPROVED:
            contract = sign(contract)
            if status == ContractStatus.TERMINATED:
                services.contract_terminate(contract=contract, user=org.manager_a, reason="x")
            elif status in (ContractStatus.ACTIVE, ContractStatus.COMPLETED):
                contract = services.contract_activate(contract=contract, user=org.rep_a)
                if status == ContractStatus.COMPLETED:
                    services.contract_complete(contract=contract, user=org.rep_a)
        assert selectors.has_signed_contract(opportunity.pk) is expected


class TestDraftFromOpportunity:
    def test_only_from_the_last_open_stage(self, org):
        early = make_opportunity(org.rep_a)
        with pytest.raises(ValidationError):
            contract_for(early)
        assert not Contract.objects.exists()

    def test_prefilled_form(self, org, client_for):
        opportunity = deal_in_last_stage(org.rep_a, amount="88000.00")
        response = client_for(org.rep_a).get(reverse("contracts:create"), {"opportunity": opportunity.pk})
        body = response.content.decode()
        assert response.status_code == 200
        assert opportunity.customer.name in body and "88000.00" in body
        assert f'value="{opportunity.contact_id}" selected' in body
        assert f'name="opportunity" value="{opportunity.pk}"' in body

    def test_draft_posted_from_the_opportunity(self, org, client_for):
        opportunity = deal_in_last_stage(org.rep_a, amount="5000.00")
        data = {
            "opportunity": opportunity.pk, "title": opportunity.title, "contact": opportunity.contact_id,
            "currency": "CNY", "start_date": "", "end_date": "", "payment_terms": "", "terms": "",
            "lines-TOTAL_FORMS": 1, "lines-INITIAL_FORMS": 1, "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000,
            "lines-0-name": "ERP", "lines-0-quantity": "1", "lines-0-unit_price": "5000.00",
            "lines-0-discount_percent": "0", "lines-0-tax_rate": "0",
            "plan-TOTAL_FORMS": 1, "plan-INITIAL_FORMS": 0, "plan-MIN_NUM_FORMS": 0, "plan-MAX_NUM_FORMS": 1000,
            "plan-0-due_date": days(10).isoformat(), "plan-0-amount": "5000.00", "plan-0-note": "",
        }
        response = client_for(org.rep_a).post(reverse("contracts:create") + f"?opportunity={opportunity.pk}", data)
        assert response.status_code == 302, response.content.decode()[:3000]
        contract = Contract.objects.get()
        assert (contract.opportunity, contract.customer, contract.contact_id) == (
            opportunity, opportunity.customer, opportunity.contact_id)

    def test_early_stage_redirects_with_reason(self, org, client_for):
        early = make_opportunity(org.rep_a)
        from django.contrib.messages import get_messages

        response = client_for(org.rep_a).get(reverse("contracts:create"), {"opportunity": early.pk})
        assert response.status_code == 302 and response["Location"] == early.get_absolute_url()
        assert any("last open stage" in str(m) for m in get_messages(response.wsgi_request))

    def test_out_of_scope_opportunity_is_404(self, org, client_for):
        other = deal_in_last_stage(org.rep_b)
        assert client_for(org.rep_a).get(reverse("contracts:create"), {"opportunity": other.pk}).status_code == 404


class TestContractsForOpportunityPanel:
    def test_panel(self, org, client_for):
        opportunity = deal_in_last_stage(org.rep_a)
        contract = contract_for(opportunity)
        url = reverse("contracts:for_opportunity", args=[opportunity.pk])
        body = client_for(org.rep_a).get(url).content.decode()
        assert contract.number in body and "?opportunity=" in body
        assert client_for(org.rep_b).get(url).status_code == 404
