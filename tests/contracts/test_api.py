"""The contracts REST API: scoped reads, drafting, the lifecycle moves and receipts through the services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from contracts import services
from contracts.models import Contract, ContractStatus
from tests.factories import CustomerFactory

from .factories import days, make_contract, to_status

pytestmark = pytest.mark.django_db

URL = "/api/v1/contracts/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.credentials(HTTP_ACCEPT_LANGUAGE="en")
    return client


class TestContractApiRead:
    def test_list_is_scoped(self, org):
        mine = make_contract(org.rep_a)
        make_contract(org.rep_b)
        data = api(org.rep_a).get(URL).json()
        assert [row["number"] for row in data["results"]] == [mine.number]
        assert data["results"][0]["allowed_actions"] == ["edit", "submit"]

    def test_out_of_scope_is_404(self, org):
        contract = make_contract(org.rep_b)
        assert api(org.rep_a).get(f"{URL}{contract.pk}/").status_code == 404
        assert api(org.rep_a).post(f"{URL}{contract.pk}/submit/").status_code == 404

    def test_list_query_count_constant(self, org, django_assert_max_num_queries):
        for _ in range(2):
            services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        client = api(org.manager_a)
        with django_assert_max_num_queries(20) as few:
            client.get(URL)
        for _ in range(6):
            services.contract_submit(contract=make_contract(org.rep_a2), user=org.rep_a2)
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert len(client.get(URL).json()["results"]) == 8


class TestContractApiWrite:
    def test_create_submit_approve(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        response = api(org.rep_a).post(URL, {
            "customer": customer.pk, "title": "API 合同", "currency": "CNY",
            "lines": [{"name": "Licence", "quantity": "2", "unit_price": "100.00", "tax_rate": "0"}],
            "instalments": [{"due_date": days(30).isoformat(), "amount": "200.00"}],
        }, format="json")
        assert response.status_code == 201, response.content
        pk = response.json()["id"]
        assert response.json()["total_amount"] == "200.00"
        assert api(org.rep_a).post(f"{URL}{pk}/submit/").json()["status"] == "in_review"
        refused = api(org.rep_a).post(f"{URL}{pk}/approve/", {"comment": "me"}, format="json")
        assert refused.status_code == 409 and refused.json()["code"] == "transition_not_allowed"
        assert [item["code"] for item in refused.json()["unmet"]] == ["cannot_review"]
        assert api(org.manager_a).post(f"{URL}{pk}/approve/", {}, format="json").json()["status"] == "approved"

    def test_plan_mismatch_is_400(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        response = api(org.rep_a).post(URL, {
            "customer": customer.pk, "title": "x",
            "lines": [{"name": "Licence", "quantity": "1", "unit_price": "100.00", "tax_rate": "0"}],
            "instalments": [{"due_date": days(30).isoformat(), "amount": "90.00"}],
        }, format="json")
        assert response.status_code == 400 and not Contract.objects.exists()

    def test_receipt(self, org):
        contract = to_status(make_contract(org.rep_a, amount="500.00"), ContractStatus.SIGNED, org)
        instalment = contract.instalments.get()
        response = api(org.rep_a).post(f"{URL}{contract.pk}/receipts/", {
            "instalment": instalment.pk, "amount": "200.00", "method": "cash"}, format="json")
        assert response.status_code == 200
        assert response.json()["instalments"][0]["paid_amount"] == "200.00"
        over = api(org.rep_a).post(f"{URL}{contract.pk}/receipts/", {
            "instalment": instalment.pk, "amount": "400.00"}, format="json")
        assert over.status_code == 400
        instalment.refresh_from_db()
        assert instalment.paid_amount == Decimal("200.00")

    def test_terminate_needs_reason(self, org):
        contract = to_status(make_contract(org.rep_a), ContractStatus.ACTIVE, org)
        assert api(org.manager_a).post(f"{URL}{contract.pk}/terminate/", {}, format="json").status_code == 400
        response = api(org.manager_a).post(f"{URL}{contract.pk}/terminate/", {"reason": "违约"}, format="json")
        assert response.json()["status"] == "terminated"

    def test_review_queue(self, org):
        contract = services.contract_submit(contract=make_contract(org.rep_a), user=org.rep_a)
        assert [c["id"] for c in api(org.manager_a).get(f"{URL}review-queue/").json()["results"]] == [contract.pk]
        assert api(org.manager_b).get(f"{URL}review-queue/").json()["results"] == []


class TestContractApiTransitionAndConcurrency:
    def test_transition_endpoint_and_409_naming_each_unmet_rule(self, org):
        contract = make_contract(org.rep_a)
        contract.instalments.all().delete()
        client = api(org.rep_a)
        refused = client.post(f"{URL}{contract.pk}/transition/", {"action": "submit"}, format="json")
        assert refused.status_code == 409
        body = refused.json()
        assert body["code"] == "transition_not_allowed"
        assert body["unmet"] == [{"code": "no_plan", "detail": "Add a payment plan before submitting.", "field": None}]
        contract.refresh_from_db()
        assert contract.status == ContractStatus.DRAFT

        ok = make_contract(org.rep_a)
        moved = client.post(f"{URL}{ok.pk}/transition/", {"action": "submit"}, format="json")
        assert moved.status_code == 200 and moved.json()["status"] == "in_review"
        approved = api(org.manager_a).post(f"{URL}{ok.pk}/transition/", {"action": "approve", "comment": "ok"},
                                           format="json")
        assert approved.json()["status"] == "approved"
        assert client.post(f"{URL}{ok.pk}/transition/", {"action": "sign"}, format="json").status_code == 400

    def test_version_etag_and_412_on_a_stale_if_match(self, org):
        contract = make_contract(org.rep_a)
        client = api(org.rep_a)
        read = client.get(f"{URL}{contract.pk}/")
        assert read["ETag"] == f'W/"{contract.pk}-1"' and read.json()["version"] == 1
        edited = client.patch(f"{URL}{contract.pk}/", {"title": "新标题"}, format="json", HTTP_IF_MATCH=read["ETag"])
        assert edited.status_code == 200, edited.json()
        assert edited.json()["version"] == 2 and edited["ETag"] == f'W/"{contract.pk}-2"'
        stale = client.post(f"{URL}{contract.pk}/submit/", HTTP_IF_MATCH=read["ETag"])
        assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
        contract.refresh_from_db()
        assert (contract.status, contract.title, contract.version) == (ContractStatus.DRAFT, "新标题", 2)
        assert client.post(f"{URL}{contract.pk}/submit/", HTTP_IF_MATCH=edited["ETag"]).json()["version"] == 3

    def test_patch_edits_only_a_draft_and_refuses_other_fields(self, org):
        contract = make_contract(org.rep_a)
        client = api(org.rep_a)
        refused = client.patch(f"{URL}{contract.pk}/", {"status": "approved", "version": 7}, format="json")
        assert refused.status_code == 400 and set(refused.json()["errors"]) == {"status", "version"}
        services.contract_submit(contract=contract, user=org.rep_a)
        late = client.patch(f"{URL}{contract.pk}/", {"title": "x"}, format="json")
        assert late.status_code == 409
        assert [item["code"] for item in late.json()["unmet"]] == ["not_draft"]
        assert api(org.rep_b).patch(f"{URL}{contract.pk}/", {"title": "x"}, format="json").status_code == 404
        contract.refresh_from_db()
        assert contract.title != "x"

    def test_delete_only_a_draft_never_submitted(self, org):
        draft, submitted = make_contract(org.rep_a), make_contract(org.rep_a)
        services.contract_submit(contract=submitted, user=org.rep_a)
        services.contract_reject(contract=submitted, user=org.manager_a, comment="redo")
        assert api(org.rep_b).delete(f"{URL}{draft.pk}/").status_code == 404
        refused = api(org.rep_a).delete(f"{URL}{submitted.pk}/")
        assert refused.status_code == 409 and refused.json()["code"] == "not_deletable"
        assert api(org.rep_a).delete(f"{URL}{draft.pk}/").status_code == 204
        assert list(Contract.objects.values_list("pk", flat=True)) == [submitted.pk]


class TestContractApiFilters:
    def test_the_pages_filters_overdue_and_date_range(self, org):
        overdue = to_status(make_contract(org.rep_a, instalments=[{"due_date": days(-3), "amount": Decimal("1000.00")}]),
                            ContractStatus.SIGNED, org)
        current = to_status(make_contract(org.rep_a), ContractStatus.SIGNED, org)
        draft = make_contract(org.rep_a)
        client = api(org.rep_a)
        assert [r["id"] for r in client.get(URL, {"overdue": "true"}).json()["results"]] == [overdue.pk]
        assert {r["id"] for r in client.get(URL, {"overdue": "false"}).json()["results"]} == {current.pk, draft.pk}
        assert client.get(URL, {"date_from": days(1).isoformat()}).json()["count"] == 0
        assert client.get(URL, {"date_to": days(0).isoformat(), "status": "draft"}).json()["count"] == 1
        assert client.get(URL, {"date_from": "31.02.2026"}).status_code == 400
