"""Health checks shared by the /healthz/ endpoint and the Celery heartbeat.

The database and Redis are always required. The Celery heartbeat (written by the `crm.ping` task that
beat runs every minute) is reported; it is required only with HEALTH_REQUIRE_CELERY=True, and then a
heartbeat older than HEALTH_CELERY_MAX_AGE seconds (or none at all) fails the check.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "crm:celery-heartbeat"


def _heartbeat_timeout() -> int:
    # Keep the heartbeat in the cache longer than the threshold, so "stale" is told apart from "never".
    return max(60 * 10, 2 * settings.HEALTH_CELERY_MAX_AGE)


def record_celery_heartbeat() -> str:
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_KEY, now, timeout=_heartbeat_timeout())
    return now


def _celery_check(heartbeat: str | None) -> tuple[str, bool]:
    """(report text, healthy?) for the Celery heartbeat."""
    max_age = settings.HEALTH_CELERY_MAX_AGE
    if not heartbeat:
        return "unknown: no heartbeat", False
    try:
        age = (timezone.now() - datetime.fromisoformat(heartbeat)).total_seconds()
    except (TypeError, ValueError):
        return f"error: unreadable heartbeat {heartbeat!r}", False
    if age > max_age:
        return f"stale: last heartbeat {heartbeat} ({int(age)} s ago, limit {max_age} s)", False
    return f"ok: {heartbeat}", True


def health_report(connection) -> dict:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - the endpoint reports any failure
        checks["database"] = f"error: {exc.__class__.__name__}"
    if settings.REDIS_URL:
        try:
            cache.set("crm:health-probe", "1", timeout=10)
            checks["redis"] = "ok" if cache.get("crm:health-probe") == "1" else "error: no echo"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {exc.__class__.__name__}"
    heartbeat = None
    if checks.get("redis", "ok") == "ok":
        try:
            heartbeat = cache.get(HEARTBEAT_KEY)
        except Exception:  # noqa: BLE001 - reported as a missing heartbeat
            heartbeat = None
    checks["celery"], celery_ok = _celery_check(heartbeat)
    failed = [k for k in ("database", "redis") if k in checks and checks[k] != "ok"]
    if settings.HEALTH_REQUIRE_CELERY and not celery_ok:
        failed.append("celery")
    return {"status": "error" if failed else "ok", "checks": checks, "failed": failed}
