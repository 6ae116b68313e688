"""The dashboard's summary tables (dashboards/rollups.py): the triggers keep them equal to a recount from
the source rows whatever writes those rows (services, plain ORM saves, bulk updates, deletes), and the
selectors read from them the same figures as from the source rows."""

from __future__ import annotations

import io
import math
import random
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from activities.models import Activity, ActivityStatus
from activities.services import activity_cancel, activity_complete, activity_plan
from contracts.models import Contract, PaymentInstalment, PaymentReceipt
from dashboards import rollups
from dashboards import selectors as s
from dashboards.models import (
    ActivityDay,
    CustomerPurchase,
    CustomerTierChange,
    DealCohortDay,
    DealWonDay,
)
from leads.models import Customer
from opportunities.models import Opportunity, Pipeline, StageChange
from opportunities.services import opportunity_lose, opportunity_reopen, opportunity_update
from tests.dashboards.factories import SHANGHAI, at, kind
from tests.factories import CustomerFactory
from tests.opportunities.factories import (
    advance_to,
    default_pipeline,
    loss_reason,
    make_opportunity,
    open_stages,
    stage,
)

pytestmark = pytest.mark.django_db
MARCH = s.Period(date(2026, 3, 1), date(2026, 4, 1))
PERIODS = [
    MARCH,
    s.Period(date(2026, 1, 1), date(2026, 4, 1), "quarter"),
    s.Period(date(2026, 3, 2), date(2026, 3, 9), "week"),
    s.Period(date(2026, 2, 20), date(2026, 3, 12), "custom"),  # partial February, partial March
    s.Period(date(2026, 2, 15), date(2026, 4, 10), "custom"),  # edges around a whole month
    s.Period(date(2025, 6, 1), date(2025, 7, 1)),  # empty
]


def assert_equal_to_recount() -> None:
    kept = rollups.snapshot()
    rollups.rebuild()
    recounted = rollups.snapshot()
    for name in kept:
        assert kept[name] == recounted[name], name
    assert any(recounted.values())


def figures(monkeypatch, *, summaries: bool, scope: s.DashboardScope, period: s.Period) -> dict:
    """Every period figure of the dashboard, from the summaries or from the source rows."""
    monkeypatch.setattr(s, "_summaries", lambda: summaries)
    pipeline = Pipeline.objects.get(pk=default_pipeline().pk)  # a fresh object: the funnels cache on it
    funnel = s.conversion_funnel(scope=scope, period=period, pipeline=pipeline)
    result = {
        "pipeline": [(r.stage.pk, r.count, r.amount, r.weighted) for r in s.pipeline_by_stage(scope=scope, pipeline=pipeline)],
        "forecast": s.forecast(scope=scope, period=period),
        "funnel": (funnel.created, funnel.won, funnel.lost, [(st.stage.pk, st.reached) for st in funnel.steps]),
        "by_source": [(f.key, f.created, f.won, f.lost, [st.reached for st in f.steps])
                      for f in s.conversion_by_source(scope=scope, period=period, pipeline=pipeline)],
        "by_rep": [(f.key, f.created, [st.reached for st in f.steps])
                   for f in s.conversion_by_rep(scope=scope, period=period, pipeline=pipeline)],
        "cycle": s.sales_cycle(scope=scope, period=period),
        "trend": s.sales_cycle_trend(scope=scope, until=period.last_day, months=4),
        "stages": [(t.stage.pk, t.moves, t.average, t.median) for t in s.time_in_stage(scope=scope, period=period, pipeline=pipeline)],
        "activities": s.activity_stats(scope=scope, period=period),
        "overdue": s.overdue_follow_ups(scope=scope, now=at(3, 15, 9)),
        "actuals": s.rep_actuals(scope=scope, period=period),
        "revenue": s.revenue_trend(scope=scope, until=period.last_day, months=4),
        "tiers": s.tier_distribution(scope=scope),
        "tier_moves": s.tier_movement(scope=scope, period=period),
        "repurchase": s.repurchase(scope=scope, until=period.last_day),
    }
    monkeypatch.undo()
    return result


