"""The WSGI application (gunicorn `crm.wsgi:application`), loaded once per worker."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
application = get_wsgi_application()


def settle() -> None:
    """Import every view now (the URL patterns) and move every object made so far into the garbage
    collector's permanent generation (gc.freeze): a full collection then walks only what requests made,
    instead of pausing a request for 100-150 ms every few dozen requests to walk Django and the whole
    application (measured with `bench_pages`). With gunicorn's --preload it also keeps the workers'
    copy-on-write pages shared."""
    get_resolver().url_patterns  # noqa: B018 (imports the views)
    gc.freeze()


settle()
