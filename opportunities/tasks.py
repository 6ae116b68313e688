"""Celery tasks: thin, they call a service."""

from celery import shared_task

from . import services


@shared_task(name="opportunities.stalled_scan")
def stalled_scan() -> int:
    """Beat, every 15 minutes: flag deals past their stage's time limit and send opportunity_stalled."""
    return services.stalled_scan()


@shared_task(name="opportunities.priority_refresh")
def priority_refresh() -> int:
    """Beat, nightly: recompute the priority score of open deals."""
    return services.priority_refresh()