def assert_same_figures(summarised: dict, counted: dict) -> None:
    """Equal, except the medians and 75th percentiles: estimated from histograms (within 10 %)."""
    for key in ("pipeline", "forecast", "funnel", "by_source", "by_rep", "activities", "overdue", "actuals", "revenue",
                "tiers", "tier_moves", "repurchase"):
        assert summarised[key] == counted[key], key
    a, b = summarised["cycle"], counted["cycle"]
    assert a["count"] == b["count"]
    for name in ("average", "median", "p75"):
        assert (a[name] is None) == (b[name] is None) and (a[name] is None or a[name] == pytest.approx(b[name], rel=0.1)), name
    for x, y in zip(summarised["trend"], counted["trend"], strict=True):
        assert (x["month"], x["count"]) == (y["month"], y["count"])
        assert x["median"] == pytest.approx(y["median"], rel=0.1) if y["median"] is not None else x["median"] is None
    for (stage_a, moves_a, avg_a, med_a), (stage_b, moves_b, avg_b, med_b) in zip(
        summarised["stages"], counted["stages"], strict=True
    ):
        assert (stage_a, moves_a) == (stage_b, moves_b)
        assert avg_a == pytest.approx(avg_b) if avg_b is not None else avg_a is None
        assert med_a == pytest.approx(med_b, rel=0.1) if med_b is not None else med_a is None


class TestInstalled:
    def test_ready_on_postgresql_after_migrate(self):
        """The migration installed the triggers for the configured time zone: the selectors read them."""
        assert connection.vendor == "postgresql" and rollups.ready()


class TestFixedDataSet:
    def test_the_triggers_counted_the_data_set(self, data):
        """The data set is written with plain ORM saves; the summaries equal a recount."""
        assert_equal_to_recount()
        row = DealCohortDay.objects.get(day=date(2026, 3, 3), owner=data.org.rep_a, source="website")
        assert (row.created, row.won, row.lost) == (1, 0, 0)
        # o5 was won at 01:30 on 1 March in Shanghai (17:30 UTC on 28 February): March's
        assert DealWonDay.objects.get(day=date(2026, 3, 1), owner=data.org.rep_a).won == 1

    @pytest.mark.parametrize("period", PERIODS, ids=lambda p: f"{p.start}..{p.end}")
    def test_same_figures_as_the_source_rows(self, data, monkeypatch, period):
        """For whole months, weeks, and periods with partial months at either end, every scope."""
        for user in (data.org.admin, data.org.manager_a, data.org.director, data.org.rep_a):
            scope = s.dashboard_scope(user=user)
            assert_same_figures(figures(monkeypatch, summaries=True, scope=scope, period=period),
                                figures(monkeypatch, summaries=False, scope=scope, period=period))

    def test_hand_computed_medians_are_exact(self, data):
        """Durations whole days apart fall in buckets of their own: the estimates are the exact values."""
        manager = s.dashboard_scope(user=data.org.manager_a)
        cycle = s.sales_cycle(scope=manager, period=MARCH)
        assert (cycle["median"], cycle["p75"]) == (pytest.approx(13.5), pytest.approx(16.25))
        times = {t.stage.pk: t for t in s.time_in_stage(scope=manager, period=MARCH, pipeline=data.pipeline)}
        assert (times[data.s1.pk].median, times[data.s2.pk].median) == (pytest.approx(2), pytest.approx(2.5))


