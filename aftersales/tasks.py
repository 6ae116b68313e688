"""Celery tasks: thin, they take ids and call a service."""

from celery import shared_task

from . import services


@shared_task(name="aftersales.sla_scan")
def sla_scan() -> dict:
    """Beat, every few minutes: SLA warnings and breaches, auto-close, planned service due."""
    return services.sla_scan()


@shared_task(name="aftersales.survey_email_send", autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def survey_email_send(survey_id: int) -> bool:
    return services.survey_email_send(survey_id=survey_id)
