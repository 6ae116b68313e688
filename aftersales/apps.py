from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AftersalesConfig(AppConfig):
    name = "aftersales"
    verbose_name = _("After-sales service")
    demo_seeder = "aftersales.demo.seed"
    periodic_tasks = [
        # SLA warnings and breaches, auto-close after the reopen window, planned service due
        {"name": "aftersales: SLA scan", "task": "aftersales.sla_scan", "every": 300},
    ]

    def ready(self) -> None:
        from . import receivers

        receivers.connect()
