"""The Celery app runs real tasks through a real worker against Redis."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache

from crm.celery import app
from crm.health import HEARTBEAT_KEY
from crm.tasks import ping


def test_reliability_settings():
    """Tasks are acknowledged after they run and requeued when a worker dies mid-task."""
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert settings.CELERY_BROKER_URL.startswith("redis://")


@pytest.mark.django_db(transaction=True)
def test_health_task_runs_through_a_real_worker():
    cache.delete(HEARTBEAT_KEY)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = ping.delay()
        assert result.get(timeout=20) == "pong"
    assert cache.get(HEARTBEAT_KEY)
