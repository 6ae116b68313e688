from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpportunitiesConfig(AppConfig):
    name = "opportunities"
    verbose_name = _("Opportunities")
    demo_seeder = "opportunities.demo.seed"
    # the customer page (leads.timeline): the stage moves of the customer's deals
    customer_timeline_provider = "opportunities.timeline.entries"
    periodic_tasks = [
        # deals past their stage's time limit: flag them and tell the owner (opportunity_stalled)
        {"name": "opportunities: stalled scan", "task": "opportunities.stalled_scan", "every": 900},
        # the recent-activity part of the priority score fades with time
        {"name": "opportunities: priority refresh", "task": "opportunities.priority_refresh",
         "crontab": {"minute": "15", "hour": "3"}},
    ]

    def ready(self) -> None:
        from leads.tiering import KNOWN_LABELS, register_metric

        from .metrics import open_weighted_pipeline, won_revenue_12m

        register_metric("won_revenue_12m", KNOWN_LABELS["won_revenue_12m"], won_revenue_12m, unit="¥")
        register_metric(
            "open_weighted_pipeline", KNOWN_LABELS["open_weighted_pipeline"], open_weighted_pipeline, unit="¥"
        )
