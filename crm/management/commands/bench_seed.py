"""Fill a scratch database with the issue-8 data set, fast: `manage.py bench_seed` (after `seed_demo`).

Defaults: 50 users, 200,000 customers (one contact each), 1,000,000 opportunities with ~4 stage changes
each, 3,000,000 activities, 100,000 contracts (a line, two instalments and their receipts each), plus a
creation row in the history tables of customers, opportunities and contracts.

Everything is set-based SQL (INSERT ... SELECT over generate_series); Python only creates the 50 users
and writes the statements. Two plan tables (temporary, one row per customer and per deal) hold the
random draws, so the activities, the deals and their stage histories agree with each other:

- dates over the last two years (boundaries in settings.TIME_ZONE for the date columns);
- deals older than 60 days are mostly closed (30 % won, 45 % lost), younger ones mostly open; a deal
  closes 5 to 180 days after its creation, so one whose closing day is still ahead is open;
- each deal's StageChange chain starts with "create" in the first open stage, advances (with some
  back-and-forth moves) and ends at the deal's current stage at `stage_entered_at`; `closed_at` is set
  exactly for won and lost deals; `seconds_in_previous_stage` is the gap between two changes;
- `last_activity_at` (deals) and `last_contacted_at` / `next_follow_up_at` (customers) are the
  aggregates of the seeded activities; `name_key` and `search_text` as `Customer.save` builds them;
- the board rollup (opportunities_stageownertotal), the activity scope totals and the dashboard's summary tables
  (dashboards/rollups.py) are recounted after the load.

The load runs in one transaction with triggers and foreign-key checks off (session_replication_role =
replica, PostgreSQL superuser) and the plain indexes of the big tables dropped and rebuilt afterwards,
then ANALYZE (VACUUM ANALYZE unless inside a test transaction). Run again, it adds another data set of the given size (the users are reused). Never run it on a
production database.
"""

from __future__ import annotations

import time
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction

from accounts.models import Role, Team, User
from activities.models import Activity, ActivityKind
from activities.services import activity_scope_totals_recount
from contracts.models import Contract, ContractLine, PaymentInstalment, PaymentReceipt
from leads.models import Contact, Customer, SourceChannel
from opportunities.models import Opportunity, Pipeline, StageChange, StageOwnerTotal

# SQL text is built from model metadata, integers and this module's constant lists, never from input:
# the `# nosec B608` marks below (bandit: string-built SQL) are for that reason.
MARK = "bench-"  # external ids of the seeded rows: bench-c<id>, bench-p<id>, bench-o<id>, bench-a<id>

# region team, its director, the extra team below it and that team's manager (the demo teams 1 and 2
# go below the regions too, so a director manages a subtree of two teams)
REGIONS = [
    ("华东大区 East region", "director1", "华东销售三组 East team 3", "manager3", "华东销售一组 East team 1"),
    ("华南大区 South region", "director2", "华南销售四组 South team 4", "manager4", "华南销售二组 South team 2"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华", "平"]
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "南京", "苏州", "成都", "武汉", "西安", "天津", "宁波"]
WORDS = ["华东", "宏达", "鼎盛", "恒信", "瑞丰", "金桥", "新元", "天成", "博远", "中和", "永泰", "联创"]
TRADES = ["精密机械", "软件科技", "医疗器械", "物流", "电子", "新能源", "食品", "建材", "教育科技", "贸易"]
INDUSTRIES = ["manufacturing", "software", "healthcare", "logistics", "manufacturing", "energy", "retail",
              "real_estate", "education", "other"]
REGION_NAMES = {"上海": "华东 · 上海", "北京": "华北 · 北京", "深圳": "华南 · 深圳", "广州": "华南 · 广州",
                "杭州": "华东 · 杭州", "南京": "华东 · 南京", "苏州": "华东 · 苏州", "成都": "西南 · 成都",
                "武汉": "华中 · 武汉", "西安": "西北 · 西安", "天津": "华北 · 天津", "宁波": "华东 · 宁波"}
SOURCES = ["website", "referral", "exhibition", "cold_call", "partner", "existing", "advertising", "other"]
# activity kinds by code, with the share of activities of each kind (cumulative thresholds below)
KIND_SHARES = [("call", 0.40), ("wechat", 0.15), ("email", 0.15), ("visit", 0.15), ("meeting", 0.10),
               ("demo", 0.03), ("note", 0.02)]


def sql_array(values: list[Any], cast: str) -> str:
    if cast == "text":
        return "ARRAY[" + ",".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]::text[]"
    return "ARRAY[" + ",".join(str(int(v)) for v in values) + f"]::{cast}[]"


