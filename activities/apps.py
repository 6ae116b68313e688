from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActivitiesConfig(AppConfig):
    name = "activities"
    verbose_name = _("Activities")
    demo_seeder = "activities.demo.seed"
    # the customer page (leads.timeline): our done activities in its timeline; our panel is found by its
    # URL name activities:for_customer
    customer_timeline_provider = "activities.timeline.entries"
    # collected by the notifications app's minute scan (it imports nothing of ours: dotted paths)
    reminder_sources = [
        {
            "key": "activities.planned",
            "label": _("Planned activities"),
            "collect": "activities.reminders.planned_collect",
            "render": "activities.reminders.planned_render",
            "lead": True,
        },
        {
            "key": "activities.follow_up",
            "label": _("Follow-ups due"),
            "collect": "activities.reminders.follow_up_collect",
            "render": "activities.reminders.follow_up_render",
        },
        {
            "key": "activities.stalled_deal",
            "label": _("Stalled deals"),
            "collect": "activities.reminders.stalled_collect",
            "render": "activities.reminders.stalled_render",
            "every": 600,
        },
        {
            "key": "activities.weekly_review",
            "label": _("Weekly review"),
            "collect": "activities.reminders.digest_collect",
            "render": "activities.reminders.digest_render",
        },
    ]

    def ready(self) -> None:
        from leads.tiering import KNOWN_LABELS, register_metric

        from .metrics import activities_90d

        register_metric("activities_90d", KNOWN_LABELS["activities_90d"], activities_90d)
