from celery import shared_task

from .health import record_celery_heartbeat


@shared_task(name="crm.ping")
def ping() -> str:
    """A trivial task proving the worker runs; beat calls it every minute as the heartbeat."""
    record_celery_heartbeat()
    return "pong"
