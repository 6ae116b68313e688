"""Periodic tasks are data: each app lists its own on its AppConfig as `periodic_tasks`, and the
`setup_periodic_tasks` command writes them into django-celery-beat's tables (idempotently).

An entry: {"name": "...", "task": "app.task_name", "every": seconds} or
          {"name": "...", "task": "...", "crontab": {"minute": "0", "hour": "3", ...}}
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.db import transaction


def declared_periodic_tasks() -> list[dict]:
    entries: list[dict] = []
    for config in apps.get_app_configs():
        entries.extend(getattr(config, "periodic_tasks", []))
    return entries


@transaction.atomic
def sync_periodic_tasks() -> list[str]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    names = []
    for entry in declared_periodic_tasks():
        defaults: dict = {"task": entry["task"], "enabled": True, "interval": None, "crontab": None}
        if "every" in entry:
            defaults["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=entry["every"], period=IntervalSchedule.SECONDS
            )
        else:
            spec = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
            spec.update(entry["crontab"])
            defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(timezone=settings.TIME_ZONE, **spec)
        PeriodicTask.objects.update_or_create(name=entry["name"], defaults=defaults)
        names.append(entry["name"])
    return names
