"""Celery tasks: thin, they take ids and call a service."""

from celery import shared_task

from . import importing, services


@shared_task(name="leads.tier_recompute_all")
def tier_recompute_all() -> dict:
    """Nightly: every customer's tier from the rules."""
    return services.tier_recompute_all()


@shared_task(name="leads.pool_return_scan")
def pool_return_scan() -> int:
    """Hourly: owned leads without contact for N days go back to the pool."""
    return services.pool_return_scan()


@shared_task(name="leads.customer_import_run")
def customer_import_run(import_id: int) -> dict:
    """Import the confirmed rows of an upload. Safe to run again (after a crash or a kill): rows already
    imported are found by their key and not created twice; it resumes where the last run stopped."""
    return importing.import_run(import_id=import_id)
