"""contracts.services: numbering, drafting, the lifecycle matrix, the review rules, payments."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.utils import timezone

from contracts import services
from contracts.models import (
    ApprovalAction,
    ApprovalLevel,
    Contract,
    ContractApproval,
    ContractSettings,
    ContractStatus,
    PaymentInstalment,
)
from tests.factories import CustomerFactory

from .factories import days, line, make_contract, pdf, to_status

pytestmark = pytest.mark.django_db


# --- numbering -------------------------------------------------------------------------------------
class TestContractNumberNext:
    def test_default_pattern_sequential_per_year(self, org):
        """The first contracts of the year are HT-<year>-000001, -000002, ..."""
        year = timezone.localdate().year
        first = make_contract(org.rep_a)
        second = make_contract(org.rep_b)
        assert first.number == f"HT-{year}-000001"
        assert second.number == f"HT-{year}-000002"

    def test_admin_pattern_is_used(self, org):
        settings_row = ContractSettings.load()
        settings_row.number_pattern = "C{year}-{seq:04d}"
        settings_row.save()
        assert make_contract(org.rep_a).number == f"C{timezone.localdate().year}-0001"

    def test_a_refused_draft_gives_its_number_back(self, org):
        """The counter moves in the draft's transaction: a draft refused by validation uses no number."""
        with pytest.raises(ValidationError):
            make_contract(org.rep_a, instalments=[{"due_date": days(5), "amount": Decimal("1.00")}])
        assert make_contract(org.rep_a).number.endswith("-000001")


@pytest.mark.django_db(transaction=True)
class TestConcurrentNumbering:
    def test_threads_get_unique_sequential_numbers(self, org):
        """Drafts created at the same moment in parallel transactions get distinct, gapless numbers."""
        customer = CustomerFactory(owner=org.rep_a)
        count = 8
        barrier = threading.Barrier(count)
        numbers: list[str] = []
        errors: list[BaseException] = []

        def work():
            try:
                barrier.wait(timeout=10)
                contract = make_contract(org.rep_a, customer=customer)
                numbers.append(contract.number)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        year = timezone.localdate().year
        assert sorted(numbers) == [f"HT-{year}-{seq:06d}" for seq in range(1, count + 1)]
        assert Contract.objects.count() == count
        assert connection.vendor == "postgresql"


# --- drafting and editing --------------------------------------------------------------------------
class TestContractCreate:
    def test_totals_from_lines(self, org):
        """Subtotal, tax and total are computed from the lines with currency rounding."""
        contract = make_contract(
            org.rep_a,
            lines=[line(quantity="3", unit_price="33.33", discount="10", tax="13"),
                   line(name="实施服务 Implementation", quantity="2", unit_price="500", tax="6")],
            instalments=[{"due_date": days(10), "amount": Decimal("1161.69")}],
        )
        assert contract.subtotal == Decimal("1089.99")
        assert contract.tax_amount == Decimal("71.70")
        assert contract.total_amount == Decimal("1161.69")
        assert contract.status == ContractStatus.DRAFT
        assert contract.history.count() >= 1

    def test_contact_of_another_customer_refused(self, org):
        from leads.models import Contact

        other = CustomerFactory(owner=org.rep_a)
        contact = Contact.objects.create(customer=other, name="王芳")
        with pytest.raises(ValidationError):
            make_contract(org.rep_a, contact=contact)

    def test_end_before_start_refused(self, org):
        with pytest.raises(ValidationError):
            make_contract(org.rep_a, start_date=days(10), end_date=days(1))


