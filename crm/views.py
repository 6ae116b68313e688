from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache

from .health import health_report


@login_required
def home(request):
    """The rep's day. Sections are added by the apps as they arrive (activities, reminders, deals)."""
    return render(request, "home.html", {})


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
