"""Celery tasks: thin wrappers that call the services."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="contracts.tasks.instalments_overdue_remind")
def instalments_overdue_remind() -> int:
    """Daily: raise a reminder for every overdue instalment not reminded yet today."""
    from . import reminders

    return reminders.instalments_overdue_remind(today=timezone.localdate())
