"""Benchmark the customer list at scale: `manage.py bench_customers --count 200000`.

Inserts synthetic customers (external id `bench-<n>`, spread over the existing reps and teams) with one
SQL statement on PostgreSQL, then times the list page as an admin, a manager and a rep for the default
sort, each sort, the filters and the search box, and prints the time and the number of queries of each.
`--cleanup` deletes the synthetic rows afterwards. Run it on a scratch database, never in production.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, User

CASES = [
    {}, {"sort": "name"}, {"sort": "follow_up"}, {"sort": "contacted"}, {"overdue": "on"}, {"needs_update": "on"},
    {"tier": "A"}, {"owner": "pool"}, {"q": "bench 12345"}, {"q": "13900012345"}, {"q": "c777@bench"}, {"page": "50"},
]

INSERT = """
INSERT INTO leads_customer (name, customer_type, status, tier, industry, region, address, size, website, phone, email,
  needs, requirements, owner_id, team_id, tier_source, tier_reason, tier_explanation, name_key, search_text, version,
  external_id, created_at, updated_at, next_follow_up_at, profile_reviewed_at, last_contacted_at)
SELECT 'Bench 公司 ' || g, 'company', (ARRAY['lead','prospect','customer','inactive'])[1 + g % 4],
  (ARRAY['A','B','C'])[1 + g % 3], '', '', '', '', '', '+86139' || lpad(g::text, 8, '0'), 'c' || g || '@bench.cn', '', '',
  CASE WHEN g % 5 = 0 THEN NULL ELSE (%(reps)s)[1 + g %% %(nreps)s] END, NULL, 'rules', '', '[]', 'bench公司' || g,
  lower('Bench 公司 ' || g || ' | +86139' || lpad(g::text, 8, '0') || ' | 139' || lpad(g::text, 8, '0') || ' | c' || g || '@bench.cn'),
  1, 'bench-' || g, now() - (g || ' minutes')::interval, now() - (g || ' seconds')::interval,
  now() + ((g %% 60 - 30) || ' days')::interval, now() - ((g %% 200) || ' days')::interval,
  CASE WHEN g %% 3 = 0 THEN NULL ELSE now() - ((g %% 90) || ' days')::interval END
FROM generate_series(1, %(count)s) g
"""


class Command(BaseCommand):
    help = "Insert N synthetic customers and time the customer list page (PostgreSQL only)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=200000)
        parser.add_argument("--cleanup", action="store_true", help="delete the synthetic customers at the end")

    def handle(self, *args, count: int, cleanup: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL (DATABASE_URL).")
        reps = list(User.objects.filter(role=Role.REP, is_active=True, team__isnull=False).values_list("pk", flat=True))
        if not reps:
            raise CommandError("No reps with a team: run seed_demo first.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM leads_customer WHERE external_id LIKE 'bench-%%'")
            if cursor.fetchone()[0] == 0:
                started = time.perf_counter()
                sql = INSERT.replace("%(reps)s", "ARRAY[" + ",".join(map(str, reps)) + "]::bigint[]")
                sql = sql.replace("%(nreps)s", str(len(reps))).replace("%(count)s", str(int(count)))
                cursor.execute(sql.replace("%%", "%"))
                cursor.execute(
                    "UPDATE leads_customer c SET team_id = u.team_id FROM accounts_user u "
                    "WHERE c.owner_id = u.id AND c.team_id IS NULL AND c.external_id LIKE 'bench-%'"
                )
                cursor.execute(
                    "UPDATE leads_customer SET team_id = (SELECT min(id) FROM accounts_team) "
                    "WHERE team_id IS NULL AND external_id LIKE 'bench-%'"
                )
                self.stdout.write(f"inserted {count} customers in {time.perf_counter() - started:.1f}s")
            cursor.execute("VACUUM ANALYZE leads_customer" if not connection.in_atomic_block else "ANALYZE leads_customer")
        users = [User.objects.filter(role=role, is_active=True).order_by("pk").first() for role in (Role.ADMIN, Role.MANAGER, Role.REP)]
        for user in filter(None, users):
            client = Client()
            client.force_login(user)
            client.get("/customers/", HTTP_HOST="127.0.0.1")  # warm-up
            for params in CASES:
                with CaptureQueriesContext(connection) as ctx:
                    started = time.perf_counter()
                    response = client.get("/customers/", params, HTTP_HOST="127.0.0.1")
                    elapsed = (time.perf_counter() - started) * 1000
                self.stdout.write(
                    f"{user.role:8} {user.username:10} {str(params):30} {response.status_code} "
                    f"{elapsed:7.1f} ms {len(ctx.captured_queries):3} queries"
                )
        if cleanup:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM leads_customer WHERE external_id LIKE 'bench-%'")
            self.stdout.write("synthetic customers deleted")
