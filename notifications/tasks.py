"""Celery tasks of the reminder mechanism. They take ids or a channel name and call the services."""

from celery import shared_task

from . import services


@shared_task(name="notifications.reminders_scan")
def reminders_scan() -> dict:
    """Every minute (beat): collect the sources, claim and fan out what is due, then queue one sender
    task per channel that has deliveries to send."""
    result = services.reminders_scan()
    for channel in result["channels"]:
        deliveries_send.delay(channel)
    return result


@shared_task(name="notifications.deliveries_send")
def deliveries_send(channel: str | None = None) -> dict:
    """Send the due deliveries of one channel. Running it twice, or in two workers, sends each once."""
    return services.deliveries_send(channel=channel)


@shared_task(name="notifications.reminders_deliver")
def reminders_deliver(reminder_ids: list[int]) -> dict:
    """Deliver these reminders right away (`notify`); the minute scan would otherwise pick them up."""
    from .models import Delivery

    services.reminders_dispatch()
    ids = list(Delivery.objects.filter(reminder_id__in=reminder_ids).values_list("pk", flat=True))
    return services.deliveries_send(ids=ids)