class TestPaymentPlanValidation:
    def test_plan_must_add_up_to_total(self, org):
        """1000 split 400 + 500 is refused with both sums in the message."""
        with pytest.raises(ValidationError) as info:
            make_contract(org.rep_a, amount="1000.00", instalments=[
                {"due_date": days(10), "amount": Decimal("400.00")},
                {"due_date": days(40), "amount": Decimal("500.00")},
            ])
        assert "900.00" in str(info.value) and "1000.00" in str(info.value)
        assert not Contract.objects.exists()

    def test_exact_split_accepted(self, org):
        contract = make_contract(org.rep_a, amount="1000.00", instalments=[
            {"due_date": days(10), "amount": Decimal("333.33")},
            {"due_date": days(40), "amount": Decimal("333.33")},
            {"due_date": days(70), "amount": Decimal("333.34")},
        ])
        assert contract.instalments.count() == 3

    def test_non_positive_and_sub_cent_amounts_refused(self, org):
        with pytest.raises(ValidationError):
            make_contract(org.rep_a, amount="1000.00", instalments=[
                {"due_date": days(10), "amount": Decimal("1000.00")},
                {"due_date": days(40), "amount": Decimal("0")},
            ])
        with pytest.raises(ValidationError):
            make_contract(org.rep_a, amount="1000.00", instalments=[
                {"due_date": days(10), "amount": Decimal("999.995")},
                {"due_date": days(40), "amount": Decimal("0.005")},
            ])

    def test_changing_lines_without_the_plan_is_refused(self, org):
        """Editing the lines so that the existing plan no longer adds up fails; nothing is saved."""
        contract = make_contract(org.rep_a, amount="1000.00")
        with pytest.raises(ValidationError):
            services.contract_update(contract=contract, user=org.rep_a, lines=[line(unit_price="1200.00")])
        contract.refresh_from_db()
        assert contract.total_amount == Decimal("1000.00")
        assert contract.lines.get().unit_price == Decimal("1000.00")

    def test_submit_needs_a_plan(self, org):
        contract = make_contract(org.rep_a, instalments=[])
        with pytest.raises(ValidationError) as info:
            services.contract_submit(contract=contract, user=org.rep_a)
        assert info.value.code == "no_plan"


class TestContractUpdate:
    def test_draft_edit_updates_lines_plan_and_history(self, org):
        contract = make_contract(org.rep_a, amount="1000.00")
        old_line = contract.lines.get()
        services.contract_update(
            contract=contract, user=org.rep_a, fields={"title": "新标题 New title"},
            lines=[{**line(unit_price="1000.00"), "id": old_line.pk}, line(name="培训 Training", unit_price="200")],
            instalments=[{"due_date": days(5), "amount": Decimal("600.00")},
                         {"due_date": days(35), "amount": Decimal("600.00")}],
        )
        contract.refresh_from_db()
        assert contract.title == "新标题 New title"
        assert contract.total_amount == Decimal("1200.00")
        assert contract.lines.filter(pk=old_line.pk).exists(), "an unchanged line keeps its row"
        assert contract.history.first().title == "新标题 New title"
        assert contract.history.first().history_user == org.rep_a

    @pytest.mark.parametrize("status", [s for s in ContractStatus.values if s != ContractStatus.DRAFT])
    def test_only_drafts_are_editable(self, org, status):
        contract = to_status(make_contract(org.rep_a), status, org)
        with pytest.raises(ValidationError):
            services.contract_update(contract=contract, user=org.rep_a, fields={"title": "changed"})
        contract.refresh_from_db()
        assert contract.title != "changed"

    def test_out_of_scope_user_cannot_edit(self, org):
        contract = make_contract(org.rep_a)
        with pytest.raises(PermissionDenied):
            services.contract_update(contract=contract, user=org.rep_b, fields={"title": "x"})


# --- the lifecycle matrix --------------------------------------------------------------------------
ACTIONS = ["submit", "approve", "reject", "sign", "activate", "complete", "terminate"]
ALLOWED = {
    (ContractStatus.DRAFT, "submit"): ContractStatus.IN_REVIEW,
    (ContractStatus.IN_REVIEW, "approve"): ContractStatus.APPROVED,
    (ContractStatus.IN_REVIEW, "reject"): ContractStatus.DRAFT,
    (ContractStatus.APPROVED, "sign"): ContractStatus.SIGNED,
    (ContractStatus.SIGNED, "activate"): ContractStatus.ACTIVE,
    (ContractStatus.ACTIVE, "complete"): ContractStatus.COMPLETED,
    (ContractStatus.SIGNED, "terminate"): ContractStatus.TERMINATED,
    (ContractStatus.ACTIVE, "terminate"): ContractStatus.TERMINATED,
}