def insert_sql(model: type[models.Model], exprs: dict[str, str], source: str) -> tuple[str, list[Any]]:
    """INSERT INTO <model's table> (every concrete column) SELECT <expr per column> <source>.

    Columns not in `exprs` get the field's default as a parameter (NULL if nullable without a
    default, now() for auto_now/auto_now_add), so a field another change adds later keeps working."""
    columns, values, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key and f.column not in exprs:
            continue
        columns.append(connection.ops.quote_name(f.column))
        if f.column in exprs:
            values.append(exprs[f.column].replace("%", "%%"))  # the statement has parameters
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            values.append("now()")
        elif f.has_default() or not f.null:
            default = f.get_default()
            if default is None and not f.null:
                raise CommandError(f"bench_seed: no value for {model.__name__}.{f.name}")
            values.append("%s")
            params.append(f.get_db_prep_save(default, connection))
        else:
            values.append("NULL")
    table = connection.ops.quote_name(model._meta.db_table)
    source = source.replace("%", "%%")
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} {source}", params


def history_sql(model: type[models.Model], where: str) -> str:
    """A creation row ('+', at created_at) in the model's history table for each row matching `where`."""
    history = model.history.model
    base_columns = {f.column for f in model._meta.concrete_fields}
    columns, values = [], []
    for f in history._meta.concrete_fields:
        if f.column == "history_id":
            continue
        columns.append(connection.ops.quote_name(f.column))
        if f.column in base_columns:
            values.append(connection.ops.quote_name(f.column))
        elif f.column == "history_date":
            values.append("created_at")
        elif f.column == "history_type":
            values.append("'+'")
        else:
            values.append("NULL")
    return (f"INSERT INTO {history._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} "
            f"FROM {model._meta.db_table} WHERE {where}")  # nosec B608


