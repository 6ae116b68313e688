"""Every dashboard figure against values computed by hand from the fixed data set (factories.DataSet):
March 2026 in Asia/Shanghai, seen by manager_a (team A: rep_a, rep_a2) unless said otherwise."""

from datetime import date
from decimal import Decimal

import pytest
from django.http import Http404

from dashboards import selectors as s
from dashboards.models import DashboardSettings, Target
from tests.dashboards.factories import at

MARCH = s.Period(date(2026, 3, 1), date(2026, 4, 1))
EMPTY = s.Period(date(2025, 6, 1), date(2025, 7, 1))
pytestmark = pytest.mark.django_db


def scope(user, **kw):
    return s.dashboard_scope(user=user, **kw)


class TestDashboardScope:
    def test_manager_sees_own_team_subtree(self, org):
        """A manager's scope is the users of their teams; the director's covers both teams."""
        ids = scope(org.manager_a).owner_ids
        assert {org.rep_a.pk, org.rep_a2.pk, org.manager_a.pk} <= ids and org.rep_b.pk not in ids
        assert org.rep_b.pk in scope(org.director).owner_ids

    def test_filters_never_widen(self, org):
        """Another team or a rep outside the scope is a 404, for managers and reps alike."""
        with pytest.raises(Http404):
            scope(org.manager_a, team_id=org.team_b.pk)
        with pytest.raises(Http404):
            scope(org.manager_a, rep_id=org.rep_b.pk)
        with pytest.raises(Http404):
            scope(org.rep_a, rep_id=org.rep_a2.pk)
        with pytest.raises(Http404):
            scope(org.manager_a, team_id=org.team_a.pk, rep_id=org.rep_b.pk)

    def test_admin_picks_any_team_and_rep_narrows(self, org):
        assert scope(org.admin).owner_ids is None
        assert org.rep_b.pk in scope(org.admin, team_id=org.team_b.pk).owner_ids
        assert scope(org.manager_a, rep_id=org.rep_a.pk).owner_ids == {org.rep_a.pk}
        assert scope(org.rep_a).owner_ids == {org.rep_a.pk}


class TestPeriod:
    def test_kinds(self):
        today = date(2026, 3, 18)  # a Wednesday
        assert s.period_for("week", today=today) == s.Period(date(2026, 3, 16), date(2026, 3, 23), "week")
        assert s.period_for("month", today=today) == s.Period(date(2026, 3, 1), date(2026, 4, 1), "month")
        assert s.period_for("quarter", today=today) == s.Period(date(2026, 1, 1), date(2026, 4, 1), "quarter")
        custom = s.period_for("custom", today=today, start=date(2026, 3, 2), end=date(2026, 3, 4))
        assert (custom.start, custom.end) == (date(2026, 3, 2), date(2026, 3, 5))
        # an inverted custom range falls back to the month
        assert s.period_for("custom", today=today, start=date(2026, 3, 4), end=date(2026, 3, 2)).kind == "month"


class TestPipelineAndForecast:
    def test_pipeline_by_stage(self, data):
        """Open deals now: s1 holds o6 (50 at 10%), s2 holds o2 (200 at 40%) and o3 (300 at 80%)."""
        rows = {r.stage.pk: r for r in s.pipeline_by_stage(scope=scope(data.org.manager_a), pipeline=data.pipeline)}
        assert (rows[data.s1.pk].count, rows[data.s1.pk].amount, rows[data.s1.pk].weighted) == (1, 50, Decimal("5.00"))
        assert (rows[data.s2.pk].count, rows[data.s2.pk].amount, rows[data.s2.pk].weighted) == (2, 500, Decimal("320.00"))
        assert rows[data.s3.pk].count == 0

    def test_forecast(self, data):
        """Won in March: o1 100 + o5 400 (won at 01:30 on 1 March local); open closing in March: o2, o3;
        weighted 80 + 240; commit (≥ 70 %) only o3; o4 of team B never counts."""
        f = s.forecast(scope=scope(data.org.manager_a), period=MARCH)
        assert f == {"won": Decimal("500"), "open_count": 2, "open_amount": Decimal("500"),
                     "weighted": Decimal("320.00"), "commit": Decimal("300"), "commit_probability": 70}
        DashboardSettings(commit_probability=40).save()
        assert s.forecast(scope=scope(data.org.manager_a), period=MARCH)["commit"] == Decimal("500")

    def test_empty_period(self, data):
        f = s.forecast(scope=scope(data.org.manager_a), period=EMPTY)
        assert (f["won"], f["open_count"], f["weighted"], f["commit"]) == (0, 0, 0, 0)


