"""The security log: every denied access and every failed login, with who, what, when and IP."""

import json
import logging
import sys

import pytest
from django.http import Http404
from rest_framework.test import APIClient

from accounts.scope import get_visible_or_404
from crm.jsonlog import JsonFormatter
from leads.models import Customer
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.security_urls")]


@pytest.fixture
def security_records(caplog):
    caplog.set_level(logging.INFO, logger="crm.security")

    def records():
        return [r for r in caplog.records if r.name == "crm.security"]

    return records


@pytest.fixture
def customer_a(org):
    return CustomerFactory(name="Acme", owner=org.rep_a)


class TestScopeDenial:
    def test_out_of_scope_record_is_a_404_and_is_logged_with_who_and_what(self, org, customer_a, security_records):
        with pytest.raises(Http404):
            get_visible_or_404(Customer.objects, org.rep_b, pk=customer_a.pk)
        (record,) = security_records()
        assert record.levelno == logging.WARNING
        assert (record.event, record.reason, record.user, record.user_id) == (
            "access_denied", "out_of_scope", "rep_b", org.rep_b.pk)
        assert (record.model, record.lookup) == ("leads.customer", f"pk={customer_a.pk}")

    def test_a_missing_record_is_logged_as_not_found(self, org, security_records):
        with pytest.raises(Http404):
            get_visible_or_404(Customer.objects, org.rep_b, pk=987654)
        (record,) = security_records()
        assert record.reason == "not_found"

    def test_a_visible_record_logs_nothing(self, org, customer_a, security_records):
        assert get_visible_or_404(Customer.objects, org.manager_a, pk=customer_a.pk) == customer_a
        assert security_records() == []

    def test_a_page_denial_carries_the_request_ip_method_and_path(self, client, org, customer_a, security_records):
        client.force_login(org.rep_b)
        response = client.get(f"/c/{customer_a.pk}/", REMOTE_ADDR="10.1.2.3")
        assert response.status_code == 404
        (record,) = security_records()
        assert (record.user, record.ip, record.method, record.path, record.reason) == (
            "rep_b", "10.1.2.3", "GET", f"/c/{customer_a.pk}/", "out_of_scope")
        assert f"access_denied reason=out_of_scope model=leads.customer lookup=pk={customer_a.pk} user=rep_b" in (
            record.getMessage())

    def test_an_unknown_url_is_not_a_denied_access(self, client, org, security_records):
        client.force_login(org.rep_b)
        assert client.get("/no/such/page/").status_code == 404
        assert security_records() == []


class TestApiDenial:
    def test_out_of_scope_api_object_is_logged_once(self, org, customer_a, security_records):
        api = APIClient(REMOTE_ADDR="10.9.9.9")
        api.force_authenticate(org.rep_b)
        response = api.get(f"/api/customers/{customer_a.pk}/")
        assert response.status_code == 404
        (record,) = security_records()
        assert (record.reason, record.user, record.ip, record.model) == (
            "out_of_scope", "rep_b", "10.9.9.9", "leads.customer")

    def test_in_scope_api_object_is_served_without_a_log_line(self, org, customer_a, security_records):
        api = APIClient()
        api.force_authenticate(org.manager_a)
        assert api.get(f"/api/customers/{customer_a.pk}/").status_code == 200
        assert security_records() == []

    def test_anonymous_api_request_is_logged_as_unauthenticated(self, security_records):
        response = APIClient().get("/api/customers/", REMOTE_ADDR="10.4.4.4")
        assert response.status_code == 401
        (record,) = security_records()
        assert (record.reason, record.status, record.user, record.ip) == ("unauthenticated", 401, "anonymous", "10.4.4.4")


class TestForbidden:
    def test_permission_denied_is_logged(self, client, org, security_records):
        client.force_login(org.rep_a)
        assert client.get("/forbidden/", REMOTE_ADDR="10.0.0.5").status_code == 403
        (record,) = security_records()
        assert (record.reason, record.status, record.user, record.path, record.ip) == (
            "forbidden", 403, "rep_a", "/forbidden/", "10.0.0.5")

    def test_csrf_failure_is_logged(self, org, security_records):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(org.rep_a)
        assert client.post("/accounts/logout/").status_code == 403
        (record,) = security_records()
        assert (record.reason, record.user) == ("forbidden", "rep_a")


class TestLoginFailure:
    def test_failed_login_is_logged_with_the_username_tried_and_the_ip(self, client, org, security_records):
        client.post("/accounts/login/", {"username": "rep_a", "password": "nope"}, REMOTE_ADDR="10.7.7.7")
        (record,) = security_records()
        assert (record.event, record.username, record.ip) == ("login_failed", "rep_a", "10.7.7.7")


class TestJsonLines:
    def test_a_security_event_becomes_one_json_object_with_its_fields(self, org, customer_a, security_records):
        with pytest.raises(Http404):
            get_visible_or_404(Customer.objects, org.rep_b, pk=customer_a.pk)
        (record,) = security_records()
        line = JsonFormatter().format(record)
        assert "\n" not in line
        data = json.loads(line)
        assert data["logger"] == "crm.security"
        assert data["level"] == "WARNING"
        assert data["ts"].endswith("+00:00")
        assert {k: data[k] for k in ("event", "reason", "user", "user_id", "model")} == {
            "event": "access_denied", "reason": "out_of_scope", "user": "rep_b", "user_id": org.rep_b.pk,
            "model": "leads.customer"}

    def test_exceptions_and_non_json_values_are_written_as_text(self):
        logger = logging.getLogger("tests.jsonlog")
        try:
            raise ValueError("boom 错误")
        except ValueError:
            record = logger.makeRecord(
                "tests.jsonlog", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info(),
                extra={"when": object()},
            )
        data = json.loads(JsonFormatter().format(record))
        assert data["message"] == "failed x"
        assert "ValueError: boom 错误" in data["exc_info"]
        assert data["when"].startswith("<object object")


class TestClientAddress:
    """The address in the log and in the lockout: REMOTE_ADDR, or what trusted proxies forwarded."""

    def _ip(self, rf, settings, count, forwarded=None):
        from accounts.security_log import client_ip

        settings.CRM_TRUSTED_PROXY_COUNT = count
        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        return client_ip(rf.get("/", REMOTE_ADDR="10.0.0.1", **extra))

    def test_without_trusted_proxies_a_forged_header_is_ignored(self, rf, settings):
        assert self._ip(rf, settings, 0, "6.6.6.6") == "10.0.0.1"

    def test_behind_one_proxy_the_address_it_appended_is_the_client(self, rf, settings):
        assert self._ip(rf, settings, 1, "6.6.6.6, 203.0.113.9") == "203.0.113.9"
        assert self._ip(rf, settings, 1) == "10.0.0.1"

    def test_behind_two_proxies_the_second_entry_from_the_right(self, rf, settings):
        assert self._ip(rf, settings, 2, "6.6.6.6, 203.0.113.9, 10.0.0.2") == "203.0.113.9"

    def test_lockout_behind_a_proxy_is_per_real_client(self, client, org, settings):
        """Two people behind the same proxy: one's failures do not lock the other out."""
        settings.CRM_TRUSTED_PROXY_COUNT = 1
        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post("/accounts/login/", {"username": "rep_a", "password": "nope"},
                        REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
        locked = client.post("/accounts/login/", {"username": "rep_a", "password": "crm-demo-2026"},
                             REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
        assert locked.status_code == 429
        other = client.post("/accounts/login/", {"username": "rep_a", "password": "crm-demo-2026"},
                            REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
        assert other.status_code == 302
