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

    # Messages sent through the notifications app (aftersales.reminders builds them, ready to send).
    reminder_sources = [
        {"key": "aftersales.sla_breach", "label": _("SLA breaches")},
        {"key": "aftersales.sla_warning", "label": _("SLA deadlines approaching")},
        {"key": "aftersales.ticket_assigned", "label": _("Tickets assigned to me")},
        {"key": "aftersales.ticket_opened", "label": _("New tickets from customers")},
        {"key": "aftersales.ticket_reply", "label": _("Customer replies on tickets")},
        {"key": "aftersales.plan_item_due", "label": _("Planned service due")},
    ]

    def ready(self) -> None:
        from . import receivers

        receivers.connect()
