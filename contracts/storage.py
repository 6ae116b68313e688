"""The private storage of contract attachments.

Files live outside MEDIA_ROOT (settings.PRIVATE_MEDIA_ROOT, default var/private) so that nothing, not
even the development server's /media/ route, serves them: the download view applies the scope rule and
streams the file. A deployment may configure another backend as STORAGES["private"] (e.g. S3 with
private ACLs).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty


class PrivateFileSystemStorage(FileSystemStorage):
    """A file system storage rooted at settings.PRIVATE_MEDIA_ROOT, without public URLs."""

    def __init__(self, **kwargs) -> None:
        super().__init__(base_url=None, **kwargs)

    @property
    def base_location(self):  # read each time: tests point it at a temporary folder
        return getattr(settings, "PRIVATE_MEDIA_ROOT", None) or os.path.join(settings.BASE_DIR, "var", "private")

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("Private files have no public URL: serve them through a view that checks access.")


class _PrivateStorage(LazyObject):
    def _setup(self) -> None:
        self._wrapped = storages["private"] if "private" in settings.STORAGES else PrivateFileSystemStorage()


_private_storage = _PrivateStorage()


def _reset(*, setting, **kwargs) -> None:
    if setting in {"STORAGES", "PRIVATE_MEDIA_ROOT"}:
        _private_storage._wrapped = empty


setting_changed.connect(_reset)


def private_storage():
    """The storage of contract attachments (a callable, so migrations do not freeze the backend)."""
    return _private_storage
