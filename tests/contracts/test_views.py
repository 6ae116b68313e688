"""The contract pages: scope (404 outside it), constant query counts, the lifecycle buttons,
forms with line items and payment plan, signing, receipts, attachments, print, review queue, panels."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contracts import services
from contracts.models import Contract, ContractSettings, ContractStatus
from tests.factories import CustomerFactory

from .factories import JPEG_BYTES, PDF_BYTES, days, make_contract, pdf, to_status

pytestmark = pytest.mark.django_db


class TestContractListView:
    def test_scoped(self, org, client_for):
        """A rep sees their own contracts only; their manager sees the team's; not the other team's."""
        mine = make_contract(org.rep_a, title="Mine 我的")
        colleague = make_contract(org.rep_a2, title="Colleague 同事")
        other = make_contract(org.rep_b, title="Other team 别组")
        body = client_for(org.rep_a).get(reverse("contracts:list")).content.decode()
        assert mine.number in body and colleague.number not in body and other.number not in body
        body = client_for(org.manager_a).get(reverse("contracts:list")).content.decode()
        assert mine.number in body and colleague.number in body and other.number not in body

    def test_filters(self, org, client_for):
        draft = make_contract(org.rep_a)
        signed = to_status(make_contract(org.rep_a, instalments=[
            {"due_date": days(-3), "amount": Decimal("1000.00")}]), ContractStatus.SIGNED, org)
        other_owner = make_contract(org.rep_a2)
        client = client_for(org.manager_a)
        body = client.get(reverse("contracts:list"), {"status": "signed"}).content.decode()
        assert signed.number in body and draft.number not in body
        body = client.get(reverse("contracts:list"), {"overdue": "on"}).content.decode()
        assert signed.number in body and draft.number not in body and other_owner.number not in body
        body = client.get(reverse("contracts:list"), {"owner": org.rep_a2.pk}).content.decode()
        assert other_owner.number in body and draft.number not in body
        body = client.get(reverse("contracts:list"), {"date_from": days(1).isoformat()}).content.decode()
        assert draft.number not in body and signed.number not in body
        body = client.get(reverse("contracts:list"), {"date_from": days(-1).isoformat(),
                                                      "date_to": days(0).isoformat()}).content.decode()
        assert draft.number in body and signed.number in body

    def test_query_count_constant(self, org, client_for, django_assert_max_num_queries):
        """The list runs the same number of queries for 2 contracts as for 12."""
        client = client_for(org.manager_a)
        for _ in range(2):
            to_status(make_contract(org.rep_a), ContractStatus.SIGNED, org)
        client.get(reverse("contracts:list"))  # warm up the session
        with django_assert_max_num_queries(12) as few:
            client.get(reverse("contracts:list"))
        for _ in range(10):
            make_contract(org.rep_a2)
        with django_assert_max_num_queries(len(few.captured_queries)):
            response = client.get(reverse("contracts:list"))
        assert response.content.decode().count('href="/contracts/') >= 12


class TestContractDetailView:
    def test_out_of_scope_is_404(self, org, client_for):
        contract = make_contract(org.rep_a)
        assert client_for(org.rep_b).get(contract.get_absolute_url()).status_code == 404
        assert client_for(org.manager_b).get(contract.get_absolute_url()).status_code == 404
        assert client_for(org.director).get(contract.get_absolute_url()).status_code == 200

    def _actions(self, client, contract) -> set[str]:
        import re

        body = client.get(contract.get_absolute_url()).content.decode()
        block = body.split('id="lifecycle-buttons"', 1)[1].split("</div>", 1)[0]
        return set(re.findall(r'data-action="([a-z_]+)"', block))

    def test_buttons_for_allowed_transitions_only(self, org, client_for):
        contract = make_contract(org.rep_a)
        assert self._actions(client_for(org.rep_a), contract) == {"edit", "submit"}
        contract = services.contract_submit(contract=contract, user=org.rep_a)
        assert self._actions(client_for(org.rep_a), contract) == set(), "the owner cannot review"
        assert self._actions(client_for(org.manager_a), contract) == {"approve", "reject"}
        contract = services.contract_approve(contract=contract, user=org.manager_a)
        assert self._actions(client_for(org.rep_a), contract) == {"sign"}
        contract = to_status(contract, ContractStatus.SIGNED, org) if False else services.contract_sign(
            contract=contract, user=org.rep_a, signed_on=days(0), our_signatory="a", customer_signatory="b",
            scan=pdf())
        assert self._actions(client_for(org.rep_a), contract) == {"activate"}
        assert self._actions(client_for(org.manager_a), contract) == {"activate", "terminate"}

    def test_rejection_comment_shown_on_draft(self, org, client_for):
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        services.contract_reject(contract=contract, user=org.manager_a, comment="请补充交付时间")
        body = client_for(org.rep_a).get(contract.get_absolute_url()).content.decode()
        assert "请补充交付时间" in body and 'id="rejection"' in body


class TestContractActionView:
    def test_self_approval_refused_with_message(self, org, client_for):
        contract = services.contract_submit(contract=make_contract(org.manager_a), user=org.manager_a)
        response = client_for(org.manager_a).post(reverse("contracts:action", args=[contract.pk, "approve"]),
                                                  follow=True)
        assert "You cannot approve your own contract." in response.content.decode()
        contract.refresh_from_db()
        assert contract.status == ContractStatus.IN_REVIEW

    def test_approve_and_reject(self, org, client_for):
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        client = client_for(org.manager_a)
        client.post(reverse("contracts:action", args=[contract.pk, "reject"]), {"reject-comment": ""})
        contract.refresh_from_db()
        assert contract.status == ContractStatus.IN_REVIEW, "a rejection without comment is refused"
        client.post(reverse("contracts:action", args=[contract.pk, "reject"]), {"reject-comment": "价格"})
        contract.refresh_from_db()
        assert contract.status == ContractStatus.DRAFT

    def test_out_of_scope_action_is_404(self, org, client_for):
        contract = make_contract(org.rep_a)
        response = client_for(org.rep_b).post(reverse("contracts:action", args=[contract.pk, "submit"]))
        assert response.status_code == 404

    def test_unknown_action_is_404(self, org, client_for):
        contract = make_contract(org.rep_a)
        assert client_for(org.rep_a).post(reverse("contracts:action", args=[contract.pk, "explode"])).status_code == 404


def _post_contract(client, customer, *, lines, plan, extra=None):
    data = {
        "title": "软件采购合同 Software purchase", "customer": customer.pk, "contact": "", "currency": "CNY",
        "start_date": days(0).isoformat(), "end_date": days(365).isoformat(), "payment_terms": "30/70",
        "terms": "",
        "lines-TOTAL_FORMS": len(lines), "lines-INITIAL_FORMS": 0, "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000,
        "plan-TOTAL_FORMS": len(plan), "plan-INITIAL_FORMS": 0, "plan-MIN_NUM_FORMS": 0, "plan-MAX_NUM_FORMS": 1000,
    }
    for i, (name, qty, price, disc, tax) in enumerate(lines):
        data.update({f"lines-{i}-name": name, f"lines-{i}-quantity": qty, f"lines-{i}-unit_price": price,
                     f"lines-{i}-discount_percent": disc, f"lines-{i}-tax_rate": tax})
    for i, (due, amount) in enumerate(plan):
        data.update({f"plan-{i}-due_date": due, f"plan-{i}-amount": amount, f"plan-{i}-note": ""})
    data.update(extra or {})
    return client.post(reverse("contracts:create"), data)


class TestContractCreateView:
    def test_creates_draft_with_lines_and_plan(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.rep_a)
        assert client.get(reverse("contracts:create")).status_code == 200
        response = _post_contract(client, customer, lines=[("License", "2", "500", "0", "13")],
                                  plan=[(days(10).isoformat(), "339"), (days(40).isoformat(), "791")])
        contract = Contract.objects.get()
        assert response.status_code == 302 and response["Location"] == contract.get_absolute_url()
        assert contract.total_amount == Decimal("1130.00") and contract.owner == org.rep_a
        assert contract.instalments.count() == 2

    def test_plan_mismatch_shows_error_and_creates_nothing(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        response = _post_contract(client_for(org.rep_a), customer, lines=[("License", "1", "1000", "0", "0")],
                                  plan=[(days(10).isoformat(), "999")])
        assert response.status_code == 200
        assert "999.00" in response.content.decode() and not Contract.objects.exists()

    def test_customer_out_of_scope_refused(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_b)
        response = _post_contract(client_for(org.rep_a), customer, lines=[("x", "1", "10", "0", "0")],
                                  plan=[(days(1).isoformat(), "10")])
        assert response.status_code == 200 and not Contract.objects.exists()
        assert client_for(org.rep_a).get(reverse("contracts:create"), {"customer": customer.pk}).status_code == 404


class TestContractEditView:
    def test_edit_draft(self, org, client_for):
        contract = make_contract(org.rep_a, amount="1000.00")
        client = client_for(org.rep_a)
        page = client.get(reverse("contracts:edit", args=[contract.pk]))
        assert page.status_code == 200
        line, instalment = contract.lines.get(), contract.instalments.get()
        data = {
            "title": "改名 Renamed", "contact": "", "currency": "CNY", "start_date": "", "end_date": "",
            "payment_terms": "", "terms": "",
            "lines-TOTAL_FORMS": 1, "lines-INITIAL_FORMS": 1, "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000,
            "lines-0-id": line.pk, "lines-0-name": line.name, "lines-0-quantity": "2", "lines-0-unit_price": "1000",
            "lines-0-discount_percent": "0", "lines-0-tax_rate": "0",
            "plan-TOTAL_FORMS": 1, "plan-INITIAL_FORMS": 1, "plan-MIN_NUM_FORMS": 0, "plan-MAX_NUM_FORMS": 1000,
            "plan-0-id": instalment.pk, "plan-0-due_date": days(5).isoformat(), "plan-0-amount": "2000",
            "plan-0-note": "",
        }
        response = client.post(reverse("contracts:edit", args=[contract.pk]), data)
        assert response.status_code == 302
        contract.refresh_from_db()
        assert contract.title == "改名 Renamed" and contract.total_amount == Decimal("2000.00")
        assert contract.lines.get().pk == line.pk

    def test_non_draft_cannot_be_edited(self, org, client_for):
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        response = client_for(org.rep_a).get(reverse("contracts:edit", args=[contract.pk]))
        assert response.status_code == 302


class TestContractSignView:
    def test_sign_with_scan(self, org, client_for):
        contract = to_status(make_contract(org.rep_a), ContractStatus.APPROVED, org)
        client = client_for(org.rep_a)
        assert client.get(reverse("contracts:sign", args=[contract.pk])).status_code == 200
        response = client.post(reverse("contracts:sign", args=[contract.pk]), {
            "signed_on": days(0).isoformat(), "our_signatory": "张伟", "customer_signatory": "李明",
            "scan": SimpleUploadedFile("signed.jpg", JPEG_BYTES, content_type="image/jpeg"),
        })
        assert response.status_code == 302
        contract.refresh_from_db()
        assert contract.status == ContractStatus.SIGNED
        assert contract.attachments.get().content_type == "image/jpeg"

    def test_sign_with_disguised_file_shows_error(self, org, client_for):
        contract = to_status(make_contract(org.rep_a), ContractStatus.APPROVED, org)
        response = client_for(org.rep_a).post(reverse("contracts:sign", args=[contract.pk]), {
            "signed_on": days(0).isoformat(), "our_signatory": "张伟", "customer_signatory": "李明",
            "scan": SimpleUploadedFile("signed.pdf", b"<html><script>x</script>", content_type="application/pdf"),
        })
        assert response.status_code == 200
        assert "Only PDF, PNG and JPEG files are accepted." in response.content.decode()
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED


class TestAttachments:
    def test_type_is_judged_by_content(self, org, client_for):
        contract = make_contract(org.rep_a)
        client = client_for(org.rep_a)
        url = reverse("contracts:attachment_upload", args=[contract.pk])
        client.post(url, {"kind": "draft", "file": SimpleUploadedFile("evil.pdf", b"MZ\x90\x00", "application/pdf")})
        client.post(url, {"kind": "draft", "file": SimpleUploadedFile("notes.txt", b"hello", "text/plain")})
        assert not contract.attachments.exists()
        client.post(url, {"kind": "draft", "file": SimpleUploadedFile("draft.bin", PDF_BYTES, "application/x-foo")})
        attachment = contract.attachments.get()
        assert attachment.content_type == "application/pdf"
        assert attachment.file.name.endswith(".pdf") and "draft.bin" not in attachment.file.name

    def test_size_limit(self, org, client_for):
        row = ContractSettings.load()
        row.max_attachment_mb = 1
        row.save()
        contract = make_contract(org.rep_a)
        big = PDF_BYTES + b"0" * (1024 * 1024)
        response = client_for(org.rep_a).post(reverse("contracts:attachment_upload", args=[contract.pk]),
                                              {"kind": "draft", "file": SimpleUploadedFile("big.pdf", big)},
                                              follow=True)
        assert "larger than 1 MB" in response.content.decode()
        assert not contract.attachments.exists()

    def test_download_follows_the_scope(self, org, client_for, private_media, settings):
        contract = make_contract(org.rep_a)
        attachment = services.contract_attachment_add(contract=contract, user=org.rep_a, file=pdf("合同草稿.pdf"))
        url = attachment.get_absolute_url()
        response = client_for(org.rep_a).get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PDF_BYTES
        assert response["Content-Type"] == "application/pdf"
        assert "attachment" in response["Content-Disposition"]
        assert client_for(org.manager_a).get(url).status_code == 200
        assert client_for(org.rep_b).get(url).status_code == 404
        assert client_for(org.rep_a2).get(url).status_code == 404
        # an attachment id under another (visible) contract is not found either
        mine = make_contract(org.rep_b)
        assert client_for(org.rep_b).get(
            reverse("contracts:attachment", args=[mine.pk, attachment.pk])).status_code == 404
        # stored privately: not under MEDIA_ROOT, and no public URL exists
        stored = attachment.file.path
        assert str(stored).startswith(str(private_media)) and not str(stored).startswith(str(settings.MEDIA_ROOT))
        with pytest.raises(ValueError):
            attachment.file.url  # noqa: B018

    def test_draft_attachment_removed_only_in_draft(self, org, client_for, django_capture_on_commit_callbacks):
        contract = make_contract(org.rep_a)
        attachment = services.contract_attachment_add(contract=contract, user=org.rep_a, file=pdf())
        path = attachment.file.path
        with django_capture_on_commit_callbacks(execute=True):
            client_for(org.rep_a).post(reverse("contracts:attachment_delete", args=[contract.pk, attachment.pk]))
        assert not contract.attachments.exists()
        import os

        assert not os.path.exists(path)


class TestReceiptView:
    def test_record_partial_payment(self, org, client_for):
        contract = to_status(make_contract(org.rep_a, amount="1000.00"), ContractStatus.SIGNED, org)
        instalment = contract.instalments.get()
        client = client_for(org.rep_a)
        assert 'id="receipt-form"' in client.get(contract.get_absolute_url()).content.decode()
        client.post(reverse("contracts:receipt_create", args=[contract.pk]), {
            "instalment": instalment.pk, "received_on": days(0).isoformat(), "amount": "300",
            "method": "bank_transfer", "reference": "TX-1"})
        instalment.refresh_from_db()
        assert instalment.paid_amount == Decimal("300.00")
        response = client.post(reverse("contracts:receipt_create", args=[contract.pk]), {
            "instalment": instalment.pk, "received_on": days(0).isoformat(), "amount": "800",
            "method": "cash"}, follow=True)
        assert "still due" in response.content.decode()
        instalment.refresh_from_db()
        assert instalment.paid_amount == Decimal("300.00")


class TestContractPrintView:
    @pytest.mark.parametrize(("lang", "heading"), [("zh-hans", "销售合同"), ("en", "Sales contract")])
    def test_both_languages(self, org, client_for, lang, heading):
        contract = make_contract(org.rep_a)
        response = client_for(org.rep_a).get(reverse("contracts:print", args=[contract.pk]), {"lang": lang})
        body = response.content.decode()
        assert response.status_code == 200 and heading in body and contract.number in body
        assert "print.css" in body and "<script>" not in body

    def test_scoped(self, org, client_for):
        contract = make_contract(org.rep_a)
        assert client_for(org.rep_b).get(reverse("contracts:print", args=[contract.pk])).status_code == 404


class TestReviewQueueView:
    def test_manager_sees_team_contracts_waiting(self, org, client_for):
        waiting = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        other_team = services.contract_submit(contract=make_contract(org.rep_b), user=org.rep_b)
        draft = make_contract(org.rep_a2)
        body = client_for(org.manager_a).get(reverse("contracts:review_queue")).content.decode()
        assert waiting.number in body and other_team.number not in body and draft.number not in body

    def test_own_contract_not_in_own_queue(self, org, client_for):
        mine = services.contract_submit(contract=make_contract(org.manager_a), user=org.manager_a)
        assert mine.number not in client_for(org.manager_a).get(reverse("contracts:review_queue")).content.decode()
        assert mine.number in client_for(org.director).get(reverse("contracts:review_queue")).content.decode()

    def test_second_level_goes_to_admins(self, org, client_for):
        row = ContractSettings.load()
        row.second_approval_threshold = Decimal("10")
        row.save()
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        services.contract_approve(contract=contract, user=org.manager_a)
        assert contract.number not in client_for(org.manager_a).get(reverse("contracts:review_queue")).content.decode()
        assert contract.number in client_for(org.admin).get(reverse("contracts:review_queue")).content.decode()

    def test_reps_have_no_queue(self, org, client_for):
        assert client_for(org.rep_a).get(reverse("contracts:review_queue")).status_code == 403


class TestContractsForCustomerPanel:
    def test_panel_scoped(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        contract = make_contract(org.rep_a, customer=customer)
        url = reverse("contracts:for_customer", args=[customer.pk])
        body = client_for(org.rep_a).get(url).content.decode()
        assert contract.number in body and "<html" not in body
        assert client_for(org.rep_b).get(url).status_code == 404
