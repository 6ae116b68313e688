"""The customers REST API: the same scope and services as the pages."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from leads.models import Customer
from tests.factories import CustomerFactory


@pytest.fixture
def api():
    def login(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return login


LIST = "/api/v1/customers/"


def detail(pk):
    return f"{LIST}{pk}/"


@pytest.mark.django_db
class TestCustomerApi:
    def test_list_and_search_are_scoped(self, org, api):
        CustomerFactory(owner=org.rep_a, name="云帆科技", phone="13812345678")
        CustomerFactory(owner=org.rep_b, name="云帆 B", phone="13812345679")
        body = api(org.rep_a).get(LIST, {"q": "云帆"}).json()
        assert [c["name"] for c in body["results"]] == ["云帆科技"]

    def test_out_of_scope_is_404_on_every_verb(self, org, api):
        other = CustomerFactory(owner=org.rep_b)
        client = api(org.rep_a)
        assert client.get(detail(other.pk)).status_code == 404
        assert client.patch(detail(other.pk), {"name": "x"}, format="json").status_code == 404
        assert client.post(f"{detail(other.pk)}claim/").status_code == 404

    def test_create_through_the_service(self, org, api):
        response = api(org.rep_a).post(LIST, {"name": "Acme", "phone": "138 1234 5678", "tags": ["VIP"]}, format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["owner"] == org.rep_a.pk and body["phone"] == "+8613812345678" and body["tags"] == ["VIP"]
        assert response["ETag"] == f'W/"{body["id"]}-1"'

    def test_create_for_someone_outside_the_scope_is_refused(self, org, api):
        response = api(org.rep_a).post(LIST, {"name": "Acme", "owner": org.rep_b.pk}, format="json")
        assert response.status_code == 400 and response.json()["code"] == "invalid"

    def test_update_with_a_stale_if_match_is_412(self, org, api):
        customer = CustomerFactory(owner=org.rep_a)
        client = api(org.rep_a)
        ok = client.patch(detail(customer.pk), {"region": "华东"}, format="json", HTTP_IF_MATCH=f'W/"{customer.pk}-1"')
        assert ok.status_code == 200 and ok.json()["version"] == 2
        stale = client.patch(detail(customer.pk), {"region": "华南"}, format="json", HTTP_IF_MATCH=f'W/"{customer.pk}-1"')
        assert stale.status_code == 412
        customer.refresh_from_db()
        assert customer.region == "华东"

    def test_tier_is_read_only(self, org, api):
        customer = CustomerFactory(owner=org.rep_a)
        response = api(org.rep_a).patch(detail(customer.pk), {"tier": "A"}, format="json")
        assert response.status_code == 400

    def test_claim_and_the_second_claim_conflicts(self, org, api):
        lead = CustomerFactory(owner=None, team=org.team_a)
        assert api(org.rep_a).post(f"{detail(lead.pk)}claim/").status_code == 200
        Customer.objects.filter(pk=lead.pk).update(owner=None)  # back in the pool, then raced
        api(org.rep_a2).post(f"{detail(lead.pk)}claim/")
        second = api(org.manager_a).post(f"{detail(lead.pk)}claim/")
        assert second.status_code == 409

    def test_assign_needs_a_manager(self, org, api):
        customer = CustomerFactory(owner=org.rep_a)
        assert api(org.rep_a).post(f"{detail(customer.pk)}assign/", {"owner": org.rep_a2.pk}, format="json").status_code == 403
        response = api(org.manager_a).post(f"{detail(customer.pk)}assign/", {"owner": org.rep_a2.pk}, format="json")
        assert response.status_code == 200 and response.json()["owner"] == org.rep_a2.pk

    def test_release(self, org, api):
        customer = CustomerFactory(owner=org.rep_a)
        response = api(org.rep_a).post(f"{detail(customer.pk)}release/", {"reason": "wrong region"}, format="json")
        assert response.status_code == 200 and response.json()["owner"] is None


@pytest.mark.django_db
class TestCustomerApiFiltersAndDelete:
    def test_the_list_pages_filters(self, org, api):
        from datetime import timedelta

        from django.utils import timezone

        from leads import services

        late = CustomerFactory(owner=org.rep_a, next_follow_up_at=timezone.now() - timedelta(days=1))
        fresh = CustomerFactory(owner=org.rep_a, next_follow_up_at=timezone.now() + timedelta(days=3))
        services.customer_update(customer=fresh, by=org.rep_a, data={"tags": ["VIP"]})
        client = api(org.rep_a)
        ids = lambda **params: {row["id"] for row in client.get(LIST, params).json()["results"]}  # noqa: E731
        assert ids(overdue="true") == {late.pk}
        assert ids(overdue="false") == {fresh.pk}
        assert ids(tag="VIP") == {fresh.pk}
        assert ids(needs_update="false") == {fresh.pk}  # its profile was just saved
        assert ids(needs_update="true") == {late.pk}

    def test_customers_are_not_deleted_and_a_stale_if_match_on_a_pool_move_is_412(self, org, api):
        customer = CustomerFactory(owner=org.rep_a)
        client = api(org.rep_a)
        assert client.delete(detail(customer.pk)).status_code == 405
        etag = client.get(detail(customer.pk))["ETag"]
        client.patch(detail(customer.pk), {"region": "华东"}, format="json")
        stale = client.post(f"{detail(customer.pk)}release/", {}, format="json", HTTP_IF_MATCH=etag)
        assert stale.status_code == 412
        customer.refresh_from_db()
        assert customer.owner_id == org.rep_a.pk and Customer.objects.filter(pk=customer.pk).exists()


def test_route_is_registered():
    assert reverse("customer-list") == LIST
