"""The after-sales REST API: scoped tickets, moves through the lifecycle, the public endpoint."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from aftersales import services
from aftersales.models import ServiceSettings, Ticket, TicketStatus
from tests.factories import CustomerFactory

from .factories import make_ticket


@pytest.fixture
def api():
    def login(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return login


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
class TestTicketApi:
    def test_list_and_detail_are_scoped(self, org, api):
        mine = make_ticket(owner=org.rep_a)
        other = make_ticket(owner=org.rep_b)
        client = api(org.rep_a)
        ids = [row["id"] for row in client.get("/api/v1/tickets/").json()["results"]]
        assert ids == [mine.pk]
        assert client.get(f"/api/v1/tickets/{other.pk}/").status_code == 404
        assert client.post(f"/api/v1/tickets/{other.pk}/transition/", {"transition": "start"}).status_code == 404

    def test_create_and_move(self, org, api):
        customer = CustomerFactory(owner=org.rep_a)
        client = api(org.rep_a)
        response = client.post("/api/v1/tickets/", {
            "customer": customer.pk, "kind": "repair", "priority": "high", "subject": "Broken", "owner": org.rep_a.pk,
        }, format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["source"] == "api" and body["allowed_transitions"] == ["start"]
        assert body["resolution_due_at"] is not None
        moved = client.post(f"/api/v1/tickets/{body['id']}/transition/", {"transition": "start"}, format="json")
        assert moved.status_code == 200 and moved.json()["status"] == "in_progress"
        refused = client.post(f"/api/v1/tickets/{body['id']}/transition/", {"transition": "close"},
                              format="json")
        assert refused.status_code == 409 and refused.json()["code"] == "transition_not_allowed"
        assert [item["code"] for item in refused.json()["unmet"]] == ["not_allowed"]

    def test_cannot_create_for_a_customer_out_of_scope_or_set_the_status(self, org, api):
        other = CustomerFactory(owner=org.rep_b)
        client = api(org.rep_a)
        response = client.post("/api/v1/tickets/", {"customer": other.pk, "kind": "repair", "subject": "x"},
                               format="json")
        assert response.status_code == 400 and "customer" in response.json()["errors"]
        mine = CustomerFactory(owner=org.rep_a)
        response = client.post("/api/v1/tickets/", {"customer": mine.pk, "kind": "repair", "subject": "x",
                                                            "status": "closed"}, format="json")
        assert response.status_code == 400 and "status" in response.json()["errors"]
        assert not Ticket.objects.exists()

    def test_comments(self, org, api):
        ticket = make_ticket(owner=org.rep_a)
        client = api(org.rep_a)
        url = f"/api/v1/tickets/{ticket.pk}/comments/"
        assert client.post(url, {"body": "We will call", "visibility": "public"}, format="json").status_code == 201
        assert [c["body"] for c in client.get(url).json()] == ["We will call"]
        ticket.refresh_from_db()
        assert ticket.first_responded_at is not None


@pytest.mark.django_db
class TestPublicTicketApi:
    def test_create_with_the_customer_token_and_rate_limit(self, org):
        ServiceSettings.objects.filter(pk=1).update(public_form_limit_per_hour=2)
        portal = services.portal_get_or_create(customer=CustomerFactory(owner=org.rep_a))
        client = APIClient()
        url = f"/api/v1/service/public/{portal.token}/tickets/"
        data = {"name": "Han Meimei", "email": "han@example.com", "kind": "consultation", "subject": "Question",
                "description": "How do I export?"}
        first = client.post(url, data, format="json", REMOTE_ADDR="198.51.100.7")
        assert first.status_code == 201
        assert first.json()["status"] == TicketStatus.OPEN and "/service/public/ticket/" in first.json()["status_url"]
        assert client.post(url, {**data, "email": "", "phone": ""}, format="json",
                           REMOTE_ADDR="198.51.100.7").status_code == 400
        assert client.post(url, data, format="json", REMOTE_ADDR="198.51.100.7").status_code == 429
        assert client.post("/api/v1/service/public/bad-token/tickets/", data, format="json").status_code == 404
        assert Ticket.objects.get().source == "api"


@pytest.mark.django_db
class TestTicketVersionsAndDelete:
    def test_each_change_moves_the_version_and_a_stale_if_match_is_412(self, org, api):
        ticket = make_ticket(owner=org.rep_a)
        client = api(org.rep_a)
        read = client.get(f"/api/v1/tickets/{ticket.pk}/")
        assert read["ETag"] == f'W/"{ticket.pk}-1"' and read.json()["version"] == 1
        edited = client.patch(f"/api/v1/tickets/{ticket.pk}/", {"subject": "新 New"}, format="json",
                              HTTP_IF_MATCH=read["ETag"])
        assert edited.status_code == 200 and edited.json()["version"] == 2
        stale = client.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"transition": "start"}, format="json",
                            HTTP_IF_MATCH=read["ETag"])
        assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
        ticket.refresh_from_db()
        assert (ticket.status, ticket.version) == (TicketStatus.OPEN, 2)
        moved = client.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"transition": "start"}, format="json",
                            HTTP_IF_MATCH=edited["ETag"])
        assert moved.status_code == 200 and moved["ETag"] == f'W/"{ticket.pk}-3"'

    def test_tickets_are_never_deleted(self, org, api):
        ticket = make_ticket(owner=org.rep_a)
        assert api(org.rep_a).delete(f"/api/v1/tickets/{ticket.pk}/").status_code == 405
        assert Ticket.objects.filter(pk=ticket.pk).exists()


@pytest.mark.django_db
class TestTicketFilters:
    def test_the_queue_pages_filters(self, org, api):
        mine = make_ticket(owner=org.rep_a, customer=CustomerFactory(owner=org.rep_a))
        unassigned = make_ticket(customer=CustomerFactory(owner=org.rep_a))
        services.ticket_transition(ticket=mine, transition="start", by=org.rep_a)
        client = api(org.manager_a)
        ids = lambda **params: {row["id"] for row in client.get("/api/v1/tickets/", params).json()["results"]}  # noqa: E731
        assert ids(view="unassigned") == {unassigned.pk}
        assert ids(status="in_progress") == {mine.pk}
        assert ids(status="open") == {mine.pk, unassigned.pk}
        assert ids(sla_state="breached") == set()
        assert client.get("/api/v1/tickets/", {"view": "everyone"}).status_code == 400


@pytest.mark.django_db
class TestTicketTransitionBody:
    def test_transition_takes_action_like_the_other_resources(self, org, api):
        ticket = make_ticket(owner=org.rep_a)
        client = api(org.rep_a)
        moved = client.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"action": "start"}, format="json")
        assert moved.status_code == 200 and moved.json()["status"] == "in_progress"
        missing = client.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"note": "?"}, format="json",
                              HTTP_ACCEPT_LANGUAGE="en")
        assert missing.status_code == 400 and missing.json()["errors"] == {"action": ["Choose the move."]}
