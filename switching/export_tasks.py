"""Celery tasks of the export (thin: they take ids and call `switching.exporting`).

Imported by `SwitchingConfig.ready()`, so the worker registers them (Celery's autodiscovery only looks
for `tasks.py`).
"""

from celery import shared_task

from . import exporting


@shared_task(name="switching.export_run")
def export_run(export_id: int) -> dict:
    """Build the zip of a queued export (a second delivery of the same task does nothing)."""
    export = exporting.export_run(export_id=export_id)
    if export is None:
        return {"export": export_id, "status": "skipped"}
    return {"export": export.pk, "status": export.status, "size": export.size, "rows": export.row_counts}


@shared_task(name="switching.export_purge_expired")
def export_purge_expired() -> int:
    """Hourly: delete the files of expired exports."""
    return exporting.export_purge_expired()
