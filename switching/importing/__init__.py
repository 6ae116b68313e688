"""The import of issue #11: customers, contacts, opportunities and activities from CSV or XLSX files.

    import_upload   store the file privately, read its header, match the columns (English or Chinese
                    headers), scan the values that need a mapping (stages, activity kinds, owners)
    import_set_mapping   the person's mapping: unknown headers → columns, old stage names → stages,
                    old kind names → activity kinds, owners → users, and what to do with unknown
                    owners (assign to a chosen user, or stop); then the preview
    import_preview  validate every row, nothing written: counts (new / updated / errors / unknown
                    references) and every row error with its line number
    import_confirm  queue the Celery task (once)
    import_run      the task's work: chunks of rows, each chunk one transaction with the job's progress;
                    rows upserted by external_id, so a run killed half-way and started again finishes
                    the file with nothing doubled or lost

Scope: only admins and managers import. A manager's rows may only name owners in their team subtree,
only update records they see, and only reference customers, deals and contacts they see; anything
else is a row error (an unknown reference for references). Details: docs/switching.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import IO, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import File
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.scope import is_manager_or_admin, managed_user_ids
from leads.importing import ImportFileError

from ..columns import COLUMNS, KINDS, match_header, required_keys, squash
from ..models import ImportJob, ImportStatus, UnknownOwnerPolicy
from .context import ImportContext, build_context, kind_lookup, stage_lookup
from .kinds import KIND_IMPORTERS, UnknownReference
from .reader import iter_records, read_header
from .values import CellError, check_length

logger = logging.getLogger(__name__)

CHUNK_SIZE = {"customers": 2000, "contacts": 2000, "opportunities": 2000, "activities": 5000}
MAX_STORED_ERRORS = 100_000  # row errors kept on the job (the counts are always complete)
MAX_DISTINCT = 500  # distinct stage / kind / owner values offered for mapping
BIG_FIELDS = ("errors", "unknown", "header", "mapping")  # JSON a progress read does not need

__all__ = [
    "ImportFileError", "import_confirm", "import_preview", "import_run", "import_set_mapping", "import_upload",
]


# --- reading the job's file ---------------------------------------------------------------------------
def column_keys(job: ImportJob) -> list[str | None]:
    """The column key of each header cell, from the mapping (None: ignored)."""
    columns = (job.mapping or {}).get("columns") or {}
    return [columns.get(str(i)) or None for i in range(len(job.header))]


def _records(job: ImportJob) -> Iterator[tuple[int, dict[str, str]]]:
    with job.file.open("rb") as handle:
        yield from iter_records(handle, job.file_name, column_keys(job))


def _chunks(records: Iterator[tuple[int, dict[str, str]]], size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- upload and mapping -------------------------------------------------------------------------------
def _check_importer(by: User) -> None:
    if not is_manager_or_admin(by):
        raise PermissionDenied(_("Only administrators and managers can import."))


@transaction.atomic
def import_upload(*, by: User, kind: str, file_name: str, data: IO[bytes]) -> ImportJob:
    """A new job: the file stored privately, its header read and matched (either header language);
    the values needing a mapping scanned. Raises ImportFileError for a file that cannot be read."""
    _check_importer(by)
    if kind not in KINDS:
        raise ValidationError({"kind": _("Choose what the file holds.")})
    job = ImportJob(kind=kind, file_name=file_name[:255], created_by=by)
    job.file.save(file_name[-100:] or "import.csv", File(data), save=False)
    try:
        with job.file.open("rb") as handle:
            header = read_header(handle, job.file_name)
    except ImportFileError:
        job.file.delete(save=False)
        raise
    job.header = header
    matched = match_header(kind, header)
    job.mapping = {"columns": {str(i): key for i, key in enumerate(matched) if key}, "stages": {}, "kinds": {}, "owners": {}}
    job.save()
    _scan(job)
    return job


def mapping_problems(job: ImportJob) -> list[str]:
    """What keeps the job from its preview: required columns not mapped, a column mapped twice."""
    keys = [k for k in column_keys(job) if k]
    problems = []
    labels = {c.key: f"{c.en} / {c.zh}" for c in COLUMNS[job.kind]}
    for key in required_keys(job.kind):
        if key not in keys:
            problems.append(_("The required column “%(column)s” is not in the file: map one of its columns to it.")
                            % {"column": labels[key]})
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(_("Two columns of the file are mapped to “%(column)s”.") % {"column": labels[key]})
    return problems


def _scan(job: ImportJob) -> None:
    """One pass over the file: the distinct stage names, activity kinds and owners it uses, with what
    each matches in this CRM without a mapping (None: needs the person's choice)."""
    keys = set(column_keys(job))
    if mapping_problems(job):
        job.unknown = {}
        job.save(update_fields=["unknown"])
        return
    wanted = [k for k in ("stage", "kind", "owner") if k in keys]
    values: dict[str, dict[str, str]] = {k: {} for k in wanted}
    if wanted:
        for _line, raw in _records(job):
            for key in wanted:
                text = raw.get(key, "").strip()
                if text and len(values[key]) < MAX_DISTINCT:
                    values[key].setdefault(squash(text) if key != "owner" else text.lower(), text)
    unknown: dict[str, Any] = {}
    if "stage" in values:
        known = stage_lookup()
        unknown["stages"] = sorted([[text, known.get(key)] for key, text in values["stage"].items()], key=lambda x: x[0])
    if "kind" in values:
        known = kind_lookup()
        unknown["kinds"] = sorted([[text, known.get(key)] for key, text in values["kind"].items()], key=lambda x: x[0])
    if "owner" in values:
        users = {}
        for pk, username, email in User.objects.filter(is_active=True).values_list("pk", "username", "email"):
            users[username.lower()] = pk
            if email:
                users.setdefault(email.lower(), pk)
        allowed = managed_user_ids(job.created_by)
        unknown["owners"] = sorted(text for key, text in values["owner"].items() if key not in users)
        unknown["owners_outside"] = sorted(
            text for key, text in values["owner"].items()
            if key in users and allowed is not None and users[key] not in allowed
        )
    job.unknown = unknown
    job.save(update_fields=["unknown"])


@transaction.atomic
def import_set_mapping(
    *, job: ImportJob, by: User, columns: dict[str, str | None] | None = None, stages: dict[str, int | None] | None = None,
    kinds: dict[str, int | None] | None = None, owners: dict[str, int | None] | None = None,
    unknown_owner_policy: str | None = None, default_owner: User | None = None,
) -> ImportJob:
    """Save the person's mapping and, when it is complete, run the preview. `columns` maps a header
    position ("0", "1", ...) to a column key (None/"": ignore it); `stages` / `kinds` map an old name to
    a Stage / ActivityKind id; `owners` an old owner to a user id."""
    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
    if locked.status not in (ImportStatus.DRAFT, ImportStatus.PREVIEWED):
        raise ValidationError(_("This import has already been confirmed."))
    mapping = dict(locked.mapping or {})
    rescan = False
    if columns is not None:
        valid = {c.key for c in COLUMNS[locked.kind]}
        cleaned = {str(i): key for i, key in columns.items() if key}
        if set(cleaned.values()) - valid:
            raise ValidationError(_("Unknown column."))
        rescan = cleaned != mapping.get("columns")
        mapping["columns"] = cleaned
    for name, value in (("stages", stages), ("kinds", kinds), ("owners", owners)):
        if value is not None:
            mapping[name] = {k: int(v) for k, v in value.items() if v}
    if unknown_owner_policy is not None:
        locked.unknown_owner_policy = unknown_owner_policy
    if locked.unknown_owner_policy == UnknownOwnerPolicy.ASSIGN:
        if default_owner is None:
            raise ValidationError({"default_owner": _("Choose the user who gets the records of unknown owners.")})
        allowed = managed_user_ids(by)
        if not default_owner.is_active or (allowed is not None and default_owner.pk not in allowed):
            raise ValidationError({"default_owner": _("This user is outside your teams.")})
        locked.default_owner = default_owner
    else:
        locked.default_owner = None
    locked.mapping = mapping
    locked.status = ImportStatus.DRAFT
    locked.save(update_fields=["mapping", "unknown_owner_policy", "default_owner", "status"])
    if rescan:
        _scan(locked)
    if mapping_problems(locked) or unmapped_values(locked):
        return locked
    return import_preview(job=locked)


def unmapped_values(job: ImportJob) -> dict[str, list[str]]:
    """Stage names and activity kinds of the file that match nothing and have no mapping yet."""
    mapping = job.mapping or {}
    result = {}
    for name in ("stages", "kinds"):
        chosen = {squash(k) for k, v in (mapping.get(name) or {}).items() if v}
        missing = [text for text, known in (job.unknown or {}).get(name, []) if known is None and squash(text) not in chosen]
        if missing:
            result[name] = missing
    return result


# --- preview and run ----------------------------------------------------------------------------------
def _process_chunk(
    ctx: ImportContext, records: list[tuple[int, dict[str, str]]], *, write: bool, skip: set[int],
    seen: dict[str, int] | None,
) -> dict[str, Any]:
    importer = KIND_IMPORTERS[ctx.job.kind]
    pre = importer.prefetch(ctx, records)
    required = required_keys(ctx.job.kind)
    result: dict[str, Any] = {"new": 0, "updated": 0, "errors": 0, "unknown": 0, "skipped": 0, "messages": [],
                              "duplicates": []}
    # the preview (only) warns of new customers that look like existing ones
    warn = None if write else getattr(importer, "warnings", None)
    if warn is not None:
        pre["similar"] = importer.similar(ctx, records)
    valid = []
    for line, raw in records:
        if line in skip:
            result["skipped"] += 1
            continue
        external_id = raw.get("external_id", "").strip()
        try:
            for key in required:
                if not raw.get(key, "").strip():
                    raise CellError(key, _("This column is required."))
            check_length("external_id", external_id, 100)
            if seen is not None:
                if external_id in seen:
                    raise CellError("external_id", _("The same external ID as line %(line)s.") % {"line": seen[external_id]})
                seen[external_id] = line
            current = pre["existing"].get(external_id)
            if current is not None and external_id not in pre["visible"]:
                raise CellError("external_id", _("A record with this external ID exists outside your teams."))
            data = importer.clean(ctx, raw, pre)
        except UnknownReference as exc:
            result["unknown"] += 1
            result["messages"].append([line, exc.column, exc.message])
            continue
        except CellError as exc:
            result["errors"] += 1
            result["messages"].append([line, exc.column, exc.message])
            continue
        if current is None and warn is not None:
            result["duplicates"] += [[line, "", message] for message in warn(ctx, raw, pre)]
        data["_external_id"] = external_id
        data["_pk"] = current["pk"] if current else None
        data["_line"] = line
        result["updated" if current else "new"] += 1
        valid.append(data)
    if write and valid:
        importer.write(ctx, valid, pre)
    return result


def import_preview(*, job: ImportJob) -> ImportJob:
    """Validate every row (nothing written): the counts and every row error with its line number."""
    ctx = build_context(job)
    totals = {"new": 0, "updated": 0, "errors": 0, "unknown": 0}
    messages: list[list[Any]] = []
    duplicates: list[list[Any]] = []
    duplicate_lines: set[int] = set()
    seen: dict[str, int] = {}
    rows = 0
    try:
        for chunk in _chunks(_records(job), CHUNK_SIZE[job.kind]):
            rows += len(chunk)
            result = _process_chunk(ctx, chunk, write=False, skip=set(), seen=seen)
            for key in totals:
                totals[key] += result[key]
            if len(messages) < MAX_STORED_ERRORS:
                messages += result["messages"][: MAX_STORED_ERRORS - len(messages)]
            duplicate_lines |= {line for line, _c, _m in result["duplicates"]}
            if len(duplicates) < MAX_STORED_ERRORS:
                duplicates += result["duplicates"][: MAX_STORED_ERRORS - len(duplicates)]
    except ImportFileError as exc:
        messages.append([0, "", " ".join(exc.messages)])
        totals["errors"] += 1
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.PREVIEWED, total_rows=rows, new_count=totals["new"], updated_count=totals["updated"],
        error_count=totals["errors"], unknown_ref_count=totals["unknown"], errors=messages,
        duplicate_count=len(duplicate_lines), duplicates=duplicates,
    )
    job.refresh_from_db()
    return job


