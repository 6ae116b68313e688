"""/api/v1/contacts/: the contacts of the customers in the caller's scope, written through the services."""

import pytest
from rest_framework.test import APIClient

from leads.models import Contact
from tests.factories import CustomerFactory

URL = "/api/v1/contacts/"


@pytest.fixture
def api():
    return APIClient()


@pytest.mark.django_db
class TestContactApi:
    def test_create_list_patch_delete_own(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        api.force_authenticate(org.rep_a)
        response = api.post(URL, {"customer": customer.pk, "name": "王总 Wang", "is_decision_maker": True},
                            format="json")
        assert response.status_code == 201, response.json()
        pk = response.json()["id"]
        body = api.get(URL, {"customer": customer.pk}).json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert [row["id"] for row in body["results"]] == [pk]
        assert api.patch(f"{URL}{pk}/", {"phone": "13800000000"}, format="json").json()["phone"].endswith("13800000000")
        assert api.delete(f"{URL}{pk}/").status_code == 204
        assert not Contact.objects.exists()

    def test_out_of_scope_is_404_on_every_verb(self, api, org):
        mine = Contact.objects.create(customer=CustomerFactory(owner=org.rep_a), name="Mine")
        theirs = Contact.objects.create(customer=CustomerFactory(owner=org.rep_b), name="Theirs")
        api.force_authenticate(org.rep_a)
        assert [row["id"] for row in api.get(URL).json()["results"]] == [mine.pk]
        assert api.get(f"{URL}{theirs.pk}/").status_code == 404
        assert api.patch(f"{URL}{theirs.pk}/", {"name": "x"}, format="json").status_code == 404
        assert api.delete(f"{URL}{theirs.pk}/").status_code == 404
        theirs.refresh_from_db()
        assert theirs.name == "Theirs"
        # nor can a contact be added to a customer outside the scope
        response = api.post(URL, {"customer": theirs.customer_id, "name": "x"}, format="json")
        assert response.status_code == 400
        assert "customer" in response.json()["errors"]

    def test_customer_cannot_be_changed_and_unknown_fields_are_400(self, api, org):
        contact = Contact.objects.create(customer=CustomerFactory(owner=org.rep_a), name="Mine")
        other = CustomerFactory(owner=org.rep_a)
        api.force_authenticate(org.rep_a)
        response = api.patch(f"{URL}{contact.pk}/", {"customer": other.pk, "age": 3}, format="json",
                             HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"customer", "age"}
        contact.refresh_from_db()
        assert contact.customer_id != other.pk

    def test_search_and_idempotency(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        api.force_authenticate(org.rep_a)
        payload = {"customer": customer.pk, "name": "李经理 Li", "email": "li@example.com"}
        first = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
        again = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
        assert first.json()["id"] == again.json()["id"]
        assert Contact.objects.count() == 1
        Contact.objects.create(customer=customer, name="Zhang")
        assert [row["name"] for row in api.get(URL, {"search": "li@"}).json()["results"]] == ["李经理 Li"]


@pytest.mark.django_db
class TestContactVersions:
    def test_etag_moves_with_each_save_and_a_stale_if_match_changes_nothing(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        contact = Contact.objects.create(customer=customer, name="李经理 Li")
        api.force_authenticate(org.rep_a)
        read = api.get(f"{URL}{contact.pk}/")
        assert read["ETag"] == f'W/"{contact.pk}-1"' and read.json()["version"] == 1
        saved = api.patch(f"{URL}{contact.pk}/", {"title": "CTO"}, format="json", HTTP_IF_MATCH=read["ETag"])
        assert saved.status_code == 200 and saved["ETag"] == f'W/"{contact.pk}-2"'
        stale = api.patch(f"{URL}{contact.pk}/", {"title": "CEO"}, format="json", HTTP_IF_MATCH=read["ETag"])
        assert stale.status_code == 412
        assert api.delete(f"{URL}{contact.pk}/", HTTP_IF_MATCH=read["ETag"]).status_code == 412
        contact.refresh_from_db()
        assert (contact.title, contact.version) == ("CTO", 2)
        assert api.delete(f"{URL}{contact.pk}/", HTTP_IF_MATCH=saved["ETag"]).status_code == 204

    def test_version_cannot_be_set(self, api, org):
        contact = Contact.objects.create(customer=CustomerFactory(owner=org.rep_a), name="Li")
        api.force_authenticate(org.rep_a)
        refused = api.patch(f"{URL}{contact.pk}/", {"version": 5}, format="json", HTTP_ACCEPT_LANGUAGE="en")
        assert refused.status_code == 400
        assert refused.json()["errors"] == {"version": ["This field cannot be set."]}
