from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = _("Contracts")
    demo_seeder = "contracts.demo.seed"

    # Overdue instalments remind their owner through the notifications app (see contracts/reminders.py).
    reminder_sources = [
        {
            "key": "contracts.instalment_overdue",
            "label": _("Overdue payments"),
            "collect": "contracts.reminders.overdue_collect",
            "render": "contracts.reminders.overdue_render",
        },
    ]

    def ready(self) -> None:
        from . import hooks

        hooks.connect()