def confirm_problems(job: ImportJob) -> list[str]:
    """Why the job cannot be confirmed (empty: it can)."""
    problems = []
    if job.status != ImportStatus.PREVIEWED:
        problems.append(_("Preview the import first."))
    owners = (job.unknown or {}).get("owners") or []
    mapped = {k.lower() for k, v in ((job.mapping or {}).get("owners") or {}).items() if v}
    missing = [o for o in owners if o.lower() not in mapped]
    if missing and job.unknown_owner_policy == UnknownOwnerPolicy.STOP:
        problems.append(_("The file names unknown owners (%(owners)s): assign their records to a user, or fix the file.")
                        % {"owners": ", ".join(missing[:20])})
    if not job.new_count and not job.updated_count:
        problems.append(_("No row can be imported."))
    return problems


@transaction.atomic
def import_confirm(*, job: ImportJob, by: User, queue: bool = True) -> ImportJob:
    """Queue the import (once): the Celery task starts after this transaction commits (`queue=False`:
    the caller runs `import_run` itself, as the management command does)."""
    from ..tasks import import_run as import_run_task

    _check_importer(by)
    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
    if locked.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE):
        return locked
    problems = confirm_problems(locked) if locked.status != ImportStatus.FAILED else []
    if problems:
        raise ValidationError(problems)
    locked.status = ImportStatus.QUEUED
    locked.failure = ""
    locked.save(update_fields=["status", "failure"])
    if queue:
        transaction.on_commit(lambda: import_run_task.delay(locked.pk))
    return locked