class TestFunnel:
    def test_overall(self, data):
        """Cohort o1, o2, o3: all reached s1 and s2 (o2 twice, counted once; o3 after being reopened);
        only o1 reached s3 and won; win rate 1/1 (o3 is open again, not lost)."""
        f = s.conversion_funnel(scope=scope(data.org.manager_a), period=MARCH, pipeline=data.pipeline)
        steps = {st.stage.pk: st for st in f.steps}
        assert f.created == 3 and (f.won, f.lost) == (1, 0) and f.win_rate == 1.0
        assert [steps[x.pk].reached for x in (data.s1, data.s2, data.s3, data.won)] == [3, 3, 1, 1]
        assert steps[data.s3.pk].share == pytest.approx(1 / 3)
        assert steps[data.s2.pk].from_previous == 1.0
        assert steps[data.s3.pk].from_previous == pytest.approx(1 / 3)
        assert data.lost.pk not in steps

    def test_by_source_and_rep(self, data):
        sc = scope(data.org.manager_a)
        by_source = {f.key: f for f in s.conversion_by_source(scope=sc, period=MARCH, pipeline=data.pipeline)}
        assert set(by_source) == {"referral", "website"}
        assert (by_source["referral"].created, by_source["referral"].won) == (2, 1)
        assert [st.reached for st in by_source["website"].steps[:3]] == [1, 1, 0]
        by_rep = {f.key: f for f in s.conversion_by_rep(scope=sc, period=MARCH, pipeline=data.pipeline)}
        assert by_rep[data.org.rep_a.pk].created == 2 and by_rep[data.org.rep_a2.pk].created == 1
        assert data.org.rep_b.pk not in by_rep

    def test_empty_period(self, data):
        f = s.conversion_funnel(scope=scope(data.org.manager_a), period=EMPTY, pipeline=data.pipeline)
        assert f.created == 0 and f.win_rate is None and all(st.reached == 0 for st in f.steps)


class TestSalesCycle:
    def test_median_and_p75(self, data):
        """Won in March (local): o1 after 8 days, o5 after 19 days (won 17:30 UTC on 28 Feb)."""
        c = s.sales_cycle(scope=scope(data.org.manager_a), period=MARCH)
        assert c["count"] == 2
        assert c["median"] == pytest.approx(13.5)
        assert c["p75"] == pytest.approx(16.25)
        # the admin also counts o4 (5 days): median of 5, 8, 19
        assert s.sales_cycle(scope=scope(data.org.admin), period=MARCH)["median"] == pytest.approx(8)

    def test_trend_uses_local_months(self, data):
        trend = s.sales_cycle_trend(scope=scope(data.org.manager_a), until=date(2026, 3, 31), months=2)
        assert [(r["month"], r["count"]) for r in trend] == [(date(2026, 2, 1), 0), (date(2026, 3, 1), 2)]
        assert trend[0]["median"] is None and trend[1]["median"] == pytest.approx(13.5)

    def test_empty(self, data):
        c = s.sales_cycle(scope=scope(data.org.manager_a), period=EMPTY)
        assert c["count"] == 0 and c["median"] is None


