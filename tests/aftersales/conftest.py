import pytest

from crm.celery import app


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks queued on commit (survey e-mails, notification deliveries) run in-process, for real."""
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous
