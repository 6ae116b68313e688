"""The export pages: administrators request a whole-CRM export, follow it, and download the zip.

Everyone else gets a 404 on every one of these paths (the scope rule: not "forbidden", "not there").
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.security_log import security_event

from . import exporting
from .models import ExportStatus

PENDING = (ExportStatus.QUEUED, ExportStatus.RUNNING)


def _context(request: HttpRequest) -> dict:
    exports = exporting.export_list(user=request.user)
    now = timezone.now()
    for export in exports:
        export.expired = export.is_expired(now)
    return {"exports": exports, "pending": any(e.status in PENDING for e in exports),
            "ttl_hours": int(exporting.ttl().total_seconds() // 3600)}


@login_required
def export_list(request: HttpRequest) -> HttpResponse:
    """The page: a button to export everything and the latest exports."""
    return render(request, "switching/export_list.html", _context(request))


@login_required
def export_rows(request: HttpRequest) -> HttpResponse:
    """HTMX polling of the list while an export is queued or running; 286 (stop polling) when none is."""
    context = _context(request)
    response = render(request, "switching/partials/_export_rows.html", context)
    if not context["pending"]:
        response.status_code = 286
    return response


@login_required
@require_POST
def export_request(request: HttpRequest) -> HttpResponse:
    exporting.export_access_check(request.user)
    exporting.export_request(user=request.user)
    messages.success(request, _("The export has started. It appears below when it is ready."))
    return redirect("switching:export_list")


@login_required
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The zip, to an administrator, while it has not expired (410 Gone afterwards)."""
    export = exporting.export_get_for_user(user=request.user, pk=pk)
    if export.status != ExportStatus.DONE:
        raise Http404("export not ready")
    if export.is_expired():
        return render(request, "switching/export_expired.html", {"export": export}, status=410)
    try:
        handle = export.file.open("rb")
    except FileNotFoundError:
        return render(request, "switching/export_expired.html", {"export": export}, status=410)
    security_event("export_downloaded", request=request, level=logging.INFO, export=export.pk, size=export.size)
    response = FileResponse(handle, as_attachment=True, filename=export.download_name, content_type="application/zip")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
