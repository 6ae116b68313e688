"""Evaluation selectors for the dashboards: per customer, per service rep."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aftersales import selectors, services
from aftersales.models import Priority, SatisfactionSurvey, SlaPolicy
from leads.models import Customer
from tests.factories import CustomerFactory

from .factories import make_ticket

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=SH)


def resolved(owner, customer=None, *, hours_to_resolve=1, score=None, opened=T0):
    ticket = make_ticket(owner=owner, customer=customer, now=opened)
    services.ticket_transition(ticket=ticket, transition="start", by=owner, now=opened + timedelta(minutes=5))
    ticket = services.ticket_transition(
        ticket=ticket, transition="resolve", by=owner, now=opened + timedelta(hours=hours_to_resolve)
    )
    if score is not None:
        services.survey_answer(survey=ticket.survey, score=score, now=opened + timedelta(hours=hours_to_resolve + 1))
    return ticket


@pytest.fixture
def policy(db):
    SlaPolicy.objects.update_or_create(
        priority=Priority.NORMAL,
        defaults={"response_minutes": 60, "resolution_minutes": 4 * 60, "warning_minutes": 0,
                  "business_hours_only": False},
    )


@pytest.mark.django_db
class TestCustomerStats:
    def test_open_tickets_and_csat(self, org, policy):
        customer = CustomerFactory(owner=org.rep_a)
        resolved(org.rep_a, customer, score=5)
        resolved(org.rep_a, customer, score=2)
        resolved(org.rep_a, customer)  # not answered: not in the average
        make_ticket(owner=org.rep_a, customer=customer)  # open
        waiting = make_ticket(owner=org.rep_a, customer=customer)
        services.ticket_transition(ticket=waiting, transition="start", by=org.rep_a)
        services.ticket_transition(ticket=waiting, transition="wait_on_customer", by=org.rep_a)
        summary = selectors.customer_service_summary(customer=customer)
        assert summary == {"open_tickets": 2, "total_tickets": 5, "csat_avg": 3.5, "csat_count": 2}
        row = selectors.customer_service_stats(customers=Customer.objects.filter(pk=customer.pk)).get()
        assert (row.open_tickets, row.total_tickets, row.csat_avg, row.csat_count) == (2, 5, 3.5, 2)

    def test_customer_without_tickets(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        assert selectors.customer_service_summary(customer=customer) == {
            "open_tickets": 0, "total_tickets": 0, "csat_avg": None, "csat_count": 0
        }


@pytest.mark.django_db
class TestRepStats:
    def test_handled_sla_compliance_and_csat(self, org, policy):
        """rep_a resolved three tickets, one late (a breach); CSAT 4 and 5. rep_a2 resolved one on time."""
        resolved(org.rep_a, score=4)
        resolved(org.rep_a, score=5)
        resolved(org.rep_a, hours_to_resolve=6)  # resolution target 4 h: breached
        resolved(org.rep_a2, score=1)
        make_ticket(owner=org.rep_a)  # open: not handled
        rows = {row.username: row for row in selectors.rep_service_stats(user=org.manager_a)}
        rep_a = rows["rep_a"]
        assert (rep_a.tickets_handled, rep_a.tickets_within_sla, rep_a.csat_avg, rep_a.csat_count) == (3, 2, 4.5, 2)
        assert selectors.sla_compliance(rep_a) == pytest.approx(2 / 3)
        assert (rows["rep_a2"].tickets_handled, rows["rep_a2"].csat_avg) == (1, 1.0)
        assert rows["manager_a"].tickets_handled == 0 and selectors.sla_compliance(rows["manager_a"]) is None
        assert "rep_b" not in rows  # outside manager A's scope

    def test_period(self, org, policy):
        resolved(org.rep_a, opened=T0)
        resolved(org.rep_a, opened=T0 + timedelta(days=40))
        rows = {r.username: r for r in selectors.rep_service_stats(
            user=org.admin, since=T0 + timedelta(days=30), until=T0 + timedelta(days=60))}
        assert rows["rep_a"].tickets_handled == 1

    def test_a_rep_sees_only_their_own_row(self, org, policy):
        assert [r.username for r in selectors.rep_service_stats(user=org.rep_a)] == ["rep_a"]

    def test_surveys_are_not_double_counted(self, org, policy):
        """A ticket with two breaches and a survey counts once everywhere."""
        ticket = make_ticket(owner=org.rep_a, now=T0)
        services.ticket_transition(ticket=ticket, transition="start", by=org.rep_a, now=T0 + timedelta(hours=2))
        ticket = services.ticket_transition(ticket=ticket, transition="resolve", by=org.rep_a,
                                            now=T0 + timedelta(hours=9))
        assert ticket.breaches.count() == 2
        SatisfactionSurvey.objects.filter(ticket=ticket).update(score=3, answered_at=T0 + timedelta(hours=10))
        (row,) = [r for r in selectors.rep_service_stats(user=org.rep_a)]
        assert (row.tickets_handled, row.tickets_within_sla, row.csat_avg, row.csat_count) == (1, 0, 3.0, 1)