class TestTriggers:
    def test_services_bulk_updates_and_deletes(self, org):
        """Deals and activities written every way the application writes them; after each step the summaries
        equal a recount."""
        pipeline = default_pipeline()
        opens = open_stages(pipeline)
        first, second = opens[:2]
        customer = CustomerFactory(owner=org.rep_a)
        deals = [make_opportunity(org.rep_a, customer=customer, source="website", complete=True) for _ in range(3)]
        deals[0] = advance_to(deals[0], second)
        last = advance_to(deals[1], opens[-1])
        # won as a contract signature would (contracts' own tests sign through opportunity_win)
        won_at = last.stage_entered_at + timedelta(days=3)
        StageChange.objects.create(opportunity=last, action="win", from_stage=opens[-1], to_stage=stage("won"),
                                   changed_at=won_at, seconds_in_previous_stage=3 * 86400)
        Opportunity.objects.filter(pk=last.pk).update(stage=stage("won"), closed_at=won_at, stage_entered_at=won_at)
        deals[2] = opportunity_lose(opportunity=deals[2], user=org.rep_a, loss_reason=loss_reason(), note="price")
        assert_equal_to_recount()
        deals[2] = opportunity_reopen(opportunity=deals[2], user=org.manager_a, note="back")
        opportunity_update(opportunity=deals[0], user=org.manager_a, owner=org.rep_a2, source="referral",
                           amount=Decimal("999"), expected_close_date=date(2026, 12, 1))
        assert_equal_to_recount()
        # a bulk reassignment (queryset.update: no signals, no save) and a deal moved to another month
        Opportunity.objects.filter(pk__in=[deals[1].pk, deals[2].pk]).update(owner=org.rep_b)
        Opportunity.objects.filter(pk=deals[1].pk).update(created_at=datetime(2025, 1, 31, 20, 0, tzinfo=SHANGHAI))
        StageChange.objects.filter(opportunity=deals[0], from_stage=first).update(seconds_in_previous_stage=86400 * 3)
        assert_equal_to_recount()
        # a duplicate move into a stage already reached, then its deletion: the deal still reached it
        StageChange.objects.create(opportunity=deals[0], action="advance", from_stage=first, to_stage=second,
                                   seconds_in_previous_stage=3600)
        StageChange.objects.filter(opportunity=deals[0], to_stage=second).order_by("-pk").first().delete()
        assert_equal_to_recount()
        deals[2].activities.all().delete()
        Opportunity.objects.get(pk=deals[2].pk).delete()
        assert_equal_to_recount()

    def test_activities(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        planned = [activity_plan(by=org.rep_a, owner=org.rep_a, customer=customer, kind=kind("call"), subject=f"a{i}",
                                 planned_at=at(3, 10 + i))[0] for i in range(4)]
        activity_complete(activity=planned[0], by=org.rep_a)
        activity_cancel(activity=planned[1], by=org.rep_a)
        assert_equal_to_recount()
        Activity.objects.filter(pk=planned[2].pk).update(owner=org.rep_a2, due_at=at(4, 1), kind=kind("visit"))
        Activity.objects.filter(pk=planned[3].pk).update(status=ActivityStatus.DONE, done_at=at(3, 31, 23, 59))
        assert_equal_to_recount()
        Activity.objects.filter(pk=planned[0].pk).delete()
        assert_equal_to_recount()
        # one INSERT of many rows (an import's chunk): counted per statement
        Activity.objects.bulk_create([
            Activity(kind=kind(code), subject=f"bulk {i}", customer=customer, owner=owner, status=status,
                     planned_at=at(3, 1 + i % 28, 9 + i % 10), due_at=at(3, 2 + i % 27) if i % 3 == 0 else None,
                     done_at=at(3, 1 + i % 28, 12) if status == ActivityStatus.DONE else None)
            for i, (code, owner, status) in enumerate(
                (c, o, st) for c in ("call", "visit") for o in (org.rep_a, org.rep_a2)
                for st in (ActivityStatus.PLANNED, ActivityStatus.DONE, ActivityStatus.CANCELLED) for _ in range(3)
            )
        ])
        assert_equal_to_recount()

    def test_random_history(self, org, monkeypatch):
        """Random deals, moves back and forth, closings, reopenings, reassignments and deletions over three
        months, straight to the tables: the summaries equal a recount and the dashboard's figures equal those
        counted from the source rows, for every scope and kind of period."""
        rng = random.Random(20261127)
        pipeline = default_pipeline()
        opens, won, lost = open_stages(pipeline), stage("won"), stage("lost")
        owners = [org.rep_a, org.rep_a2, org.rep_b, org.manager_a]
        customers = [CustomerFactory(owner=o) for o in owners]
        start = datetime(2026, 1, 1, tzinfo=SHANGHAI)
        deals = []
        for i in range(60):
            owner = rng.choice(owners)
            created = start + timedelta(hours=rng.randrange(0, 24 * 95))
            deal = Opportunity.objects.create(
                pipeline=pipeline, stage=opens[0], customer=rng.choice(customers), owner=owner, title=f"D{i}",
                amount=Decimal(rng.randrange(1, 500) * 10), probability=rng.choice([10, 40, 70, 90]),
                source=rng.choice(["", "website", "referral"]), created_at=created, stage_entered_at=created,
                expected_close_date=(created + timedelta(days=rng.randrange(5, 60))).date(),
            )
            StageChange.objects.create(opportunity=deal, action="create", to_stage=opens[0], changed_at=created)
            when, current = created, opens[0]
            for _ in range(rng.randrange(0, 6)):
                target = rng.choice([*opens, won, lost])
                if target == current:
                    continue
                spent = rng.randrange(600, 86400 * 20)
                when += timedelta(seconds=spent)
                StageChange.objects.create(opportunity=deal, action="advance", from_stage=current, to_stage=target,
                                           changed_at=when, seconds_in_previous_stage=spent)
                current = target
            Opportunity.objects.filter(pk=deal.pk).update(
                stage=current, stage_entered_at=when, closed_at=when if current in (won, lost) else None
            )
            deals.append(deal)
            for j in range(rng.randrange(0, 4)):
                status = rng.choice(list(ActivityStatus))
                planned_at = created + timedelta(hours=rng.randrange(-48, 24 * 30))
                Activity.objects.create(
                    kind=kind(rng.choice(["call", "visit", "meeting"])), subject=f"A{i}.{j}", customer=deal.customer,
                    opportunity=deal, owner=rng.choice(owners), status=status, planned_at=planned_at,
                    due_at=planned_at + timedelta(days=1) if rng.random() < 0.3 else None,
                    done_at=planned_at + timedelta(hours=rng.randrange(0, 72)) if status == ActivityStatus.DONE else None,
                )
        for deal in rng.sample(deals, 10):
            Opportunity.objects.filter(pk=deal.pk).update(owner=rng.choice(owners), source=rng.choice(["", "event"]))
        for deal in rng.sample(deals, 5):
            deal.activities.all().delete()
            Opportunity.objects.get(pk=deal.pk).delete()
        assert_equal_to_recount()
        for period in PERIODS[:5]:
            for user in (org.admin, org.director, org.manager_a, org.rep_a):
                scope = s.dashboard_scope(user=user)
                assert_same_figures(figures(monkeypatch, summaries=True, scope=scope, period=period),
                                    figures(monkeypatch, summaries=False, scope=scope, period=period))


    def test_customers_contracts_and_receipts(self, org):
        """Customers created in and out of the pool, re-tiered (history rows) and reassigned; contracts
        signed, re-dated, moved to another customer and owner, deleted; receipts recorded and deleted."""
        pool = CustomerFactory(owner=None, tier="C")
        a = CustomerFactory(owner=org.rep_a, tier="B")
        b = CustomerFactory(owner=org.rep_a2, tier="A")
        a.tier = "A"
        a.save()  # a history row: B → A
        pool.owner, pool.tier = org.rep_b, "B"
        pool.save()
        assert_equal_to_recount()
        assert CustomerTierChange.objects.filter(customer_id=a.pk, from_tier="B", to_tier="A").exists()

        def contract(customer, owner, total, signed_on):
            return Contract.objects.create(number=f"R-{Contract.objects.count()}", title="C", customer=customer,
                                           owner=owner, total_amount=Decimal(total), subtotal=Decimal(total),
                                           signed_on=signed_on, status="signed")

        first = contract(a, org.rep_a, "1000", date(2026, 3, 5))
        second = contract(a, org.rep_a, "500", date(2026, 4, 2))
        third = contract(b, org.rep_a2, "700", None)
        instalment = PaymentInstalment.objects.create(contract=first, due_date=date(2026, 3, 20), amount=Decimal("600"))
        receipt = PaymentReceipt.objects.create(instalment=instalment, contract=first, received_on=date(2026, 3, 21),
                                                amount=Decimal("600"), recorded_by=org.rep_a)
        assert_equal_to_recount()
        assert CustomerPurchase.objects.get(customer_id=a.pk).second_on == date(2026, 4, 2)
        Contract.objects.filter(pk=third.pk).update(signed_on=date(2026, 2, 1))
        Contract.objects.filter(pk=first.pk).update(owner=org.rep_b)  # its receipt's revenue goes along
        Contract.objects.filter(pk=second.pk).update(customer=b)
        Customer.objects.filter(pk=b.pk).update(owner=org.rep_b)
        assert_equal_to_recount()
        receipt.delete()
        Contract.objects.filter(pk=second.pk).delete()
        assert_equal_to_recount()


class TestTimeZone:
    def test_a_new_time_zone_is_counted_from_the_source_rows_until_migrate(self, data, settings, monkeypatch):
        """Days are local dates: with another TIME_ZONE the summaries are not read until `migrate` (its
        post_migrate hook, `rollups.ensure`) reinstalled the triggers and recounted; then they agree again."""
        scope = s.dashboard_scope(user=data.org.manager_a)
        try:
            settings.TIME_ZONE = "UTC"
            assert not rollups.ready()
            counted = s.activity_stats(scope=scope, period=MARCH)
            # in UTC the call done at 16:30 UTC on 31 March is March's
            assert {(r["owner_id"], r["kind__code"]): r["done"] for r in counted}[(data.org.rep_a.pk, "call")] == 2
            rollups.ensure()
            assert rollups.ready() and rollups.installed_signature() == rollups.signature("UTC")
            assert s.activity_stats(scope=scope, period=MARCH) == counted
        finally:
            rollups._ready_cache.clear()


    def test_a_no_is_looked_up_again_after_a_while(self, settings):
        """A worker that asked before `migrate` installed the triggers reads the tables a minute later."""
        key = (connection.alias, settings.TIME_ZONE)
        try:
            rollups._ready_cache[key] = (False, time.monotonic())
            assert not rollups.ready()
            rollups._ready_cache[key] = (False, time.monotonic() - rollups.RECHECK_SECONDS - 1)
            assert rollups.ready()
        finally:
            rollups._ready_cache.clear()


class TestHistogramPercentile:
    def test_interpolates_like_percentile_cont(self):
        rows = [(10, 1, 100), (20, 1, 300)]  # the values 100 and 300
        assert rollups.histogram_percentile(rows, 0.5) == 200
        assert rollups.histogram_percentile(rows, 0.75) == 250
        assert rollups.histogram_percentile([], 0.5) is None
        assert rollups.histogram_percentile([(3, 0, 0)], 0.5) is None

    def test_estimate_within_the_bucket_width(self):
        """Random durations: the estimate from their buckets is within 10 % of the exact percentile."""
        rng = random.Random(7)
        values = sorted(rng.randrange(60, 86400 * 90) for _ in range(501))
        buckets: dict[int, list[int]] = {}
        for v in values:
            b = 0 if v < 3600 else 1 + math.floor(math.log(v / 3600) / math.log(1.1))
            buckets.setdefault(b, []).append(v)
        rows = [(b, len(vs), sum(vs)) for b, vs in buckets.items()]
        for p in (0.25, 0.5, 0.75, 0.9):
            exact = values[round(p * 500)]
            assert rollups.histogram_percentile(rows, p) == pytest.approx(exact, rel=0.1)

    def test_sql_bucket_function(self):
        """The SQL bucket function: under an hour 0, then a bucket per 10 % of hours."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT dashboards_bucket(0), dashboards_bucket(3599), dashboards_bucket(3600), "
                           "dashboards_bucket(3960), dashboards_bucket(86400)")
            assert cursor.fetchone() == (0, 0, 1, 2, 34)


class TestCommand:
    def test_check_rebuild_and_status(self, data):
        """--check finds a summary row changed behind the triggers' back; --rebuild repairs it."""
        out = io.StringIO()
        call_command("dashboards_rollups", "--check", stdout=out)
        assert "equal a recount" in out.getvalue()
        ActivityDay.objects.filter(pk=ActivityDay.objects.order_by("pk").first().pk).update(planned=99)
        with pytest.raises(CommandError, match="1 summary tables differ"):
            call_command("dashboards_rollups", "--check", stdout=io.StringIO())
        call_command("dashboards_rollups", "--rebuild", stdout=io.StringIO())
        call_command("dashboards_rollups", "--check", stdout=io.StringIO())
        out = io.StringIO()
        call_command("dashboards_rollups", stdout=out)
        assert "read by the dashboards: True" in out.getvalue()
