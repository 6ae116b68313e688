"""Helpers of the import tests: files built in memory, jobs taken through the services."""

from __future__ import annotations

import csv
import io

from activities.defaults import ensure_defaults as ensure_activity_kinds
from leads.models import SEEDED_CHANNEL_NAMES, SourceChannel
from opportunities.services import pipeline_ensure_default
from switching import importing
from switching.models import ImportJob


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def defaults() -> None:
    """What the migrations seed (a transactional test elsewhere may have flushed it): the default
    pipeline, the activity kinds, the source channels the files name."""
    pipeline_ensure_default()
    ensure_activity_kinds()
    for code in ("referral", "website"):
        SourceChannel.objects.get_or_create(code=code, defaults={"name": SEEDED_CHANNEL_NAMES[code]})


def upload(user, kind: str, rows: list[list[str]], *, name: str = "file.csv", encoding: str = "utf-8-sig",
           data: bytes | None = None) -> ImportJob:
    payload = data if data is not None else csv_bytes(rows, encoding)
    return importing.import_upload(by=user, kind=kind, file_name=name, data=io.BytesIO(payload))


def run_file(user, kind: str, rows: list[list[str]], **mapping) -> ImportJob:
    """Upload, map (defaults: nothing more), preview, confirm and run the task's service."""
    job = upload(user, kind, rows)
    job = importing.import_set_mapping(job=job, by=user, **mapping)
    assert job.status == "previewed", (job.status, importing.mapping_problems(job), importing.unmapped_values(job))
    importing.import_confirm(job=job, by=user)
    importing.import_run(job_id=job.pk)
    job.refresh_from_db()
    return job
