import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english():
    """Service-level messages and reasons are compared in English (pages follow the request's language)."""
    with translation.override("en"):
        yield
