from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "dashboards"
    verbose_name = _("Dashboards")
    demo_seeder = "dashboards.demo.seed"

    def ready(self) -> None:
        # the summary tables' triggers, reinstalled and recounted when TIME_ZONE or their SQL changed
        post_migrate.connect(_ensure_rollups, sender=self, dispatch_uid="dashboards_ensure_rollups")


def _ensure_rollups(sender, using: str = "default", **kwargs) -> None:
    from django.db import connections

    from . import rollups

    rollups.ensure(connections[using])