def _do(action: str, contract: Contract, org):
    rep, manager = contract.owner, org.manager_a
    calls = {
        "submit": lambda: services.contract_submit(contract=contract, user=rep),
        "approve": lambda: services.contract_approve(contract=contract, user=manager, comment="ok"),
        "reject": lambda: services.contract_reject(contract=contract, user=manager, comment="价格太低 price too low"),
        "sign": lambda: services.contract_sign(contract=contract, user=rep, signed_on=days(0),
                                               our_signatory="张伟", customer_signatory="Li", scan=pdf()),
        "activate": lambda: services.contract_activate(contract=contract, user=rep),
        "complete": lambda: services.contract_complete(contract=contract, user=rep),
        "terminate": lambda: services.contract_terminate(contract=contract, user=manager, reason="违约 breach"),
    }
    return calls[action]()


class TestLifecycleMatrix:
    @pytest.mark.parametrize("status", ContractStatus.values)
    @pytest.mark.parametrize("action", ACTIONS)
    def test_every_move(self, org, status, action):
        """Each (status, action) pair either reaches its target or is refused with nothing changed."""
        contract = to_status(make_contract(org.rep_a), status, org)
        target = ALLOWED.get((status, action))
        if target is None:
            with pytest.raises(ValidationError):
                _do(action, contract, org)
            contract.refresh_from_db()
            assert contract.status == status
        else:
            _do(action, contract, org)
            contract.refresh_from_db()
            assert contract.status == target

    def test_submit_needs_lines(self, org):
        contract = make_contract(org.rep_a, lines=[], instalments=[])
        with pytest.raises(ValidationError):
            services.contract_submit(contract=contract, user=org.rep_a)

    def test_terminate_needs_a_reason(self, org):
        contract = to_status(make_contract(org.rep_a), ContractStatus.ACTIVE, org)
        with pytest.raises(ValidationError):
            services.contract_terminate(contract=contract, user=org.manager_a, reason="  ")
        contract.refresh_from_db()
        assert contract.status == ContractStatus.ACTIVE

    def test_terminate_is_a_managers_decision(self, org):
        contract = to_status(make_contract(org.rep_a), ContractStatus.SIGNED, org)
        with pytest.raises(ValidationError):
            services.contract_terminate(contract=contract, user=org.rep_a, reason="x")
        terminated = services.contract_terminate(contract=contract, user=org.manager_a, reason="客户违约")
        assert terminated.termination_reason == "客户违约" and terminated.terminated_on == days(0)

    def test_sign_records_date_signatories_and_scan(self, org):
        contract = to_status(make_contract(org.rep_a), ContractStatus.APPROVED, org)
        signed = services.contract_sign(contract=contract, user=org.rep_a, signed_on=days(-1),
                                        our_signatory="张伟", customer_signatory="李明", scan=pdf("签字版.pdf"))
        assert (signed.signed_on, signed.our_signatory, signed.customer_signatory) == (days(-1), "张伟", "李明")
        scan = signed.attachments.get()
        assert scan.kind == "signed_scan" and scan.original_name == "签字版.pdf"
        assert scan.content_type == "application/pdf"

    @pytest.mark.parametrize("field", ["our_signatory", "customer_signatory", "scan", "signed_on"])
    def test_sign_needs_everything(self, org, field):
        contract = to_status(make_contract(org.rep_a), ContractStatus.APPROVED, org)
        kwargs = {"signed_on": days(0), "our_signatory": "张伟", "customer_signatory": "Li", "scan": pdf()}
        kwargs[field] = days(3) if field == "signed_on" else (None if field == "scan" else "")
        with pytest.raises(ValidationError):
            services.contract_sign(contract=contract, user=org.rep_a, **kwargs)
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED
        assert not contract.attachments.exists()

    def test_sign_with_a_fake_pdf_refused(self, org):
        contract = to_status(make_contract(org.rep_a), ContractStatus.APPROVED, org)
        with pytest.raises(ValidationError):
            services.contract_sign(contract=contract, user=org.rep_a, signed_on=days(0), our_signatory="a",
                                   customer_signatory="b", scan=pdf("scan.pdf", b"MZ\x90\x00 not a pdf"))
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED


