"""Health checks shared by the /healthz/ endpoint and the Celery heartbeat."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "crm:celery-heartbeat"


def record_celery_heartbeat() -> str:
    now = timezone.now().isoformat()
    cache.set(HEARTBEAT_KEY, now, timeout=60 * 10)
    return now


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
    heartbeat = cache.get(HEARTBEAT_KEY) if checks.get("redis", "ok") == "ok" else None
    checks["celery"] = f"ok: {heartbeat}" if heartbeat else "unknown: no heartbeat in 10 minutes"
    failed = [k for k in ("database", "redis") if k in checks and checks[k] != "ok"]
    return {"status": "error" if failed else "ok", "checks": checks}