class TestTimeInStage:
    def test_average_median_and_bottleneck(self, data):
        """Exits of s1 in March: 2, 4, 2, 1, 4 days; of s2: 4, 1; of s3: 2 (the lost→s1 reopen is not time
        in an open stage; o4's 30 days belong to team B). Bottleneck: s2 (median 2.5)."""
        times = {t.stage.pk: t for t in s.time_in_stage(scope=scope(data.org.manager_a), period=MARCH,
                                                         pipeline=data.pipeline)}
        assert (times[data.s1.pk].moves, times[data.s1.pk].average, times[data.s1.pk].median) == (5, pytest.approx(2.6), 2)
        assert (times[data.s2.pk].moves, times[data.s2.pk].average, times[data.s2.pk].median) == (2, 2.5, 2.5)
        assert times[data.s3.pk].median == 2
        assert s.bottleneck(list(times.values())).stage == data.s2

    def test_team_b_bottleneck_is_s1(self, data):
        times = s.time_in_stage(scope=scope(data.org.manager_b), period=MARCH, pipeline=data.pipeline)
        assert s.bottleneck(times).stage == data.s1

    def test_empty(self, data):
        assert s.bottleneck(s.time_in_stage(scope=scope(data.org.manager_a), period=EMPTY, pipeline=data.pipeline)) is None

    def test_stalled_deals(self, data):
        from opportunities.models import Opportunity

        Opportunity.objects.filter(pk=data.o6.pk).update(stalled_since=at(2, 1))
        Opportunity.objects.filter(pk=data.o4.pk).update(stalled_since=at(2, 1))  # closed: never listed
        assert s.stalled_deals(scope=scope(data.org.manager_a)) == [data.o6]


class TestActivities:
    def test_done_vs_planned(self, data):
        """rep_a: calls planned 2 (the cancelled one not), done 1 (the one at 00:30 local on 1 April is
        April's); visits done 1 (planned in February). rep_a2: one visit planned. rep_b not shown."""
        rows = {(r["owner_id"], r["kind__code"]): (r["planned"], r["done"])
                for r in s.activity_stats(scope=scope(data.org.manager_a), period=MARCH)}
        org = data.org
        assert rows == {(org.rep_a.pk, "call"): (2, 1), (org.rep_a.pk, "visit"): (0, 1), (org.rep_a2.pk, "visit"): (1, 0)}

    def test_overdue(self, data):
        assert s.overdue_follow_ups(scope=scope(data.org.manager_a), now=at(3, 15)) == {data.org.rep_a.pk: 1}

    def test_empty(self, data):
        assert s.activity_stats(scope=scope(data.org.manager_a), period=EMPTY) == []


class TestRevenueAndTiers:
    def test_revenue_trend(self, data):
        """February: signed 500 (c2); March: signed 1000 (c1), collected 300 + 500 (the 200 of 1 April is
        April's); team B's c3 never counts."""
        trend = s.revenue_trend(scope=scope(data.org.manager_a), until=date(2026, 3, 15), months=2)
        assert trend == [
            {"month": date(2026, 2, 1), "signed": Decimal("500"), "collected": 0},
            {"month": date(2026, 3, 1), "signed": Decimal("1000"), "collected": Decimal("800")},
        ]

    def test_tier_distribution(self, data):
        rows = {r["tier"]: (r["count"], r["share"]) for r in s.tier_distribution(scope=scope(data.org.manager_a))}
        assert rows == {"A": (1, pytest.approx(1 / 3)), "B": (2, pytest.approx(2 / 3)), "C": (0, 0)}


