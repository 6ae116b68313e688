"""Celery tasks: thin, they take ids and call a service."""

from celery import shared_task

from . import importing


@shared_task(name="switching.import_run")
def import_run(job_id: int) -> dict:
    """Import the confirmed rows of a job. Safe to run again (after a crash or a kill): it resumes after
    the last committed chunk, and rows are upserted by external id, so nothing is doubled."""
    return importing.import_run(job_id=job_id)


@shared_task(name="switching.import_followup")
def import_followup(job_id: int) -> dict:
    """After an import: the tiers from the rules (imported deals and activities feed the tier metrics)
    and the deals' priority scores (imported activities feed their recency)."""
    return importing.import_followup(job_id=job_id)
