from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    periodic_tasks = [
        # collect the reminder sources, claim what is due, send it (see notifications/services.py)
        {"name": "notifications: reminder scan", "task": "notifications.reminders_scan", "every": 60},
    ]
