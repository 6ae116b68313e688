from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SwitchingConfig(AppConfig):
    """Switching in and out: import a whole CRM's history, export everything."""

    name = "switching"
    verbose_name = _("Import and export")