def _append_errors(job_id: int, messages: list[list[Any]]) -> None:
    """Append row errors to the job in the database (jsonb ||), up to MAX_STORED_ERRORS."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE switching_importjob SET errors = errors || %s::jsonb "
            "WHERE id = %s AND jsonb_array_length(errors) < %s",
            [json.dumps(messages, ensure_ascii=False), job_id, MAX_STORED_ERRORS],
        )


def import_run(*, job_id: int, max_rows: int | None = None, chunk_size: int | None = None) -> dict[str, Any]:
    """Import the rows not yet processed, a chunk per transaction (the job's progress commits with its
    rows). Rows the preview found in error are skipped. `max_rows` stops after about that many rows
    (tests use it to stand for a run killed half-way). Safe to run again at any time."""
    job = ImportJob.objects.select_related("created_by", "default_owner").get(pk=job_id)
    if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.FAILED):
        return {"status": job.status}
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.RUNNING, started_at=job.started_at or timezone.now(), failure=""
    )
    ctx = build_context(job)
    skip = {int(line) for line, _column, _message in job.errors}
    start = job.processed_rows
    size = chunk_size or CHUNK_SIZE[job.kind]
    done = 0
    try:
        records = _records(job)
        for _skipped in range(start):
            next(records, None)
        for chunk in _chunks(records, size):
            if max_rows is not None and done >= max_rows:
                return {"status": ImportStatus.RUNNING, "processed": start + done}
            with transaction.atomic():
                # the job's big JSON fields stay unread: a chunk reads and writes only the counters
                locked = ImportJob.objects.select_for_update().defer(*BIG_FIELDS).get(pk=job_id)
                if locked.processed_rows != start + done:
                    return {"status": locked.status, "note": "another run is ahead"}
                result = _process_chunk(ctx, chunk, write=True, skip=skip, seen=None)
                locked.processed_rows += len(chunk)
                locked.created_rows += result["new"]
                locked.updated_rows += result["updated"]
                locked.skipped_rows += result["skipped"] + result["errors"] + result["unknown"]
                fields = ["processed_rows", "created_rows", "updated_rows", "skipped_rows"]
                locked.save(update_fields=fields)
                if result["messages"]:  # new problems since the preview (e.g. a customer deleted meanwhile)
                    _append_errors(job_id, result["messages"])
            done += len(chunk)
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(status=ImportStatus.FAILED, failure=str(exc)[:2000])
        raise
    with transaction.atomic():
        finish = getattr(KIND_IMPORTERS[job.kind], "finish", None)
        if finish is not None:
            finish(ctx)
        finished = ImportJob.objects.filter(pk=job_id, status=ImportStatus.RUNNING).update(
            status=ImportStatus.DONE, finished_at=timezone.now(), total_rows=start + done,
        )
        if finished:
            from ..tasks import import_followup

            transaction.on_commit(lambda: import_followup.delay(job_id))
    job.refresh_from_db()
    return {"status": job.status, "created": job.created_rows, "updated": job.updated_rows, "skipped": job.skipped_rows}


def import_followup(*, job_id: int) -> dict[str, Any]:
    """What the bulk writes leave to a recompute: every customer's tier from the rules (a tier set in the
    file is kept: it is stored as set by hand) and the open deals' priority scores."""
    from leads.services import tier_recompute_all
    from opportunities.services import priority_refresh

    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ImportStatus.DONE:
        return {"status": "skipped"}
    tiers = tier_recompute_all() if job.kind != "contacts" else {}
    scores = priority_refresh() if job.kind in ("opportunities", "activities", "customers") else 0
    return {"tiers": tiers, "priorities": scores}
