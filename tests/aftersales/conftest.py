import pytest

from crm.celery import app

from .factories import ensure_default_rules


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks queued on commit (survey e-mails, notification deliveries) run in-process, for real."""
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def _default_rules(request):
    """Database tests start with the seeded rules, even after another app's test flushed the tables."""
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
        ensure_default_rules()
