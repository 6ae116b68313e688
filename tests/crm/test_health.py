"""/healthz/: database and Redis always; the Celery heartbeat only when HEALTH_REQUIRE_CELERY is set."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from crm.health import HEARTBEAT_KEY, record_celery_heartbeat
from crm.tasks import ping

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_heartbeat():
    cache.delete(HEARTBEAT_KEY)
    yield
    cache.delete(HEARTBEAT_KEY)


def _set_heartbeat(age_seconds: int) -> None:
    cache.set(HEARTBEAT_KEY, (timezone.now() - timedelta(seconds=age_seconds)).isoformat(), timeout=600)


class TestHealthWithoutCeleryRequirement:
    def test_missing_heartbeat_is_reported_but_not_fatal(self, client):
        response = client.get("/healthz/")
        assert response.status_code == 200
        assert response.json()["checks"]["celery"].startswith("unknown")
        assert response["Cache-Control"].startswith("max-age=0")

    def test_stale_heartbeat_is_reported_but_not_fatal(self, client):
        _set_heartbeat(3600)
        response = client.get("/healthz/")
        assert response.status_code == 200
        assert response.json()["checks"]["celery"].startswith("stale")


class TestHealthRequiringCelery:
    @pytest.fixture(autouse=True)
    def require_celery(self, settings):
        settings.HEALTH_REQUIRE_CELERY = True
        settings.HEALTH_CELERY_MAX_AGE = 120

    def test_fresh_heartbeat_from_the_ping_task_is_healthy(self, client):
        ping.apply()  # the real task code, run in-process
        response = client.get("/healthz/")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["celery"].startswith("ok: ")

    def test_heartbeat_older_than_the_threshold_is_503(self, client):
        _set_heartbeat(121)
        response = client.get("/healthz/")
        assert response.status_code == 503
        body = response.json()
        assert body["failed"] == ["celery"]
        assert "limit 120 s" in body["checks"]["celery"]

    def test_heartbeat_just_inside_the_threshold_is_healthy(self, client):
        _set_heartbeat(100)
        assert client.get("/healthz/").status_code == 200

    def test_no_heartbeat_at_all_is_503(self, client):
        response = client.get("/healthz/")
        assert response.status_code == 503
        assert response.json()["checks"]["celery"].startswith("unknown")

    def test_unreadable_heartbeat_is_503(self, client):
        cache.set(HEARTBEAT_KEY, "not a date", timeout=60)
        assert client.get("/healthz/").status_code == 503


def test_heartbeat_outlives_a_long_threshold(settings):
    """A heartbeat is kept in the cache at least twice the threshold, so 'stale' is seen as stale."""
    settings.HEALTH_CELERY_MAX_AGE = 900
    record_celery_heartbeat()
    client = cache._cache.get_client(HEARTBEAT_KEY)  # the real Redis behind Django's cache
    assert 1700 < client.ttl(cache.make_and_validate_key(HEARTBEAT_KEY)) <= 1800


def test_database_failure_is_503(client, monkeypatch):
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise RuntimeError("down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz/")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]

