"""The import wizard: upload → mapping → preview → confirm → progress → result (docs/switching.md).

Thin views: parse the form, fetch-and-authorize the job (`import_get_for_user`: someone else's job, or
any job for a rep, is a 404), call a service of `switching.importing`, render. Only administrators and
managers import; for everyone else every path here is a 404.
"""

from __future__ import annotations

import io

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.scope import is_manager_or_admin
from crm.exports import content_disposition, csv_response

from . import importing
from .columns import COLUMNS, KIND_LABELS, KINDS, template_header
from .forms import ImportMappingForm, ImportUploadForm
from .importing.selectors import import_get_for_user, import_list
from .models import ImportStatus

PREVIEW_ERRORS_SHOWN = 500
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _importer(request: HttpRequest) -> None:
    if not is_manager_or_admin(request.user):
        raise Http404("import")


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    """Step 1: what the file holds, and the file; the column lists and the templates to download."""
    _importer(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = importing.import_upload(by=request.user, kind=form.cleaned_data["kind"], file_name=upload.name, data=upload)
        except ValidationError as exc:
            form.add_error("file", exc.messages)
        else:
            return redirect(job)
    kinds = [{"key": k, "label": KIND_LABELS[k], "columns": COLUMNS[k]} for k in KINDS]
    return render(request, "switching/import_upload.html", {
        "form": form, "kinds": kinds, "recent": import_list(user=request.user)[:10],
    })


@login_required
def import_template(request: HttpRequest, kind: str, fmt: str) -> HttpResponse:
    """An empty file of the kind: one bilingual header row ("English / 中文", `*` for required); the
    XLSX also has a second sheet describing every column."""
    _importer(request)
    if kind not in KINDS or fmt not in ("csv", "xlsx"):
        raise Http404("template")
    filename = f"{_('import')}-{kind}.{fmt}"
    if fmt == "csv":
        return csv_response([], header=template_header(kind), filename=filename)
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = str(KIND_LABELS[kind])[:31]
    sheet.append(template_header(kind))
    help_sheet = workbook.create_sheet(_("Columns")[:31])
    help_sheet.append([_("Column (English)"), _("Column (Chinese)"), _("Required"), _("What it holds")])
    for column in COLUMNS[kind]:
        help_sheet.append([column.en, column.zh, _("yes") if column.required else "", str(column.help)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = content_disposition(filename)
    return response


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The job's page: the mapping step (draft, or `?edit=1` on a preview), the preview with its
    confirm button, or the progress and result."""
    _importer(request)
    job = import_get_for_user(user=request.user, pk=pk)
    editing = job.status == ImportStatus.DRAFT or (job.status == ImportStatus.PREVIEWED and request.GET.get("edit"))
    context = {"job": job, "columns": {c.key: c for c in COLUMNS[job.kind]}}
    if editing:
        form = ImportMappingForm(job=job, user=request.user)
        return render(request, "switching/import_mapping.html", {
            **context, "form": form, "problems": importing.mapping_problems(job),
        })
    errors = [
        {"line": line, "column": context["columns"].get(column), "key": column, "message": message}
        for line, column, message in job.errors[:PREVIEW_ERRORS_SHOWN]
    ]
    return render(request, "switching/import_detail.html", {
        **context, "errors": errors, "more_errors": max(0, len(job.errors) - PREVIEW_ERRORS_SHOWN),
        "problems": importing.confirm_problems(job) if job.status == ImportStatus.PREVIEWED else [],
        "unknown_owners": (job.unknown or {}).get("owners") or [],
        "owners_outside": (job.unknown or {}).get("owners_outside") or [],
        "duplicates": [{"line": line, "message": message} for line, _c, message in job.duplicates[:PREVIEW_ERRORS_SHOWN]],
    })


@login_required
@require_POST
def import_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """Step 2: save the mapping; a complete one runs the preview."""
    _importer(request)
    job = import_get_for_user(user=request.user, pk=pk)
    form = ImportMappingForm(request.POST, job=job, user=request.user)
    if form.is_valid():
        try:
            importing.import_set_mapping(job=job, by=request.user, **form.mapping())
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            return redirect(job)
    columns = {c.key: c for c in COLUMNS[job.kind]}
    return render(request, "switching/import_mapping.html", {
        "job": job, "columns": columns, "form": form, "problems": importing.mapping_problems(job),
    }, status=400)


@login_required
@require_POST
def import_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """Step 3: confirm the preview (or run a failed import again): the Celery task starts."""
    _importer(request)
    job = import_get_for_user(user=request.user, pk=pk)
    try:
        importing.import_confirm(job=job, by=request.user)
    except ValidationError:
        pass  # the page lists the problems again
    return redirect(job)


@login_required
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """HTMX polling: the progress bar; answers 286 (htmx: stop polling) once the import is over."""
    _importer(request)
    job = import_get_for_user(user=request.user, pk=pk, light=True)
    response = render(request, "switching/partials/_import_progress.html", {"job": job})
    if job.is_finished:
        response.status_code = 286
    return response


@login_required
def import_errors(request: HttpRequest, pk: int) -> HttpResponse:
    """Every row error of the job as a CSV (line, column, message)."""
    _importer(request)
    job = import_get_for_user(user=request.user, pk=pk)
    columns = {c.key: f"{c.en} / {c.zh}" for c in COLUMNS[job.kind]}
    return csv_response(
        ([line, columns.get(column, column), message] for line, column, message in job.errors),
        header=[_("Line"), _("Column"), _("Error")], filename=f"{_('import-errors')}-{job.pk}.csv",
    )
