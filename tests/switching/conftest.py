import pytest


@pytest.fixture(autouse=True)
def _private_media_in_english(private_media, english):
    """Every test here: private files in a temporary folder, messages in English (tests/conftest.py)."""
