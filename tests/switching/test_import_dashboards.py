"""After an import, the dashboards' figures are exactly what the imported rows imply.

A small fixed set of files (customers, deals with their history, activities) is imported through the
services and the task's code, then each dashboard selector is compared with the values computed by
hand from the files (in the comments).

Revenue by month (`revenue_trend`) is signed contracts and payment receipts, never deal amounts: an
import of deals brings no contracts, so the imported won deals show in the won amount of the
forecast (`forecast["won"]`, by close month) and in `rep_actuals["won_deals"]`, while signed revenue
stays 0 (docs/switching.md, "What the dashboards show after an import").
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from activities.models import ActivityKind
from dashboards import selectors
from dashboards.selectors import Period, dashboard_scope
from opportunities.models import Pipeline, Stage

from .import_helpers import defaults, run_file

CUSTOMERS = [
    ["External ID", "客户名称", "负责人"],
    ["C1", "甲公司", "rep_a"],
    ["C2", "乙公司", "rep_a2"],
]
DEALS = [
    ["External ID", "Customer external ID", "Title", "Stage", "Amount", "Created at", "Close date", "Owner", "Source"],
    ["D1", "C1", "Won after 50 days 15 hours", "Closed Won", "1000", "2024-01-10 09:00", "2024-03-01", "rep_a", "referral"],
    ["D2", "C1", "Lost", "Closed Lost", "500", "2024-01-20", "2024-02-10", "rep_a", "website"],
    ["D3", "C2", "Open in negotiation", "Negotiating", "300", "2024-02-15", "2024-06-30", "rep_a2", ""],
    ["D4", "C2", "Won after 20 days", "Closed Won", "2000", "2024-01-05", "2024-01-25", "rep_a2", "referral"],
    ["D5", "C2", "Won before the quarter", "Closed Won", "700", "2023-11-01", "2023-12-20", "rep_a2", "partner"],
]
ACTIVITIES = [
    ["External ID", "Customer external ID", "Opportunity external ID", "Kind", "Time", "Status", "Outcome", "Owner"],
    ["A1", "C1", "D1", "Phone", "2024-01-15 10:00", "done", "positive", "rep_a"],
    ["A2", "C1", "", "On-site visit", "2024-02-03 14:00", "done", "neutral", "rep_a"],
    ["A3", "C2", "D4", "Phone", "2024-01-16 09:30", "done", "", "rep_a2"],
    ["A4", "C2", "D3", "Phone", "2024-01-20 11:00", "planned", "", "rep_a2"],
    ["A5", "C2", "", "Phone", "2024-04-02 11:00", "done", "", "rep_a2"],  # after the quarter
]
Q1 = Period(date(2024, 1, 1), date(2024, 4, 1))


@pytest.fixture
def imported(org):
    defaults()
    pipeline = Pipeline.objects.get(is_default=True)
    stage = {s.code: s.pk for s in Stage.objects.filter(pipeline=pipeline)}
    run_file(org.admin, "customers", CUSTOMERS)
    run_file(org.admin, "opportunities", DEALS, stages={
        "Closed Won": stage["won"], "Closed Lost": stage["lost"], "Negotiating": stage["negotiation"],
    })
    run_file(org.admin, "activities", ACTIVITIES, kinds={
        "Phone": ActivityKind.objects.get(code="call").pk, "On-site visit": ActivityKind.objects.get(code="visit").pk,
    })
    return pipeline


class TestDashboardsAfterImport:
    def test_win_rate(self, org, imported):
        """Closed in Q1: D1 and D4 won, D2 lost (D5 closed in December) → 2 / 3."""
        figures = selectors.closed_deals(scope=dashboard_scope(user=org.admin), period=Q1)
        assert (figures["won"], figures["lost"]) == (2, 1)
        assert figures["win_rate"] == pytest.approx(2 / 3)
        funnel = selectors.conversion_funnel(scope=dashboard_scope(user=org.admin), period=Q1, pipeline=imported)
        # cohort created in Q1: D1, D2, D3, D4 → won 2 of the 3 closed
        assert (funnel.created, funnel.won, funnel.lost) == (4, 2, 1)

    def test_sales_cycle(self, org, imported):
        """Won in Q1: D4 in 20 days (Jan 5 → Jan 25), D1 in 50.625 days (Jan 10 09:00 → Mar 1 00:00)."""
        cycle = selectors.sales_cycle(scope=dashboard_scope(user=org.admin), period=Q1)
        assert cycle["count"] == 2
        assert cycle["median"] == pytest.approx((20 + 50.625) / 2)
        assert cycle["average"] == pytest.approx((20 + 50.625) / 2)
        rep = selectors.sales_cycle(scope=dashboard_scope(user=org.admin, rep_id=org.rep_a.pk), period=Q1)
        assert (rep["count"], rep["median"]) == (1, pytest.approx(50.625))

    def test_won_amount_by_month_and_revenue_from_contracts(self, org, imported):
        """Won amount by close month: January 2000 (D4), March 1000 (D1); signed revenue: no contracts, 0."""
        scope = dashboard_scope(user=org.admin)
        january = selectors.forecast(scope=scope, period=Period(date(2024, 1, 1), date(2024, 2, 1)))
        march = selectors.forecast(scope=scope, period=Period(date(2024, 3, 1), date(2024, 4, 1)))
        assert (january["won"], march["won"]) == (Decimal("2000.00"), Decimal("1000.00"))
        trend = selectors.revenue_trend(scope=scope, until=date(2024, 3, 31), months=3)
        assert [row["signed"] for row in trend] == [Decimal("0")] * 3

    def test_conversion_by_source(self, org, imported):
        """Created in Q1 per source: referral D1, D4 (both reached lead and won); website D2 (lost);
        no source: D3 (lead, then negotiation). D5 (partner) was created in November."""
        funnels = {f.key: f for f in selectors.conversion_by_source(scope=dashboard_scope(user=org.admin), period=Q1, pipeline=imported)}
        assert set(funnels) == {"referral", "website", ""}
        referral = funnels["referral"]
        assert (referral.created, referral.won, referral.lost, referral.win_rate) == (2, 2, 0, 1.0)
        reached = {step.stage.code: step.reached for step in referral.steps}
        assert reached == {"lead": 2, "needs_analysis": 0, "proposal": 0, "negotiation": 0, "won": 2}
        assert (funnels["website"].created, funnels["website"].lost, funnels["website"].win_rate) == (1, 1, 0.0)
        unsourced = {step.stage.code: step.reached for step in funnels[""].steps}
        assert (unsourced["lead"], unsourced["negotiation"], unsourced["won"]) == (1, 1, 0)

    def test_activities_per_rep(self, org, imported):
        """Q1: rep_a one call and one visit done; rep_a2 one call done (A3) and one planned (A4); A5 is
        in April."""
        rows = selectors.activity_stats(scope=dashboard_scope(user=org.admin), period=Q1)
        table = {(r["owner_id"], r["kind__code"]): (r["planned"], r["done"]) for r in rows}
        assert table == {
            (org.rep_a.pk, "call"): (0, 1), (org.rep_a.pk, "visit"): (0, 1), (org.rep_a2.pk, "call"): (1, 1),
        }
        actuals = selectors.rep_actuals(scope=dashboard_scope(user=org.admin), period=Q1)
        assert (actuals[org.rep_a.pk]["calls"], actuals[org.rep_a.pk]["visits"], actuals[org.rep_a.pk]["won_deals"]) == (1, 1, 1)
        assert (actuals[org.rep_a2.pk]["calls"], actuals[org.rep_a2.pk]["won_deals"]) == (1, 1)

    def test_time_in_stage_leaves_imported_moves_out(self, org, imported):
        """The old system's time per stage is unknown: imported moves carry no duration."""
        times = selectors.time_in_stage(scope=dashboard_scope(user=org.admin), period=Q1, pipeline=imported)
        assert all(t.moves == 0 for t in times)