class TestTargets:
    def test_actuals_and_progress(self, data):
        """rep_a in March: signed 1000 of 2000 (50 %), collected 300, 1 new customer, won o1 and o5, 1 call,
        1 visit. rep_a2: collected 500 and nothing else; no target: no percentage. Totals add up."""
        org = data.org
        Target.objects.create(user=org.rep_a, month=date(2026, 3, 1), signed_revenue=Decimal("2000"), won_deals=4,
                              calls=10)
        rows, total = s.target_progress(scope=scope(org.manager_a), month=date(2026, 3, 1))
        by_user = {r.user.pk: {p.metric: p for p in r.metrics} for r in rows}
        rep_a = by_user[org.rep_a.pk]
        assert {m: rep_a[m].actual for m in s.METRICS} == {
            "signed_revenue": Decimal("1000"), "collected": Decimal("300"), "new_customers": 1, "won_deals": 2,
            "calls": 1, "visits": 1,
        }
        assert (rep_a["signed_revenue"].percent, rep_a["won_deals"].percent, rep_a["calls"].percent) == (50, 50, 10)
        assert rep_a["visits"].percent is None
        assert by_user[org.rep_a2.pk]["collected"].actual == Decimal("500")
        assert org.rep_b.pk not in by_user
        totals = {p.metric: p for p in total.metrics}
        assert totals["collected"].actual == Decimal("800") and totals["signed_revenue"].target == Decimal("2000")

    def test_one_target_per_rep_and_month(self, org):
        from django.db import IntegrityError

        Target.objects.create(user=org.rep_a, month=date(2026, 3, 1))
        with pytest.raises(IntegrityError):
            Target.objects.create(user=org.rep_a, month=date(2026, 3, 1))


class TestMonthlyReview:
    def test_march_vs_february_and_target(self, data):
        """Team A, March vs February: signed 1000 vs 500 (+100 %), collected 800 vs 0 (no change ratio),
        won 2 vs 0; target of signed revenue 4000 → 25 %. Closed in March: won o1, o5; none lost."""
        org = data.org
        Target.objects.create(user=org.rep_a, month=date(2026, 3, 1), signed_revenue=Decimal("3000"))
        Target.objects.create(user=org.rep_a2, month=date(2026, 3, 1), signed_revenue=Decimal("1000"))
        Target.objects.create(user=org.rep_b, month=date(2026, 3, 1), signed_revenue=Decimal("99999"))
        review = s.monthly_review(scope=scope(org.manager_a), month=date(2026, 3, 9))
        m = {row["metric"]: row for row in review["metrics"]}
        assert (m["signed_revenue"]["current"], m["signed_revenue"]["previous"]) == (Decimal("1000"), Decimal("500"))
        assert m["signed_revenue"]["change"] == pytest.approx(1.0)
        assert m["signed_revenue"]["target"] == Decimal("4000") and m["signed_revenue"]["progress"] == pytest.approx(0.25)
        assert (m["collected"]["current"], m["collected"]["previous"], m["collected"]["change"]) == (Decimal("800"), 0, None)
        assert (m["won_deals"]["current"], m["won_deals"]["previous"]) == (2, 0)
        assert review["closed"]["current"] == {"won": 2, "lost": 0, "win_rate": 1.0}
        assert review["closed"]["previous"]["win_rate"] is None
        assert review["cycle"]["current"]["median"] == pytest.approx(13.5)


class TestTierMovement:
    def test_moves_in_the_period(self, data):
        """cust_a was C from January and became A on 10 March: one C→A move in March, none in April;
        cust_a_new (created 3 March as B) counts as new (None→B); team B's customer never shows."""
        from leads.models import Customer

        History = Customer.history.model
        History.objects.all().update(history_date=at(1, 5))
        History.objects.filter(id=data.cust_a.pk).update(tier="C")
        History.objects.filter(id=data.cust_a_new.pk).update(history_date=at(3, 3))
        customer = Customer.objects.get(pk=data.cust_a.pk)
        customer.tier = "A"
        customer.save()
        History.objects.filter(id=customer.pk, tier="A").update(history_date=at(3, 10))
        moves = s.tier_movement(scope=scope(data.org.manager_a), period=MARCH)
        assert sorted(moves, key=str) == sorted(
            [{"tier_before": "C", "tier_after": "A", "n": 1}, {"tier_before": None, "tier_after": "B", "n": 1}], key=str)
        april = s.Period(date(2026, 4, 1), date(2026, 5, 1))
        assert s.tier_movement(scope=scope(data.org.manager_a), period=april) == []