def next_id(model: type[models.Model]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {model._meta.db_table}")  # nosec B608
        return cursor.fetchone()[0]


class Command(BaseCommand):
    help = "Seed the large benchmark data set with set-based SQL (PostgreSQL superuser, scratch database)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=50)
        parser.add_argument("--customers", type=int, default=200_000)
        parser.add_argument("--opportunities", type=int, default=1_000_000)
        parser.add_argument("--stage-changes-per-opp", type=float, default=4.0,
                            help="average length of a deal's stage history (at least ~3)")
        parser.add_argument("--activities", type=int, default=3_000_000)
        parser.add_argument("--contracts", type=int, default=100_000)
        parser.add_argument("--seed", type=float, default=0.42, help="PostgreSQL setseed() value (-1..1)")
        parser.add_argument("--no-vacuum", action="store_true", help="ANALYZE only (inside a transaction)")

    def handle(self, *args, **o):
        if connection.vendor != "postgresql":
            raise CommandError("The bench needs PostgreSQL (DATABASE_URL).")
        if not Pipeline.objects.filter(is_default=True).exists() or not ActivityKind.objects.exists():
            raise CommandError("Run seed_demo first (pipelines, stages and activity kinds).")
        self.timings: list[tuple[str, float, int]] = []
        started = time.perf_counter()
        with transaction.atomic():
            users = self.seed_users(o["users"])
            with connection.cursor() as cursor:
                self.cursor = cursor
                for statement in ("SET LOCAL session_replication_role = replica", "SET LOCAL synchronous_commit = off",
                                  "SET LOCAL work_mem = '256MB'", "SET LOCAL maintenance_work_mem = '1GB'"):
                    cursor.execute(statement)
                cursor.execute("SELECT setseed(%s)", [o["seed"]])
                dropped = self.drop_indexes([Customer, Contact, Opportunity, StageChange, Activity, Contract,
                                             PaymentInstalment, PaymentReceipt, ContractLine])
                self.seed(users, o)
                self.step("indexes rebuilt", lambda: [cursor.execute(sql) for sql in dropped] and None)
                self.step("board rollup recounted", self.rebuild_board_totals)
                self.step("dashboard summaries recounted", self.rebuild_dashboard_summaries)
                self.step("activity scope totals recounted", activity_scope_totals_recount)
                for model in (Customer, Contact, Opportunity, StageChange, Activity, Contract, ContractLine,
                              PaymentInstalment, PaymentReceipt):
                    table = model._meta.db_table
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT coalesce(max(id), 1) FROM {table}))")  # nosec B608
                for model in (Customer, Opportunity, Contract):
                    history = model.history.model._meta.db_table
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{history}', 'history_id'), "
                                   f"(SELECT coalesce(max(history_id), 1) FROM {history}))")  # nosec B608
        in_transaction = connection.in_atomic_block or o["no_vacuum"]
        with connection.cursor() as cursor:
            self.cursor = cursor
            self.step("ANALYZE" if in_transaction else "VACUUM ANALYZE",
                      lambda: cursor.execute("ANALYZE" if in_transaction else "VACUUM ANALYZE"))
        total = time.perf_counter() - started
        self.stdout.write(f"{'step':38} {'rows':>10} {'seconds':>8}")
        for name, seconds, rows in self.timings:
            self.stdout.write(f"{name:38} {rows if rows >= 0 else '':>10} {seconds:8.1f}")
        self.stdout.write(f"{'total':38} {'':>10} {total:8.1f}")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            self.stdout.write(f"database size: {cursor.fetchone()[0]}")

    # --- helpers ----------------------------------------------------------------------------------
    def step(self, name: str, fn) -> None:
        started = time.perf_counter()
        rows = fn()
        self.timings.append((name, time.perf_counter() - started, rows if isinstance(rows, int) else -1))

    def run(self, name: str, sql: str, params: list[Any] | None = None) -> None:
        def execute() -> int:
            self.cursor.execute(sql, params)
            return self.cursor.rowcount

        self.step(name, execute)

    def drop_indexes(self, models_: list[type[models.Model]]) -> list[str]:
        """Drop the plain (non-constraint) indexes of the tables; return the statements recreating them."""
        tables = [m._meta.db_table for m in models_]
        self.cursor.execute(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
               JOIN pg_class t ON t.oid = i.indrelid
               WHERE t.relname = ANY(%s) AND NOT i.indisprimary
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
            [tables],
        )
        rows = self.cursor.fetchall()
        for name, _definition in rows:
            self.cursor.execute(f"DROP INDEX {name}")
        return [definition for _name, definition in rows]

    def rebuild_board_totals(self) -> int:
        """The recount of migration opportunities/0003 (the trigger was off during the load)."""
        table = StageOwnerTotal._meta.db_table
        self.cursor.execute(f"DELETE FROM {table}")  # nosec B608
        self.cursor.execute(
            f"INSERT INTO {table} (stage_id, owner_id, opportunity_count, amount_sum, weighted_sum) "
            "SELECT stage_id, owner_id, count(*), sum(amount), sum(amount * probability / 100.0) "
            "FROM opportunities_opportunity GROUP BY stage_id, owner_id"  # nosec B608
        )
        return self.cursor.rowcount

    def rebuild_dashboard_summaries(self) -> int:
        """The dashboard's summary tables (dashboards/rollups.py; their triggers were off during the load)."""
        from dashboards import rollups

        rollups.rebuild(connection)
        self.cursor.execute(" UNION ALL ".join(f"SELECT count(*) FROM {table}" for table in rollups.TABLES))  # nosec B608
        return sum(row[0] for row in self.cursor.fetchall())

    # --- users and teams (the only ORM writes: a few dozen rows) ------------------------------------
    def seed_users(self, wanted: int) -> list[User]:
        password = make_password(settings.CRM_DEMO_PASSWORD)

        def user(username: str, role: str, team: Team | None, **extra: Any) -> User:
            found = User.objects.filter(username=username).first()
            if found is not None:
                return found
            index = sum(map(ord, username))
            return User.objects.create(
                username=username, role=role, team=team, password=password, email=f"{username}@example.com",
                last_name=SURNAMES[index % len(SURNAMES)], first_name=GIVEN[index % len(GIVEN)], **extra,
            )

        user("admin2", Role.ADMIN, None, is_superuser=True)  # a second admin: bench_pages signs in as it, a load test as admin
        leaf_teams = []
        for region_name, director, team_name, manager, demo_team_name in REGIONS:
            region, _created = Team.objects.get_or_create(name=region_name)
            region_head = user(director, Role.MANAGER, region)
            if region.manager_id != region_head.pk:
                region.manager = region_head
                region.save(update_fields=["manager"])
            team, _created = Team.objects.get_or_create(name=team_name, defaults={"parent": region})
            head = user(manager, Role.MANAGER, team)
            if team.manager_id != head.pk:
                team.manager = head
                team.save(update_fields=["manager"])
            leaf_teams.append(team)
            demo_team = Team.objects.filter(name=demo_team_name).first()
            if demo_team is not None:
                if demo_team.parent_id != region.pk:
                    demo_team.parent = region
                    demo_team.save(update_fields=["parent"])
                leaf_teams.append(demo_team)
        n, missing = 0, wanted - User.objects.count()
        while missing > 0:
            n += 1
            if not User.objects.filter(username=f"rep{n}").exists():
                user(f"rep{n}", Role.REP, leaf_teams[n % len(leaf_teams)])
                missing -= 1
        return list(User.objects.filter(role=Role.REP, is_active=True, team__isnull=False).order_by("pk"))

    # --- the data set -----------------------------------------------------------------------------
    def seed(self, reps: list[User], o: dict[str, Any]) -> None:
        tz = settings.TIME_ZONE
        n_customers, n_opps = o["customers"], o["opportunities"]
        rep_ids = sql_array([u.pk for u in reps], "bigint")
        rep_teams = sql_array([u.team_id for u in reps], "bigint")
        n_reps = len(reps)
        channel_ids = list(SourceChannel.objects.values_list("pk", flat=True))
        channels = sql_array(channel_ids, "bigint")
        admin_id = User.objects.filter(role=Role.ADMIN).order_by("pk").values_list("pk", flat=True).first()
        c0, p0, o0, a0, k0 = (next_id(m) for m in (Customer, Contact, Opportunity, Activity, Contract))
        cur = self.cursor
        # plan tables of an earlier run in the same transaction (a test seeding twice)
        cur.execute("DROP TABLE IF EXISTS bench_customer, bench_pipeline, bench_opp, bench_contract, bench_instalment")

        # customers: the plan (random draws), then the rows
        self.run("plan: customers", f"""
            CREATE TEMP TABLE bench_customer ON COMMIT DROP AS
            SELECT {c0} + g AS id, g, (x.u_pool < 0.2) AS pooled, x.idx,
                   ({rep_ids})[x.idx] AS rep_id, ({rep_teams})[x.idx] AS team_id,
                   now() - x.u_age * interval '730 days' AS created_at, x.u_tier, x.u_status, x.u_src
            FROM generate_series(1, {n_customers}) g
            CROSS JOIN LATERAL (SELECT g AS gg, random() AS u_pool, 1 + floor(random() * {n_reps})::int AS idx,
                                       random() AS u_age, random() AS u_tier, random() AS u_status,
                                       random() AS u_src) x""")  # nosec B608
        cur.execute("ALTER TABLE bench_customer ADD PRIMARY KEY (id)")

        # deals: the plan; stage arrays of each pipeline from the stage table
        self.run("plan: pipelines", """
            CREATE TEMP TABLE bench_pipeline ON COMMIT DROP AS
            SELECT p.id AS pipeline_id, row_number() OVER (ORDER BY p.id) AS n,
                   array_agg(s.id ORDER BY s."order", s.id) FILTER (WHERE s.kind = 'open') AS open_ids,
                   array_agg(s.default_probability ORDER BY s."order", s.id) FILTER (WHERE s.kind = 'open') AS probs,
                   array_agg(coalesce(s.stall_days, -1) ORDER BY s."order", s.id) FILTER (WHERE s.kind = 'open') AS stalls,
                   count(*) FILTER (WHERE s.kind = 'open') AS k,
                   max(s.id) FILTER (WHERE s.kind = 'won') AS won_id, max(s.id) FILTER (WHERE s.kind = 'lost') AS lost_id
            FROM opportunities_pipeline p JOIN opportunities_stage s ON s.pipeline_id = p.id AND s.is_active
            WHERE p.is_active GROUP BY p.id
            HAVING count(*) FILTER (WHERE s.kind = 'open') > 0""")
        cur.execute("SELECT count(*) FROM bench_pipeline")
        n_pipelines = cur.fetchone()[0]
        self.run("plan: deals", f"""
            CREATE TEMP TABLE bench_opp ON COMMIT DROP AS
            WITH d AS MATERIALIZED (
                SELECT g, {c0} + 1 + floor(random() * {n_customers})::int AS customer_id,
                       1 + floor(random() * {n_pipelines})::int AS pn, random() AS u_age, random() AS u_out,
                       random() AS u_stage, random() AS u_cycle, random() AS u_bounce, random() AS u_amount,
                       1 + floor(random() * {n_reps})::int AS idx
                FROM generate_series(1, {n_opps}) g
            ), e AS (
                SELECT d.*, c.rep_id, c.pooled, c.created_at AS customer_created, p.pipeline_id, p.k, p.open_ids,
                       p.probs, p.stalls, p.won_id, p.lost_id,
                       greatest(c.created_at, now() - d.u_age * interval '730 days') AS created_at,
                       CASE WHEN greatest(c.created_at, now() - d.u_age * interval '730 days') + interval '5 days'
                                 + d.u_cycle * interval '175 days' > now() THEN 'open'  -- would close in the future
                            WHEN now() - greatest(c.created_at, now() - d.u_age * interval '730 days') > interval '60 days'
                            THEN CASE WHEN d.u_out < 0.30 THEN 'won' WHEN d.u_out < 0.75 THEN 'lost' ELSE 'open' END
                            ELSE CASE WHEN d.u_out < 0.10 THEN 'won' WHEN d.u_out < 0.25 THEN 'lost' ELSE 'open' END
                       END AS outcome
                FROM d JOIN bench_customer c ON c.id = d.customer_id JOIN bench_pipeline p ON p.n = d.pn
            )
            SELECT {o0} + g AS id, g, customer_id, CASE WHEN pooled THEN ({rep_ids})[idx] ELSE rep_id END AS owner_id,
                   pipeline_id, k, open_ids, probs, stalls, won_id, lost_id, outcome, created_at, u_bounce, u_amount,
                   CASE outcome WHEN 'won' THEN k WHEN 'lost' THEN 1 + floor(u_stage * k)::int
                        ELSE 1 + floor(power(u_stage, 1.5) * k)::int END AS r,
                   CASE WHEN outcome = 'open' THEN created_at + u_cycle * (now() - created_at)
                        ELSE greatest(created_at, least(now() - interval '1 minute', created_at + interval '5 days' + u_cycle * interval '175 days'))
                   END AS end_at
            FROM e""")  # nosec B608
        cur.execute("ALTER TABLE bench_opp ADD PRIMARY KEY (id)")
        # back-and-forth moves (move_back, advance) so that the average history has the wanted length
        cur.execute("SELECT avg(r + (outcome <> 'open')::int), avg((r >= 2)::int) FROM bench_opp")
        base, eligible = cur.fetchone()
        extra = max(0.0, (o["stage_changes_per_opp"] - float(base or 0)) / 2 / max(float(eligible or 0), 0.01))
        cur.execute("""ALTER TABLE bench_opp ADD COLUMN nb int, ADD COLUMN len int""")
        cur.execute(f"""UPDATE bench_opp SET nb = CASE WHEN r >= 2 THEN floor(u_bounce * {2 * extra + 1})::int ELSE 0 END""")  # nosec B608
        cur.execute("UPDATE bench_opp SET len = r + 2 * nb + (outcome <> 'open')::int")
        cur.execute("UPDATE bench_opp SET end_at = created_at WHERE len = 1")  # still in the stage it was created in

        # activities: two thirds on deals (the deal's customer and owner, during the deal), the rest on
        # customers (their owner, a rep for pool customers); 5 % of the done ones are more than planned
        thresholds, total = [], 0.0
        kind_ids = dict(ActivityKind.objects.values_list("code", "pk"))
        kinds = [(kind_ids[code], share) for code, share in KIND_SHARES if code in kind_ids] or [
            (next(iter(kind_ids.values())), 1.0)]
        for kind_id, share in kinds:
            total += share
            thresholds.append((kind_id, total))
        kind_case = "CASE " + " ".join(
            f"WHEN u_kind * {total} < {limit} THEN {kind_id}" for kind_id, limit in thresholds
        ) + f" ELSE {thresholds[-1][0]} END"
        n_acts = o["activities"]
        n_on_deals = n_acts * 2 // 3 if n_opps else 0
        activity_exprs = {
            "id": "id", "kind_id": "kind_id", "customer_id": "customer_id", "opportunity_id": "opportunity_id",
            "owner_id": "owner_id", "created_by_id": "owner_id",
            "subject": "'跟进 ' || g || ' follow-up'", "notes": "''", "next_step": "''",
            "status": "CASE WHEN ts > now() OR u_status < 0.03 THEN 'planned' WHEN u_status < 0.08 THEN 'cancelled' ELSE 'done' END",
            "planned_at": "ts", "done_at": "CASE WHEN ts > now() OR u_status < 0.08 THEN NULL ELSE ts END",
            "outcome": "CASE WHEN ts > now() OR u_status < 0.08 THEN '' WHEN u_status < 0.5 THEN 'positive' "
                       "WHEN u_status < 0.85 THEN 'neutral' ELSE 'negative' END",
            "duration_minutes": "CASE WHEN kind_id IN (SELECT id FROM activities_activitykind WHERE code IN ('visit', 'meeting', 'demo')) "
                                "THEN 60 + (g % 4) * 30 ELSE 5 + g % 25 END",
            "external_id": f"'{MARK}a' || id",
            "created_at": "least(ts, now()) - interval '1 day'", "updated_at": "least(ts, now())",
        }
        source = f"""FROM (
            SELECT {a0} + x.g AS id, x.g, o.customer_id, o.id AS opportunity_id, o.owner_id, {kind_case} AS kind_id,
                   u_status, o.created_at + u_at * (CASE WHEN o.outcome = 'open' THEN now() ELSE o.end_at END
                                                   - o.created_at + interval '14 days') AS ts
            FROM (SELECT g, {o0} + 1 + floor(random() * {max(n_opps, 1)})::int AS oid, random() AS u_kind,
                         random() AS u_status, random() AS u_at FROM generate_series(1, {n_on_deals}) g) x
            JOIN bench_opp o ON o.id = x.oid) a"""  # nosec B608
        sql, params = insert_sql(Activity, activity_exprs, source)
        self.run("activities (on deals)", sql, params)
        source = f"""FROM (
            SELECT {a0} + x.g AS id, x.g, c.id AS customer_id, NULL::bigint AS opportunity_id,
                   CASE WHEN c.pooled THEN ({rep_ids})[1 + x.g % {n_reps}] ELSE c.rep_id END AS owner_id,
                   {kind_case} AS kind_id, x.u_status,
                   c.created_at + u_at * (now() - c.created_at + interval '14 days') AS ts
            FROM (SELECT g, {c0} + 1 + floor(random() * {max(n_customers, 1)})::int AS cid, random() AS u_kind,
                         random() AS u_status, random() AS u_at
                  FROM generate_series({n_on_deals + 1}, {n_acts}) g) x
            JOIN bench_customer c ON c.id = x.cid) a"""  # nosec B608
        sql, params = insert_sql(Activity, activity_exprs, source)
        self.run("activities (on customers)", sql, params)

        # customers, with their last contact from the activities (kinds that count as contact)
        cadence = "CASE t.tier WHEN 'A' THEN 7 WHEN 'B' THEN 14 ELSE 30 END"
        cadence_rows = dict(apps.get_model("leads", "FollowUpCadence").objects.values_list("tier", "days"))
        if cadence_rows:
            cadence = "CASE t.tier " + " ".join(f"WHEN '{k}' THEN {int(v)}" for k, v in cadence_rows.items()) + " ELSE 30 END"
        city, word, trade = (sql_array(CITIES, "text"), sql_array(WORDS, "text"), sql_array(TRADES, "text"))
        regions = sql_array([REGION_NAMES[c] for c in CITIES], "text")
        name = (f"({city})[1 + g % {len(CITIES)}] || ({word})[1 + (g / {len(CITIES)}) % {len(WORDS)}] || "
                f"({trade})[1 + (g / 7) % {len(TRADES)}] || g || '有限公司'")
        key = (f"({city})[1 + g % {len(CITIES)}] || ({word})[1 + (g / {len(CITIES)}) % {len(WORDS)}] || "
               f"({trade})[1 + (g / 7) % {len(TRADES)}] || g")
        phone = "'+86139' || lpad(g::text, 8, '0')"
        contact_phone = "'+86138' || lpad(g::text, 8, '0')"
        contact_name = f"substr('{SURNAMES}', 1 + g % {len(SURNAMES)}, 1) || ({sql_array(GIVEN, 'text')})[1 + g % {len(GIVEN)}]"
        customer_exprs = {
            "id": "t.id", "name": name, "name_key": key,
            "customer_type": "CASE WHEN g % 10 = 0 THEN 'individual' ELSE 'company' END",
            "status": "CASE WHEN u_status < 0.35 THEN 'lead' WHEN u_status < 0.6 THEN 'prospect' "
                      "WHEN u_status < 0.9 THEN 'customer' ELSE 'inactive' END",
            "tier": "t.tier", "industry": f"({sql_array(INDUSTRIES, 'text')})[1 + (g / 7) % {len(TRADES)}]",
            "region": f"({regions})[1 + g % {len(CITIES)}]", "phone": phone, "email": "'c' || g || '@bench.example.cn'",
            "source_id": f"({channels})[1 + floor(u_src * {len(channel_ids)})::int]" if channel_ids else "NULL",
            "owner_id": "CASE WHEN pooled THEN NULL ELSE rep_id END", "team_id": "team_id",
            "assigned_at": "CASE WHEN pooled THEN NULL ELSE created_at END",
            "last_contacted_at": "lc.ts", "next_follow_up_at": f"CASE WHEN pooled THEN NULL ELSE coalesce(lc.ts, created_at) + {cadence} * interval '1 day' END",
            "profile_reviewed_at": "created_at + u_status * (now() - created_at)",
            "tier_source": "'rules'", "tier_computed_at": "now()", "external_id": f"'{MARK}c' || t.id",
            "search_text": (f"lower({name} || ' | ' || {phone} || ' | 139' || lpad(g::text, 8, '0') || ' | c' || g || "
                            f"'@bench.example.cn | ' || {contact_name} || ' | ' || {contact_phone} || ' | 138' || "
                            "lpad(g::text, 8, '0') || ' | p' || g || '@bench.example.cn')"),
            "version": "1", "created_at": "created_at", "updated_at": "greatest(created_at, coalesce(lc.ts, created_at))",
        }
        source = f"""FROM (SELECT *, CASE WHEN u_tier < 0.1 THEN 'A' WHEN u_tier < 0.4 THEN 'B' ELSE 'C' END AS tier
                          FROM bench_customer) t
            LEFT JOIN (SELECT customer_id, max(done_at) AS ts FROM activities_activity
                       WHERE id > {a0} AND status = 'done'
                         AND kind_id IN (SELECT id FROM activities_activitykind WHERE counts_as_contact)
                       GROUP BY customer_id) lc ON lc.customer_id = t.id"""  # nosec B608
        sql, params = insert_sql(Customer, customer_exprs, source)
        self.run("customers", sql, params)
        contact_exprs = {
            "id": f"{p0} + g", "customer_id": "id", "name": contact_name, "title": "'采购经理'",
            "phone": contact_phone, "email": "'p' || g || '@bench.example.cn'", "wechat": "''",
            "is_decision_maker": "true", "notes": "''", "external_id": f"'{MARK}p' || ({p0} + g)", "version": "1",
        }
        sql, params = insert_sql(Contact, contact_exprs, "FROM bench_customer")
        self.run("contacts", sql, params)

        # deals, their stage histories
        def idx(step: str) -> str:
            """Open-stage position (1..k) at a step of the chain, 0 for the closing step."""
            return (f"(CASE WHEN {step} <= r THEN {step} WHEN {step} <= r + 2 * nb "
                    f"THEN CASE WHEN ({step} - r) % 2 = 1 THEN r - 1 ELSE r END ELSE 0 END)")

        def stage_id(step: str) -> str:
            return (f"(CASE WHEN {idx(step)} > 0 THEN open_ids[{idx(step)}] "
                    f"WHEN outcome = 'won' THEN won_id ELSE lost_id END)")

        def at(step: str) -> str:
            """Time of a step: spread from created_at to end_at, with a jitter that keeps the order."""
            return (f"(CASE WHEN {step} <= 1 THEN created_at WHEN {step} >= len THEN end_at ELSE created_at + "
                    f"(end_at - created_at) * (({step} - 1) + ((id * 31 + {step} * 17) % 10) / 11.0) / (len - 1) END)")

        weighted_recency = "greatest(0, 1 - floor(extract(epoch FROM now() - coalesce(greatest(la.ts, c.last_contacted_at), o.created_at)) / 86400) / 30.0)"
        probability = "CASE outcome WHEN 'won' THEN 100 WHEN 'lost' THEN 0 ELSE probs[r] END"
        opp_exprs = {
            "id": "o.id", "pipeline_id": "o.pipeline_id", "stage_id": stage_id("len"), "customer_id": "o.customer_id",
            "owner_id": "o.owner_id", "created_by_id": "o.owner_id",
            "title": f"({sql_array(TRADES, 'text')})[1 + g % {len(TRADES)}] || '项目 ' || g",
            "amount": "round((5000 + power(u_amount, 3) * 1995000)::numeric, -2)",
            "probability": probability,
            "priority_score": (f"round(100 * (35 * least(round((5000 + power(u_amount, 3) * 1995000)::numeric, -2) / 1000000, 1) "
                               f"+ 20 * CASE c.tier WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.6 ELSE 0.3 END "
                               f"+ 30 * ({probability}) / 100.0 + 15 * {weighted_recency}) / 100)"),
            "source": f"({sql_array(SOURCES, 'text')})[1 + g % {len(SOURCES)}]",
            "expected_close_date": f"((CASE WHEN outcome = 'open' THEN o.created_at + (30 + g % 150) * interval '1 day' "
                                   f"ELSE end_at END) AT TIME ZONE '{tz}')::date",
            "stage_entered_at": "end_at", "closed_at": "CASE WHEN outcome = 'open' THEN NULL ELSE end_at END",
            "stalled_since": "CASE WHEN outcome = 'open' AND stalls[r] >= 0 AND end_at + stalls[r] * interval '1 day' < now() "
                             "THEN end_at + stalls[r] * interval '1 day' END",
            "last_activity_at": "la.ts",
            "loss_reason_id": "CASE WHEN outcome = 'lost' THEN (SELECT min(id) FROM opportunities_lossreason) + g % "
                              "greatest(1, (SELECT count(*) FROM opportunities_lossreason)) END",
            "lost_from_stage_id": "CASE WHEN outcome = 'lost' THEN open_ids[r] END",
            "external_id": f"'{MARK}o' || o.id", "version": "1", "currency": "'CNY'",
            "created_at": "o.created_at", "updated_at": "end_at",
        }
        source = f"""FROM bench_opp o JOIN leads_customer c ON c.id = o.customer_id
            LEFT JOIN (SELECT opportunity_id, max(done_at) AS ts FROM activities_activity
                       WHERE id > {a0} AND status = 'done' AND opportunity_id IS NOT NULL GROUP BY opportunity_id) la
              ON la.opportunity_id = o.id"""  # nosec B608
        sql, params = insert_sql(Opportunity, opp_exprs, source)
        self.run("opportunities", sql, params)
        change_exprs = {
            "opportunity_id": "id", "changed_by_id": "owner_id", "note": "''", "imported": "false",
            "action": ("CASE WHEN s = 1 THEN 'create' WHEN s = len AND outcome = 'won' THEN 'win' "
                       "WHEN s = len AND outcome = 'lost' THEN 'lose' "
                       "WHEN s > r AND (s - r) % 2 = 1 THEN 'move_back' ELSE 'advance' END"),
            "from_stage_id": f"CASE WHEN s = 1 THEN NULL ELSE {stage_id('s - 1')} END",
            "to_stage_id": stage_id("s"), "changed_at": at("s"),
            "seconds_in_previous_stage": f"CASE WHEN s = 1 THEN NULL ELSE floor(extract(epoch FROM {at('s')} - {at('s - 1')}))::bigint END",
        }
        sql, params = insert_sql(StageChange, change_exprs, "FROM bench_opp CROSS JOIN LATERAL generate_series(1, len) s")
        self.run("stage changes", sql, params)

        # contracts: the most recently won deals, signed when won; a line, two instalments, receipts
        n_contracts = o["contracts"]
        self.run("plan: contracts", f"""
            CREATE TEMP TABLE bench_contract ON COMMIT DROP AS
            SELECT {k0} + row_number() OVER (ORDER BY end_at DESC, id) AS id, id AS opportunity_id, customer_id,
                   owner_id, g, round((5000 + power(u_amount, 3) * 1995000)::numeric, -2) AS subtotal,
                   (end_at AT TIME ZONE '{tz}')::date AS signed_on, end_at, random() AS u
            FROM bench_opp WHERE outcome = 'won' ORDER BY end_at DESC, id LIMIT {n_contracts}""")  # nosec B608
        today = f"(now() AT TIME ZONE '{tz}')::date"
        status = (f"CASE WHEN signed_on > {today} - 90 THEN CASE WHEN u < 0.5 THEN 'signed' ELSE 'active' END "
                  f"WHEN signed_on + 365 < {today} THEN CASE WHEN u < 0.9 THEN 'completed' ELSE 'terminated' END "
                  "WHEN u < 0.9 THEN 'active' ELSE 'terminated' END")
        contract_exprs = {
            "id": "id", "number": "'BENCH-' || lpad(id::text, 7, '0')", "title": "'合同 ' || g",
            "customer_id": "customer_id", "opportunity_id": "opportunity_id", "owner_id": "owner_id",
            "created_by_id": "owner_id", "status": status, "currency": "'CNY'",
            "subtotal": "subtotal", "tax_amount": "round(subtotal * 0.13, 2)", "total_amount": "subtotal + round(subtotal * 0.13, 2)",
            "start_date": "signed_on", "end_date": "signed_on + 365", "payment_terms": "''", "terms": "''",
            "review_round": "1", "needs_admin_approval": "subtotal * 1.13 > 500000",
            "manager_approved_by_id": str(admin_id or "NULL"),
            "admin_approved_by_id": f"CASE WHEN subtotal * 1.13 > 500000 THEN {admin_id or 'NULL'} END",
            "submitted_at": "end_at - interval '3 days'", "approved_at": "end_at - interval '1 day'",
            "signed_on": "signed_on", "our_signatory": "'张伟'", "customer_signatory": "'王芳'",
            "activated_on": f"CASE WHEN ({status}) IN ('active', 'completed', 'terminated') THEN signed_on END",
            "completed_on": f"CASE WHEN ({status}) = 'completed' THEN signed_on + 365 END",
            "terminated_on": f"CASE WHEN ({status}) = 'terminated' THEN least({today}, signed_on + 200) END",
            "termination_reason": f"CASE WHEN ({status}) = 'terminated' THEN '客户预算取消' ELSE '' END",
            "version": "1", "created_at": "end_at - interval '5 days'", "updated_at": "end_at",
        }
        sql, params = insert_sql(Contract, contract_exprs, "FROM bench_contract")
        self.run("contracts", sql, params)
        line_exprs = {"contract_id": "id", "position": "1", "name": "'软件许可与实施服务'", "quantity": "1",
                      "unit_price": "subtotal", "discount_percent": "0", "tax_rate": "13"}
        sql, params = insert_sql(ContractLine, line_exprs, "FROM bench_contract")
        self.run("contract lines", sql, params)
        self.run("plan: instalments", f"""
            CREATE TEMP TABLE bench_instalment ON COMMIT DROP AS
            SELECT row_number() OVER () + {next_id(PaymentInstalment)} AS id, b.id AS contract_id, b.owner_id, pos,
                   CASE pos WHEN 1 THEN round(total / 2, 2) ELSE total - round(total / 2, 2) END AS amount,
                   b.signed_on + CASE pos WHEN 1 THEN 15 ELSE 120 END AS due_date, random() AS u, random() AS u_late
            FROM (SELECT *, subtotal + round(subtotal * 0.13, 2) AS total FROM bench_contract) b
            CROSS JOIN generate_series(1, 2) pos""")  # nosec B608
        paid = f"CASE WHEN due_date < {today} AND u < 0.85 THEN amount ELSE 0 END"
        sql, params = insert_sql(PaymentInstalment, {
            "id": "id", "contract_id": "contract_id", "position": "pos", "due_date": "due_date", "amount": "amount",
            "paid_amount": paid, "note": "''"}, "FROM bench_instalment")
        self.run("instalments", sql, params)
        sql, params = insert_sql(PaymentReceipt, {
            "instalment_id": "id", "contract_id": "contract_id", "amount": "amount", "recorded_by_id": "owner_id",
            "received_on": f"least({today}, due_date - 5 + floor(u_late * 25)::int)", "method": "'bank_transfer'",
            "reference": "'BR' || id", "created_at": f"(least({today}, due_date - 5 + floor(u_late * 25)::int))::timestamp AT TIME ZONE '{tz}'",
        }, f"FROM bench_instalment WHERE due_date < {today} AND u < 0.85")
        self.run("receipts", sql, params)

        # one creation row per seeded record in the history tables (the admin's history, the audit page)
        self.run("history: customers", history_sql(Customer, f"id > {c0}"))
        self.run("history: opportunities", history_sql(Opportunity, f"id > {o0}"))
        self.run("history: contracts", history_sql(Contract, f"id > {k0}"))
