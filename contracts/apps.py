from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = _("Contracts")
    demo_seeder = "contracts.demo.seed"
    periodic_tasks = [
        {
            "name": "contracts: remind overdue instalments",
            "task": "contracts.tasks.instalments_overdue_remind",
            "crontab": {"minute": "30", "hour": "8"},
        },
    ]

    def ready(self) -> None:
        from . import hooks

        hooks.connect()
