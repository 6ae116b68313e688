import pytest

from crm.celery import app
from notifications import registry


@pytest.fixture
def eager_celery():
    """Tasks queued by the code under test run in-process (the real task code, no broker)."""
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def test_source():
    """A reminder source owned by the test: `items` is what its collect returns; `moot` keys render None."""

    class Source:
        key = "tests.source"
        items: list[dict] = []
        moot: set[str] = set()

        @classmethod
        def collect(cls, *, start, end):
            return [item for item in cls.items if start <= item["at"] <= end]

        @classmethod
        def render(cls, reminder):
            if reminder.key in cls.moot:
                return None
            return {"title": f"Test reminder {reminder.key}", "body": "body", "link": "/customers/"}

    Source.items, Source.moot = [], set()
    registry.register_source(Source.key, label="Test", collect=Source.collect, render=Source.render)
    yield Source
    registry.unregister_source(Source.key)
