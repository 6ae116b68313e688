"""The REST API of the pipeline: /api/v1/pipelines/, /stages/, /opportunities/ (scoped, through the
services), and the stage moves with their 409 body."""

import pytest
from rest_framework.test import APIClient

from opportunities.models import Opportunity, StageChange, StageKind
from tests.factories import CustomerFactory
from tests.opportunities.factories import loss_reason, make_opportunity, open_stages, stage

URL = "/api/v1/opportunities/"


@pytest.fixture
def api():
    return APIClient()


def as_user(api, user):
    api.force_authenticate(user)
    return api


@pytest.mark.django_db
class TestPipelineApi:
    def test_pipelines_and_stages_are_listed_in_order(self, api, org, pipeline):
        """Anyone signed in reads the configuration; the stage path is open stages in order, then won/lost."""
        body = as_user(api, org.rep_a).get("/api/v1/pipelines/").json()
        assert body["count"] == 1
        row = body["results"][0]
        assert row["id"] == pipeline.pk and row["is_default"] is True
        assert row["stages"][: len(open_stages())] == [s.pk for s in open_stages()]
        stages = api.get("/api/v1/stages/", {"pipeline": pipeline.pk, "kind": "open"}).json()["results"]
        assert [s["id"] for s in stages] == [s.pk for s in open_stages()]
        assert stages[0]["exit_fields"] == ["contact", "source"]

    def test_configuration_writes_are_for_administrators_only(self, api, org, pipeline):
        """A rep or a manager reads the configuration but writing it is a 403 that changes nothing."""
        first = open_stages()[0]
        for user in (org.rep_a, org.manager_a):
            client = as_user(api, user)
            assert client.post("/api/v1/pipelines/", {"code": "x", "name_zh": "x"}, format="json").status_code == 403
            assert client.patch(f"/api/v1/stages/{first.pk}/", {"name_zh": "x"}, format="json").status_code == 403
            assert client.delete(f"/api/v1/stages/{first.pk}/").status_code == 403
        first.refresh_from_db()
        assert first.name_zh != "x"