# --- review rules ----------------------------------------------------------------------------------
class TestContractApprove:
    def test_owner_cannot_approve_own_contract(self, org):
        """Even a manager who owns a contract cannot approve it; their own manager can."""
        contract = services.contract_submit(contract=make_contract(org.manager_a), user=org.manager_a)
        with pytest.raises(ValidationError) as info:
            services.contract_approve(contract=contract, user=org.manager_a)
        assert "own contract" in str(info.value)
        contract.refresh_from_db()
        assert contract.status == ContractStatus.IN_REVIEW
        approved = services.contract_approve(contract=contract, user=org.director)
        assert approved.status == ContractStatus.APPROVED

    def test_parent_team_manager_may_approve(self, org):
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        assert services.contract_approve(contract=contract, user=org.director).status == ContractStatus.APPROVED

    @pytest.mark.parametrize("who", ["rep_a2", "manager_b", "rep_b"])
    def test_others_cannot_approve(self, org, who):
        """A colleague, another team's manager, a rep elsewhere: refused (or not even visible)."""
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        with pytest.raises((ValidationError, PermissionDenied)):
            services.contract_approve(contract=contract, user=getattr(org, who))
        contract.refresh_from_db()
        assert contract.status == ContractStatus.IN_REVIEW
        assert not ContractApproval.objects.filter(action=ApprovalAction.APPROVED).exists()

    def test_two_levels_above_threshold(self, org):
        """Above the threshold the manager's approval is not enough: an admin must approve too."""
        row = ContractSettings.load()
        row.second_approval_threshold = Decimal("5000.00")
        row.save()
        contract = services.contract_submit(contract=make_contract(org.rep_a, amount="5000.01"), user=org.rep_a)
        assert contract.needs_admin_approval
        contract = services.contract_approve(contract=contract, user=org.manager_a, comment="同意")
        assert contract.status == ContractStatus.IN_REVIEW
        with pytest.raises(ValidationError):
            services.contract_approve(contract=contract, user=org.director)  # a manager, not an admin
        contract = services.contract_approve(contract=contract, user=org.admin, comment="OK")
        assert contract.status == ContractStatus.APPROVED
        trail = list(contract.approvals.values_list("action", "level", "actor__username", "comment"))
        assert trail == [
            ("submitted", "", "rep_a", ""),
            ("approved", ApprovalLevel.MANAGER, "manager_a", "同意"),
            ("approved", ApprovalLevel.ADMIN, "admin", "OK"),
        ]
        assert all(a.created_at for a in contract.approvals.all())

    def test_at_threshold_one_level_is_enough(self, org):
        row = ContractSettings.load()
        row.second_approval_threshold = Decimal("5000.00")
        row.save()
        contract = services.contract_submit(contract=make_contract(org.rep_a, amount="5000.00"), user=org.rep_a)
        assert services.contract_approve(contract=contract, user=org.manager_a).status == ContractStatus.APPROVED

    def test_admin_cannot_give_both_approvals(self, org):
        """The second approval must come from someone other than the first approver."""
        row = ContractSettings.load()
        row.second_approval_threshold = Decimal("10.00")
        row.save()
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        contract = services.contract_approve(contract=contract, user=org.admin)
        with pytest.raises(ValidationError):
            services.contract_approve(contract=contract, user=org.admin)
        contract.refresh_from_db()
        assert contract.status == ContractStatus.IN_REVIEW

    def test_rejection_returns_to_draft_with_comment_and_resubmission_starts_over(self, org):
        row = ContractSettings.load()
        row.second_approval_threshold = Decimal("10.00")
        row.save()
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        contract = services.contract_approve(contract=contract, user=org.manager_a)
        with pytest.raises(ValidationError):
            services.contract_reject(contract=contract, user=org.admin, comment="")
        contract = services.contract_reject(contract=contract, user=org.admin, comment="付款条件不可接受")
        assert contract.status == ContractStatus.DRAFT
        rejection = contract.approvals.get(action=ApprovalAction.REJECTED)
        assert (rejection.actor, rejection.comment, rejection.level) == (org.admin, "付款条件不可接受", "admin")
        contract = services.contract_submit(contract=contract, user=org.rep_a)
        assert contract.review_round == 2 and contract.manager_approved_by is None
        contract = services.contract_approve(contract=contract, user=org.manager_a)
        assert contract.status == ContractStatus.IN_REVIEW, "the first round's approvals no longer count"

    def test_owner_cannot_reject_own_contract(self, org):
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        with pytest.raises(ValidationError):
            services.contract_reject(contract=contract, user=org.rep_a, comment="withdraw")


