"""`make bench` at a tiny size: bench_seed's data set is consistent, bench_pages serves every page, and
the team dashboard runs the same number of queries whatever the size of the data."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Role, User
from activities.models import Activity
from contracts.models import Contract
from leads.models import Customer
from leads.normalise import name_key
from opportunities.models import Opportunity, StageChange, StageOwnerTotal


@pytest.fixture(autouse=True)
def app_defaults(db):
    """The default pipeline and the activity kinds the migrations seed (a transactional test elsewhere in
    the run may have flushed them): bench_seed builds on them."""
    from importlib import import_module

    from activities.models import ActivityKind
    from opportunities.services import pipeline_ensure_default

    pipeline_ensure_default()
    kinds = import_module("activities.migrations.0002_seed_kinds_and_onboarding").KINDS
    for position, (code, name, name_en, icon, contact) in enumerate(kinds):
        ActivityKind.objects.get_or_create(code=code, defaults={
            "name": name, "name_en": name_en, "icon": icon, "counts_as_contact": contact, "position": position})


SMALL = {"users": 14, "customers": 60, "opportunities": 200, "activities": 600, "contracts": 20}


def seed(**sizes) -> str:
    out = StringIO()
    call_command("bench_seed", stdout=out, **{**SMALL, **sizes})
    return out.getvalue()


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.django_db
class TestBenchSeed:
    def test_counts_and_timings(self):
        """Every table gets the asked number of rows, and the command prints the time of each step."""
        output = seed()
        assert Customer.objects.filter(external_id__startswith="bench-c").count() == 60
        assert Opportunity.objects.filter(external_id__startswith="bench-o").count() == 200
        assert Activity.objects.filter(external_id__startswith="bench-a").count() == 600
        won = Opportunity.objects.filter(stage__kind="won").count()
        assert Contract.objects.filter(number__startswith="BENCH-").count() == min(20, won)
        assert User.objects.filter(is_active=True).count() >= 14
        assert User.objects.filter(role=Role.MANAGER, managed_teams__children__isnull=False).exists()
        for step in ("customers", "opportunities", "stage changes", "activities (on deals)", "indexes rebuilt"):
            assert step in output
        assert "database size" in output
        # about four stage changes per deal on average
        assert 2.5 * 200 < StageChange.objects.count() < 6 * 200

    def test_stage_histories_end_at_the_current_stage(self):
        """Each deal's StageChange chain starts with "create", links each change to the previous one and
        ends at the deal's stage at stage_entered_at; closed_at is set exactly for won and lost deals."""
        seed()
        assert rows("""
            SELECT count(*) FROM opportunities_opportunity o
            JOIN LATERAL (SELECT * FROM opportunities_stagechange c WHERE c.opportunity_id = o.id
                          ORDER BY changed_at DESC, id DESC LIMIT 1) last ON true
            WHERE last.to_stage_id <> o.stage_id OR last.changed_at <> o.stage_entered_at""") == [(0,)]
        assert rows("""
            SELECT count(*) FROM opportunities_stagechange c
            LEFT JOIN LATERAL (SELECT * FROM opportunities_stagechange p WHERE p.opportunity_id = c.opportunity_id
                               AND (p.changed_at, p.id) < (c.changed_at, c.id)
                               ORDER BY p.changed_at DESC, p.id DESC LIMIT 1) p ON true
            WHERE p.to_stage_id IS DISTINCT FROM c.from_stage_id
               OR (p.id IS NULL) <> (c.action = 'create')""") == [(0,)]
        assert rows("""
            SELECT count(*) FROM opportunities_opportunity o JOIN opportunities_stage s ON s.id = o.stage_id
            WHERE (s.kind = 'open') <> (o.closed_at IS NULL)
               OR (s.kind = 'lost') <> (o.lost_from_stage_id IS NOT NULL)""") == [(0,)]
        assert not StageChange.objects.filter(seconds_in_previous_stage__lt=0).exists()

    def test_denormalised_fields(self):
        """The board rollup equals a recount; name_key and search_text are what Customer.save builds;
        last_activity_at is the deal's latest done activity."""
        seed()
        recount = rows("""SELECT stage_id, owner_id, count(*), sum(amount) FROM opportunities_opportunity
                          GROUP BY 1, 2 ORDER BY 1, 2""")
        rollup = list(StageOwnerTotal.objects.filter(opportunity_count__gt=0).order_by("stage_id", "owner_id")
                      .values_list("stage_id", "owner_id", "opportunity_count", "amount_sum"))
        assert rollup == recount
        # the activity scope totals and the dashboard's summary tables, recounted after the load
        assert rows("""SELECT a.owner_id, c.owner_id, count(*) FROM activities_activity a
                       JOIN leads_customer c ON c.id = a.customer_id GROUP BY 1, 2 ORDER BY 1, 2""") == rows(
            """SELECT owner_id, customer_owner_id, activities FROM activities_activityscopetotal
               WHERE activities <> 0 ORDER BY 1, 2""")
        call_command("dashboards_rollups", "--check", stdout=StringIO())
        assert rows("SELECT count(*) FROM dashboards_stageexitmonth")[0][0] > 0
        for customer in Customer.objects.filter(external_id__startswith="bench-c")[:20]:
            assert customer.name_key == name_key(customer.name)
            assert customer.search_text == customer.build_search_text()
        assert rows("""
            SELECT count(*) FROM opportunities_opportunity o
            WHERE o.last_activity_at IS DISTINCT FROM (SELECT max(done_at) FROM activities_activity a
                                                       WHERE a.opportunity_id = o.id AND a.status = 'done')""") == [(0,)]

    def test_pages_answer_for_every_role(self):
        """bench_pages requests every page as an admin, a manager and a rep and fails on any non-200."""
        seed()
        out = StringIO()
        call_command("bench_pages", repeat=1, warmup=0, stdout=out)
        output = out.getvalue()
        print(output)  # the query counts, for the record
        for page in ("team dashboard, month", "team dashboard, quarter", "kanban board", "opportunity list, search",
                     "customer list, search", "customer detail", "admin: opportunities", "admin: customers"):
            assert page in output
        assert output.count(" manager ") >= 8 and output.count(" rep ") >= 8


@pytest.mark.django_db
@pytest.mark.parametrize("period", ["month", "quarter"])
def test_dashboard_queries_do_not_grow_with_the_data(period, client, django_assert_max_num_queries):
    """The team dashboard runs the same number of queries with 10 times more deals, for every role."""
    seed(customers=30, opportunities=60, activities=150, contracts=10)
    users = {u.username: u for u in User.objects.filter(username__in=["admin2", "director2", "manager3"])}

    def count(user: User) -> int:
        client.force_login(user)
        client.get("/dashboards/", {"period": period})  # the session and the caches warm
        with django_assert_max_num_queries(50) as ctx:
            assert client.get("/dashboards/", {"period": period}).status_code == 200
        return len(ctx.captured_queries)

    small = {name: count(user) for name, user in users.items()}
    seed(customers=300, opportunities=600, activities=1500, contracts=100)
    large = {name: count(user) for name, user in users.items()}
    assert large == small
