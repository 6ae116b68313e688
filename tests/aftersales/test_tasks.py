"""The Celery tasks run the real services (eager, in-process) and the beat entry is declared."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from aftersales import tasks
from aftersales.models import SatisfactionSurvey, SlaBreach
from crm.periodic import declared_periodic_tasks

from .factories import make_ticket


def test_the_sla_scan_is_a_periodic_task():
    entries = {entry["task"]: entry for entry in declared_periodic_tasks()}
    assert entries["aftersales.sla_scan"]["every"] <= 600


@pytest.mark.django_db
class TestTasks:
    def test_sla_scan_task_records_breaches(self, org):
        ticket = make_ticket(owner=org.rep_a, now=timezone.now() - timedelta(days=10))
        result = tasks.sla_scan.apply().get()
        assert result["breached"] >= 1
        assert SlaBreach.objects.filter(ticket=ticket, kind="response").exists()

    def test_survey_email_task_sends_once(self, org):
        ticket = make_ticket(owner=org.rep_a)
        survey = SatisfactionSurvey.objects.create(ticket=ticket, sent_to="buyer@example.com",
                                                   expires_at=timezone.now() + timedelta(days=3))
        assert tasks.survey_email_send.apply(args=[survey.pk]).get() is True
        assert [m.to for m in mail.outbox] == [["buyer@example.com"]]
        survey.score, survey.answered_at = 5, timezone.now()
        survey.save()
        assert tasks.survey_email_send.apply(args=[survey.pk]).get() is False  # answered: nothing more
        assert len(mail.outbox) == 1