@pytest.mark.django_db
class TestOpportunityApi:
    def test_minimal_create_goes_to_the_first_stage_with_the_caller_as_owner(self, api, org, pipeline):
        customer = CustomerFactory(owner=org.rep_a)
        response = as_user(api, org.rep_a).post(
            URL, {"customer": customer.pk, "title": "ERP", "amount": "12000.00"}, format="json"
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["stage"] == open_stages()[0].pk
        assert body["pipeline"] == pipeline.pk
        assert body["owner"] == org.rep_a.pk
        assert body["amount"] == "12000.00"
        assert response["ETag"] == f'W/"{body["id"]}-1"'
        assert StageChange.objects.filter(opportunity_id=body["id"], action="create").count() == 1

    def test_customer_out_of_scope_is_refused(self, api, org, pipeline):
        other = CustomerFactory(owner=org.rep_b)
        response = as_user(api, org.rep_a).post(URL, {"customer": other.pk, "title": "x", "amount": "1"}, format="json")
        assert response.status_code == 400
        assert "customer" in response.json()["errors"]
        assert not Opportunity.objects.exists()

    def test_owner_outside_the_callers_scope_is_400(self, api, org, pipeline):
        """A rep cannot give a deal to someone else; a manager only to people in their teams."""
        customer = CustomerFactory(owner=org.rep_a)
        response = as_user(api, org.rep_a).post(
            URL, {"customer": customer.pk, "title": "x", "amount": "1", "owner": org.rep_a2.pk}, format="json"
        )
        assert response.status_code == 400
        assert "owner" in response.json()["errors"]
        response = as_user(api, org.manager_a).post(
            URL, {"customer": customer.pk, "title": "x", "amount": "1", "owner": org.rep_b.pk}, format="json"
        )
        assert response.status_code == 400
        response = api.post(URL, {"customer": customer.pk, "title": "x", "amount": "1", "owner": org.rep_a2.pk},
                            format="json")
        assert response.status_code == 201
        assert response.json()["owner"] == org.rep_a2.pk

    def test_idempotency_key_creates_one_deal(self, api, org, pipeline):
        customer = CustomerFactory(owner=org.rep_a)
        client = as_user(api, org.rep_a)
        payload = {"customer": customer.pk, "title": "ERP", "amount": "12000.00"}
        first = client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="opp-1")
        again = client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="opp-1")
        assert first.status_code == again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert again["Idempotent-Replayed"] == "true"
        assert Opportunity.objects.count() == 1

    def test_scope_out_of_scope_is_404_on_every_verb(self, api, org, pipeline):
        """rep_a cannot read, list, patch or move rep_b's deal (404, as if it did not exist)."""
        theirs = make_opportunity(org.rep_b)
        mine = make_opportunity(org.rep_a)
        client = as_user(api, org.rep_a)
        assert [row["id"] for row in client.get(URL).json()["results"]] == [mine.pk]
        assert client.get(f"{URL}{theirs.pk}/").status_code == 404
        assert client.patch(f"{URL}{theirs.pk}/", {"title": "mine"}, format="json").status_code == 404
        assert client.post(f"{URL}{theirs.pk}/transition/", {"action": "advance"}, format="json").status_code == 404
        # there is no delete service: deleting is not offered at all
        assert client.delete(f"{URL}{mine.pk}/").status_code == 405
        theirs.refresh_from_db()
        assert theirs.title != "mine" and theirs.version == 1
        # the team's manager sees both of team A's deals but not team B's
        ids = {row["id"] for row in as_user(api, org.manager_a).get(URL).json()["results"]}
        assert ids == {mine.pk}

    def test_stage_and_version_cannot_be_patched(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a)
        client = as_user(api, org.rep_a)
        response = client.patch(f"{URL}{deal.pk}/", {"stage": open_stages()[1].pk, "version": 9}, format="json",
                                HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 400
        assert response.json()["errors"] == {"stage": ["This field cannot be set."],
                                             "version": ["This field cannot be set."]}
        deal.refresh_from_db()
        assert deal.stage_id == open_stages()[0].pk

    def test_patch_with_if_match_and_412_on_a_stale_etag(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a)
        client = as_user(api, org.rep_a)
        etag = client.get(f"{URL}{deal.pk}/")["ETag"]
        response = client.patch(f"{URL}{deal.pk}/", {"next_step": "Demo"}, format="json", HTTP_IF_MATCH=etag)
        assert response.status_code == 200
        assert response.json()["version"] == 2
        stale = client.patch(f"{URL}{deal.pk}/", {"next_step": "Call"}, format="json", HTTP_IF_MATCH=etag)
        assert stale.status_code == 412
        assert stale.json()["code"] == "precondition_failed"
        deal.refresh_from_db()
        assert deal.next_step == "Demo"

    def test_filters_search_ordering_and_pagination(self, api, org, pipeline):
        small = make_opportunity(org.rep_a, amount="1000.00", title="Small CRM")
        big = make_opportunity(org.rep_a, amount="900000.00", title="Big ERP")
        lost = make_opportunity(org.rep_a, amount="5000.00", title="Lost one")
        from opportunities import services

        services.opportunity_lose(opportunity=lost, user=org.rep_a, loss_reason=loss_reason())
        client = as_user(api, org.rep_a)
        body = client.get(URL, {"page_size": 2, "ordering": "amount"}).json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 3 and body["next"] and body["previous"] is None
        assert [row["id"] for row in body["results"]] == [small.pk, lost.pk]
        assert [r["id"] for r in client.get(URL, {"status": "open", "ordering": "-amount"}).json()["results"]] == [
            big.pk, small.pk,
        ]
        assert [r["id"] for r in client.get(URL, {"status": "lost"}).json()["results"]] == [lost.pk]
        assert [r["id"] for r in client.get(URL, {"amount_min": "100000"}).json()["results"]] == [big.pk]
        assert [r["id"] for r in client.get(URL, {"search": "erp"}).json()["results"]] == [big.pk]

    def test_list_runs_a_constant_number_of_queries(self, api, org, pipeline, django_assert_max_num_queries):
        for _ in range(5):
            make_opportunity(org.rep_a)
        client = as_user(api, org.rep_a)
        with django_assert_max_num_queries(8):
            assert client.get(URL).json()["count"] == 5


@pytest.mark.django_db
class TestOpportunityTransitionApi:
    def url(self, deal):
        return f"{URL}{deal.pk}/transition/"

    def test_advance_refused_is_409_naming_the_unmet_criteria(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a)
        response = as_user(api, org.rep_a).post(self.url(deal), {"action": "advance"}, format="json",
                                                HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "transition_not_allowed"
        assert "cannot advance" in body["detail"]
        # each unmet criterion is named by a stable code, with the field and the message in the caller's language
        unmet = {item["code"]: item for item in body["unmet"]}
        assert {"field:contact", "field:source"} <= set(unmet)
        assert unmet["field:contact"] == {"code": "field:contact", "detail": "Contact", "field": "contact"}
        checklist = [item for item in body["unmet"] if item["code"].startswith("checklist:")]
        assert checklist and all(item["field"] is None and item["detail"] for item in checklist)
        deal.refresh_from_db()
        assert deal.stage_id == open_stages()[0].pk

    def test_advance_move_back_lose_reopen(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a, complete=True)
        client = as_user(api, org.rep_a)
        moved = client.post(self.url(deal), {"action": "advance", "note": "qualified"}, format="json")
        assert moved.status_code == 200, moved.json()
        assert moved.json()["stage"] == open_stages()[1].pk
        assert moved["ETag"] == f'W/"{deal.pk}-2"'

        no_reason = client.post(self.url(deal), {"action": "move_back"}, format="json")
        assert no_reason.status_code == 409
        back = client.post(self.url(deal), {"action": "move_back", "reason": "budget frozen",
                                            "to_stage": open_stages()[0].pk}, format="json")
        assert back.status_code == 200
        assert back.json()["stage"] == open_stages()[0].pk

        lost = client.post(self.url(deal), {"action": "lose", "loss_reason": loss_reason().pk, "note": "price"},
                           format="json")
        assert lost.status_code == 200
        assert lost.json()["stage"] == stage(StageKind.LOST).pk
        assert lost.json()["stage_kind"] == "lost"

        # reopening is for managers: a rep gets 403, the manager succeeds
        assert client.post(self.url(deal), {"action": "reopen"}, format="json").status_code == 403
        reopened = as_user(api, org.manager_a).post(self.url(deal), {"action": "reopen"}, format="json")
        assert reopened.status_code == 200
        assert reopened.json()["stage"] == open_stages()[0].pk
        assert list(StageChange.objects.filter(opportunity=deal).order_by("id").values_list("action", flat=True)) == [
            "create", "advance", "move_back", "lose", "reopen",
        ]

    def test_win_without_a_signed_contract_is_409(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a, complete=True)
        response = as_user(api, org.rep_a).post(self.url(deal), {"action": "win"}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "transition_not_allowed"
        assert [item["code"] for item in response.json()["unmet"]] == ["not_last_open_stage", "no_signed_contract"]

    def test_409_body_follows_accept_language(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a)
        response = as_user(api, org.rep_a).post(self.url(deal), {"action": "advance"}, format="json",
                                                HTTP_ACCEPT_LANGUAGE="zh-hans")
        unmet = {item["code"]: item["detail"] for item in response.json()["unmet"]}
        assert unmet["field:contact"] == "联系人"

    def test_stale_if_match_or_expected_stage_refuses_the_move(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a, complete=True)
        client = as_user(api, org.rep_a)
        etag = client.get(f"{URL}{deal.pk}/")["ETag"]
        assert client.post(self.url(deal), {"action": "advance"}, format="json", HTTP_IF_MATCH=etag).status_code == 200
        stale = client.post(self.url(deal), {"action": "advance"}, format="json", HTTP_IF_MATCH=etag)
        assert stale.status_code == 412
        moved_meanwhile = client.post(self.url(deal), {"action": "advance", "expected_stage": open_stages()[0].pk},
                                      format="json")
        assert moved_meanwhile.status_code == 409
        assert moved_meanwhile.json()["code"] == "conflict"
        deal.refresh_from_db()
        assert deal.stage_id == open_stages()[1].pk

    def test_unknown_action_and_fields_are_400(self, api, org, pipeline):
        deal = make_opportunity(org.rep_a)
        client = as_user(api, org.rep_a)
        assert client.post(self.url(deal), {"action": "jump"}, format="json").status_code == 400
        response = client.post(self.url(deal), {"action": "advance", "stage": 1}, format="json")
        assert response.status_code == 400
        assert "stage" in response.json()["errors"]
