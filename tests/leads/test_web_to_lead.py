"""The public web-to-lead endpoint of a source channel: HTML form and JSON, validation, honeypot,
per-IP rate limit, pool or round-robin assignment."""

import json

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import translation

from leads.models import Customer, WebAssignment
from tests.leads.factories import channel, settings_row


@pytest.fixture(autouse=True)
def clear_rate_limits():
    cache.clear()  # this test run's own Redis database / key prefix
    yield
    cache.clear()


@pytest.fixture
def web(org):
    return channel("website", name="Website registration", web_enabled=True, web_team=org.team_a,
                   web_assignment=WebAssignment.POOL, is_active=True)


@pytest.fixture
def public():
    """An anonymous browser that enforces CSRF like a real one posting from another site."""
    return Client(enforce_csrf_checks=True)


def url(channel_obj) -> str:
    return reverse("leads:web_to_lead", args=[channel_obj.web_token])


def post_json(client, target, payload, ip="203.0.113.5"):
    return client.post(target, data=json.dumps(payload), content_type="application/json", REMOTE_ADDR=ip)


@pytest.mark.django_db
class TestForm:
    def test_get_shows_the_form(self, web, public):
        response = public.get(url(web))
        assert response.status_code == 200 and 'id="web-lead-form"' in response.content.decode()

    def test_a_valid_form_creates_a_lead_in_the_team_pool_noting_its_channel(self, org, web, public):
        response = public.post(url(web), {"company": "杭州青禾教育科技有限公司", "contact_name": "林静",
                                          "phone": "138 0000 1234", "email": "", "message": "想了解私有化部署"})
        assert response.status_code == 200 and 'id="thanks"' in response.content.decode()
        lead = Customer.objects.get()
        assert (lead.owner, lead.team, lead.source, lead.status) == (None, org.team_a, web, "lead")
        assert lead.phone == "+8613800001234" and lead.needs == "想了解私有化部署"
        assert lead.contacts.get().name == "林静"
        with translation.override("zh-hans"):  # the request's language (the default)
            assert str(web) in lead.history.first().history_change_reason
        assert lead in Customer.objects.visible_to(org.rep_a)

    def test_invalid_input_is_shown_with_errors(self, web, public):
        response = public.post(url(web), {"contact_name": "", "email": "not-an-email"})
        assert response.status_code == 400
        body = response.content.decode()
        assert "is-invalid" in body
        assert not Customer.objects.exists()

    def test_unknown_or_disabled_token_is_404(self, web, public):
        assert public.get(reverse("leads:web_to_lead", args=["nope"])).status_code == 404
        web.web_enabled = False
        web.save()
        assert public.get(url(web)).status_code == 404


@pytest.mark.django_db
class TestJson:
    def test_created(self, web, public):
        response = post_json(public, url(web), {"contact_name": "Grace Liu", "email": "grace@example.com", "company": "Acme"})
        assert response.status_code == 201 and response.json() == {"ok": True}
        assert Customer.objects.get().email == "grace@example.com"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"contact_name": "A"}, "__all__"),  # neither phone nor email
            ({"contact_name": "A", "email": "nope"}, "email"),
            ({"contact_name": "A", "phone": "12"}, "phone"),
            ({"email": "a@example.com"}, "contact_name"),
            ({"contact_name": "A" * 300, "email": "a@example.com"}, "contact_name"),
        ],
    )
    def test_validation_errors_name_the_field(self, web, public, payload, field):
        response = post_json(public, url(web), payload)
        assert response.status_code == 400
        body = response.json()
        assert body["ok"] is False and field in body["errors"] and body["errors"][field][0]
        assert not Customer.objects.exists()

    def test_malformed_json(self, web, public):
        response = public.post(url(web), data="{not json", content_type="application/json")
        assert response.status_code == 400 and "__all__" in response.json()["errors"]
        response = post_json(public, url(web), ["a", "list"])
        assert response.status_code == 400

    def test_unknown_token_json_is_404(self, public):
        response = post_json(public, reverse("leads:web_to_lead", args=["nope"]), {})
        assert response.status_code == 404 and response.json()["ok"] is False

    def test_honeypot_looks_like_success_and_creates_nothing(self, web, public):
        response = post_json(public, url(web), {"contact_name": "Bot", "email": "bot@spam.example", "homepage": "http://spam"})
        assert response.status_code == 201
        assert not Customer.objects.exists()
        response = public.post(url(web), {"contact_name": "Bot", "email": "bot@spam.example", "homepage": "x"})
        assert response.status_code == 200 and not Customer.objects.exists()


@pytest.mark.django_db
class TestRateLimit:
    def test_per_ip_limit_per_hour(self, web, public):
        settings_row(web_limit_per_hour=2)
        payload = {"contact_name": "A", "email": "a@example.com"}
        assert post_json(public, url(web), payload, ip="198.51.100.1").status_code == 201
        assert post_json(public, url(web), payload, ip="198.51.100.1").status_code == 201
        limited = post_json(public, url(web), payload, ip="198.51.100.1")
        assert limited.status_code == 429 and limited["Retry-After"]
        assert limited.json()["errors"]["__all__"]
        assert post_json(public, url(web), payload, ip="198.51.100.2").status_code == 201  # another address
        assert Customer.objects.count() == 3

    def test_html_form_is_limited_too(self, web, public):
        settings_row(web_limit_per_hour=1)
        data = {"contact_name": "A", "email": "a@example.com"}
        assert public.post(url(web), data, REMOTE_ADDR="198.51.100.9").status_code == 200
        assert public.post(url(web), data, REMOTE_ADDR="198.51.100.9").status_code == 429


@pytest.mark.django_db
class TestRoundRobin:
    def test_leads_go_to_the_teams_reps_in_turn(self, org, web, public):
        web.web_assignment = WebAssignment.ROUND_ROBIN
        web.save()
        for i in range(3):
            assert post_json(public, url(web), {"contact_name": f"P{i}", "email": f"p{i}@example.com"}).status_code == 201
        owners = list(Customer.objects.order_by("pk").values_list("owner__username", flat=True))
        reps = sorted([org.rep_a, org.rep_a2], key=lambda u: u.pk)
        assert owners == [reps[0].username, reps[1].username, reps[0].username]
        assert all(c.team == org.team_a for c in Customer.objects.all())

    def test_no_active_rep_falls_back_to_the_pool(self, org, web, public):
        web.web_assignment = WebAssignment.ROUND_ROBIN
        web.save()
        for rep in (org.rep_a, org.rep_a2):
            rep.is_active = False
            rep.save()
        post_json(public, url(web), {"contact_name": "P", "email": "p@example.com"})
        assert Customer.objects.get().owner is None
