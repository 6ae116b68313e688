"""contracts.selectors: overdue detection and the money still to collect, per contract, customer, rep."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from contracts import selectors, services
from contracts.models import ContractStatus
from tests.factories import CustomerFactory

from .factories import days, make_contract, to_status

pytestmark = pytest.mark.django_db

D = Decimal


def _signed(org, owner, plan, *, customer=None, status=ContractStatus.SIGNED):
    """A contract of `owner` with the plan [(days from today, amount)], moved to `status`."""
    total = sum((D(a) for _, a in plan), D("0"))
    contract = make_contract(owner, amount=str(total), customer=customer,
                             instalments=[{"due_date": days(d), "amount": D(a)} for d, a in plan])
    return to_status(contract, status, org)


def _pay(contract, instalment, amount):
    services.payment_receipt_record(contract=contract, instalment=instalment, user=contract.owner,
                                    received_on=days(0), amount=D(amount), method="bank_transfer")


class TestInstalmentsOverdue:
    def test_detection(self, org):
        """Overdue: past due and not fully paid, on a signed/active/completed contract. Due today is not
        overdue yet; paid in full is not; a partly paid one is, for the rest."""
        contract = _signed(org, org.rep_a, [(-10, "100"), (-5, "200"), (-1, "300"), (0, "400"), (10, "500")])
        plan = list(contract.instalments.order_by("due_date"))
        _pay(contract, plan[0], "100")   # paid in full
        _pay(contract, plan[1], "50")    # partly paid
        today = timezone.localdate()
        overdue = list(selectors.instalments_overdue(today=today))
        assert [i.pk for i in overdue] == [plan[1].pk, plan[2].pk]
        assert [i.outstanding for i in overdue] == [D("150.00"), D("300.00")]

    @pytest.mark.parametrize("status", [ContractStatus.DRAFT, ContractStatus.APPROVED, ContractStatus.TERMINATED])
    def test_not_collectable_contracts_are_not_overdue(self, org, status):
        _signed(org, org.rep_a, [(-3, "100")], status=status)
        assert not selectors.instalments_overdue(today=timezone.localdate()).exists()

    @pytest.mark.parametrize("status", [ContractStatus.ACTIVE, ContractStatus.COMPLETED])
    def test_running_and_completed_contracts_count(self, org, status):
        _signed(org, org.rep_a, [(-3, "100")], status=status)
        assert selectors.instalments_overdue(today=timezone.localdate()).count() == 1

    def test_scoped(self, org):
        _signed(org, org.rep_a, [(-3, "100")])
        today = timezone.localdate()
        assert selectors.instalments_overdue(today=today, user=org.rep_a).count() == 1
        assert selectors.instalments_overdue(today=today, user=org.manager_a).count() == 1
        assert selectors.instalments_overdue(today=today, user=org.rep_b).count() == 0
        assert selectors.instalments_overdue(today=today, user=org.manager_b).count() == 0


class TestMoney:
    def test_per_contract_annotations(self, org):
        """received / outstanding / overdue per contract, without join duplication."""
        contract = _signed(org, org.rep_a, [(-10, "100"), (-5, "200"), (10, "700")])
        plan = list(contract.instalments.order_by("due_date"))
        _pay(contract, plan[0], "60")
        draft = make_contract(org.rep_a, amount="999.00",
                              instalments=[{"due_date": days(-1), "amount": D("999.00")}])
        rows = {c.pk: c for c in selectors.contract_list(user=org.rep_a, today=timezone.localdate())}
        row = rows[contract.pk]
        assert (row.received, row.outstanding, row.overdue) == (D("60.00"), D("940.00"), D("240.00"))
        assert (rows[draft.pk].outstanding, rows[draft.pk].overdue) == (D("0"), D("0"))

    def test_per_customer_and_rep(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        first = _signed(org, org.rep_a, [(-10, "100"), (20, "100")], customer=customer)
        _signed(org, org.rep_a, [(-3, "50")], customer=customer)
        _signed(org, org.rep_a2, [(-3, "70")])
        _pay(first, first.instalments.order_by("due_date").first(), "100")
        today = timezone.localdate()
        assert selectors.money_for_customer(customer_id=customer.pk, today=today) == {
            "total": D("250.00"), "received": D("100.00"), "outstanding": D("150.00"), "overdue": D("50.00")}
        by_rep = {row["contract__owner_id"]: row for row in selectors.money_by_rep(today=today)}
        assert by_rep[org.rep_a.pk]["overdue"] == D("50.00")
        assert by_rep[org.rep_a2.pk]["overdue"] == D("70.00")
        assert selectors.money_for_rep(owner_id=org.rep_a2.pk, today=today)["outstanding"] == D("70.00")
        # scoped: rep_a sees only their own rows
        assert {row["contract__owner_id"] for row in selectors.money_by_rep(today=today, user=org.rep_a)} == {
            org.rep_a.pk}
        by_customer = {row["contract__customer_id"]: row for row in selectors.money_by_customer(today=today)}
        assert by_customer[customer.pk]["received"] == D("100.00")