# --- payments --------------------------------------------------------------------------------------
def _signed_with_plan(org, *, due=(-10, 20)):
    contract = make_contract(org.rep_a, amount="1000.00", instalments=[
        {"due_date": days(due[0]), "amount": Decimal("400.00")},
        {"due_date": days(due[1]), "amount": Decimal("600.00")},
    ])
    return to_status(contract, ContractStatus.SIGNED, org)


class TestPaymentReceiptRecord:
    def test_partial_payments_accumulate(self, org):
        contract = _signed_with_plan(org)
        first = contract.instalments.order_by("due_date").first()
        services.payment_receipt_record(contract=contract, instalment=first, user=org.rep_a,
                                        received_on=days(0), amount=Decimal("150.00"), method="bank_transfer")
        services.payment_receipt_record(contract=contract, instalment=first, user=org.rep_a,
                                        received_on=days(0), amount=Decimal("250.00"), method="alipay",
                                        reference="2026-0001")
        first.refresh_from_db()
        assert first.paid_amount == Decimal("400.00") and first.is_paid

    def test_overpayment_refused(self, org):
        contract = _signed_with_plan(org)
        first = contract.instalments.order_by("due_date").first()
        with pytest.raises(ValidationError):
            services.payment_receipt_record(contract=contract, instalment=first, user=org.rep_a,
                                            received_on=days(0), amount=Decimal("400.01"), method="cash")
        first.refresh_from_db()
        assert first.paid_amount == 0 and not first.receipts.exists()

    def test_not_before_signing(self, org):
        contract = make_contract(org.rep_a)
        with pytest.raises(ValidationError):
            services.payment_receipt_record(contract=contract, instalment=contract.instalments.get(),
                                            user=org.rep_a, received_on=days(0), amount=Decimal("1"),
                                            method="cash")

    def test_instalment_of_another_contract_refused(self, org):
        contract = _signed_with_plan(org)
        other = make_contract(org.rep_a)
        with pytest.raises(ValidationError):
            services.payment_receipt_record(contract=contract, instalment=other.instalments.get(),
                                            user=org.rep_a, received_on=days(0), amount=Decimal("1"),
                                            method="cash")

    def test_future_date_refused(self, org):
        contract = _signed_with_plan(org)
        with pytest.raises(ValidationError):
            services.payment_receipt_record(contract=contract, instalment=contract.instalments.first(),
                                            user=org.rep_a, received_on=days(1), amount=Decimal("1"),
                                            method="cash")


@pytest.mark.django_db(transaction=True)
class TestConcurrentReceipts:
    def test_parallel_receipts_never_overpay(self, org):
        """Two people record the full amount at once: one succeeds, the other is refused."""
        contract = _signed_with_plan(org)
        instalment = contract.instalments.order_by("due_date").first()
        barrier = threading.Barrier(2)
        results: list[str] = []

        def work():
            try:
                barrier.wait(timeout=10)
                services.payment_receipt_record(contract=contract, instalment=instalment, user=org.rep_a,
                                                received_on=days(0), amount=Decimal("400.00"), method="cash")
                results.append("ok")
            except ValidationError:
                results.append("refused")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == ["ok", "refused"]
        assert PaymentInstalment.objects.get(pk=instalment.pk).paid_amount == Decimal("400.00")
