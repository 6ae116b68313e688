import pytest


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Attachments go to a temporary folder, never to var/."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT
