from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache

from .health import health_report


@never_cache
def healthz(request):
    """Health endpoint for the load balancer: 200 when the database and Redis answer (and, with
    HEALTH_REQUIRE_CELERY, when the Celery heartbeat is fresh), else 503 naming what failed."""
    report = health_report(connection)
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@cache_control(max_age=60 * 60 * 24, public=True)
def favicon(request):
    """/favicon.ico, asked for by pages without our layout (Django admin): the static icon."""
    return redirect(static("crm/favicon.svg"))
