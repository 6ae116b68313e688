from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = _("Customers")
    demo_seeder = "leads.demo.seed"
    periodic_tasks = [
        # the nightly tier recompute (all customers, in chunks)
        {"name": "leads: recompute tiers", "task": "leads.tier_recompute_all", "crontab": {"minute": "30", "hour": "2"}},
        # owned leads with no contact for N days go back to their team's pool
        {"name": "leads: return untouched leads to the pool", "task": "leads.pool_return_scan", "crontab": {"minute": "15"}},
    ]

    def ready(self) -> None:
        from . import selectors, tiering, timeline

        tiering.register_builtin_metrics()
        timeline.register_provider("leads", selectors.customer_own_timeline)
