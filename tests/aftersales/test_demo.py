"""The after-sales demo data: tickets in several statuses, survey answers, plans; idempotent."""

import pytest

from accounts import demo as accounts_demo
from aftersales import demo
from aftersales.models import SatisfactionSurvey, ServicePlan, Ticket, TicketStatus


@pytest.mark.django_db
def test_seed_is_idempotent_and_covers_the_lifecycle():
    accounts_demo.seed(seed=2026)
    first = demo.seed(seed=2026)
    def counts_now():
        return (Ticket.objects.count(), SatisfactionSurvey.objects.count(),
                SatisfactionSurvey.objects.filter(answered_at__isnull=False).count(), ServicePlan.objects.count())

    counts = counts_now()
    assert counts[0] >= 10 and "tickets" in first
    statuses = set(Ticket.objects.values_list("status", flat=True))
    assert {TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.WAITING, TicketStatus.RESOLVED,
            TicketStatus.CLOSED, TicketStatus.REOPENED} <= statuses
    assert SatisfactionSurvey.objects.filter(answered_at__isnull=False).exists()
    assert Ticket.objects.filter(owner__isnull=True).exists()
    demo.seed(seed=2026)
    assert counts_now() == counts
