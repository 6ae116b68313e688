from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SwitchingConfig(AppConfig):
    """Switching in and out: import a whole CRM's history, export everything."""

    name = "switching"
    verbose_name = _("Import and export")
    periodic_tasks = [
        # delete the zips of exports past EXPORT_TTL_HOURS (see switching/exporting.py)
        {"name": "switching: purge expired exports", "task": "switching.export_purge_expired", "every": 3600},
    ]

    def ready(self) -> None:
        from . import export_tasks  # noqa: F401  (registers the export's Celery tasks)
