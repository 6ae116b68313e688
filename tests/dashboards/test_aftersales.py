"""The after-sales section: SLA compliance, CSAT and repurchase rate of a manager's team, by hand."""

from datetime import date

import pytest

from aftersales.models import Priority, SlaPolicy
from dashboards import selectors as s
from tests.aftersales.factories import ensure_default_rules
from tests.aftersales.test_selectors import resolved

pytestmark = pytest.mark.django_db
MARCH = s.Period(date(2026, 3, 1), date(2026, 4, 1))


@pytest.fixture
def policy(db):
    ensure_default_rules()
    SlaPolicy.objects.update_or_create(
        priority=Priority.NORMAL,
        defaults={"response_minutes": 60, "resolution_minutes": 4 * 60, "warning_minutes": 0,
                  "business_hours_only": False},
    )


def test_team_sla_csat_and_repurchase(org, policy):
    """Team A resolved 4 tickets in March, one late: SLA 3/4; CSAT (4 + 5 + 1) / 3. Team B's late ticket
    with score 1 never counts. No signed contracts: no repurchase rate."""
    resolved(org.rep_a, score=4)
    resolved(org.rep_a, score=5)
    resolved(org.rep_a, hours_to_resolve=6)  # breached
    resolved(org.rep_a2, score=1)
    resolved(org.rep_b, hours_to_resolve=6, score=1)
    summary = s.aftersales_summary(user=org.manager_a, scope=s.dashboard_scope(user=org.manager_a), period=MARCH)
    assert summary["tickets_handled"] == 4
    assert summary["sla_compliance"] == pytest.approx(0.75)
    assert summary["csat_avg"] == pytest.approx(10 / 3) and summary["csat_count"] == 3
    assert summary["repurchase_rate"] is None
    # a rep filter narrows it to rep_a2
    only = s.aftersales_summary(user=org.manager_a, scope=s.dashboard_scope(user=org.manager_a, rep_id=org.rep_a2.pk),
                                period=MARCH)
    assert (only["tickets_handled"], only["sla_compliance"], only["csat_avg"]) == (1, 1.0, 1.0)


def test_empty_period(org, policy):
    resolved(org.rep_a, score=4)
    april = s.Period(date(2026, 4, 1), date(2026, 5, 1))
    summary = s.aftersales_summary(user=org.manager_a, scope=s.dashboard_scope(user=org.manager_a), period=april)
    assert (summary["tickets_handled"], summary["sla_compliance"], summary["csat_avg"]) == (0, None, None)
