"""Time the main pages on the current database: `manage.py bench_pages [--repeat 20]` (after bench_seed).

Each page is requested through Django's test client (force_login, in this process: server-side time
including the templates, no network) by an admin, a manager whose teams have sub-teams, and a rep;
after `--warmup` untimed requests, `--repeat` timed ones give the median and the 95th percentile
(nearest rank), and CaptureQueriesContext the number of SQL queries of the last one. The goal column
flags a page over its budget (lists and board 150 ms, other pages 300 ms, at p95).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, User
from leads.models import Customer

LIST_BUDGET_MS = 150
PAGE_BUDGET_MS = 300


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    params: dict
    budget_ms: int = PAGE_BUDGET_MS
    admin_only: bool = False
    managers_only: bool = False


PAGES = [
    Page("team dashboard, month", "/dashboards/", {"period": "month"}),
    Page("team dashboard, quarter", "/dashboards/", {"period": "quarter"}),
    Page("team dashboard, week", "/dashboards/", {"period": "week"}),
    Page("monthly review", "/dashboards/review/", {}),
    Page("team activities (week)", "/activities/team/", {}, managers_only=True),
    Page("kanban board", "/opportunities/", {}, LIST_BUDGET_MS),
    Page("opportunity list", "/opportunities/list/", {}, LIST_BUDGET_MS),
    Page("opportunity list, search", "/opportunities/list/", {"q": "精密机械", "status": "all"}, LIST_BUDGET_MS),
    Page("customer list", "/customers/", {}, LIST_BUDGET_MS),
    Page("customer list, search", "/customers/", {"q": "精密机械", "tier": "A"}, LIST_BUDGET_MS),
    Page("customer detail", "/customers/{customer}/", {}),
    Page("admin: opportunities", "/admin/opportunities/opportunity/", {}, admin_only=True),
    Page("admin: customers", "/admin/leads/customer/", {}, admin_only=True),
    Page("admin: activities", "/admin/activities/activity/", {}, admin_only=True),
    Page("admin: contracts", "/admin/contracts/contract/", {}, admin_only=True),
    Page("API: opportunities", "/api/v1/opportunities/", {}, LIST_BUDGET_MS),
    Page("API: customers", "/api/v1/customers/", {}, LIST_BUDGET_MS),
    Page("API: activities", "/api/v1/activities/", {}, LIST_BUDGET_MS),
    Page("API: contracts", "/api/v1/contracts/", {}, LIST_BUDGET_MS),
]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def bench_users() -> dict[str, User]:
    """The last admin (admin2 after bench_seed), the manager with the largest team subtree (director2),
    the last rep of that subtree: not the demo logins a load test would use at the same time."""
    from accounts.scope import managed_user_ids

    admin = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk").last()
    managers = list(User.objects.filter(role=Role.MANAGER, is_active=True).order_by("pk"))
    manager = max(managers, key=lambda u: (len(managed_user_ids(u) or ()), u.pk), default=None)
    rep_q = User.objects.filter(role=Role.REP, is_active=True).order_by("-pk")
    if manager is not None:
        rep_q = rep_q.filter(pk__in=sorted(managed_user_ids(manager) or ()))
    found = {"admin": admin, "manager": manager, "rep": rep_q.first()}
    return {role: user for role, user in found.items() if user is not None}


class Command(BaseCommand):
    help = "Time the dashboard, board, lists, a customer page, admin changelists and API lists per role."

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument("--warmup", type=int, default=2)
        parser.add_argument("--only", default="", help="only pages whose name contains this text")
        parser.add_argument("--sections", action="store_true",
                            help="instead of the pages: the time of each dashboard selector, per role and period")

    def handle(self, *args, repeat: int, warmup: int, only: str, sections: bool, **options):
        users = bench_users()
        if set(users) != {"admin", "manager", "rep"}:
            raise CommandError("Needs an admin, a manager and a rep: run seed_demo and bench_seed first.")
        if sections:
            self.time_sections(users, repeat)
            return
        import crm.wsgi  # noqa: F401  (loads the views and freezes the startup objects, as a gunicorn worker does)
        # the customer page: the rep's customer with the most activities (every role sees it)
        customer = (
            Customer.objects.filter(owner=users["rep"]).order_by("-last_contacted_at", "-pk").values_list("pk", flat=True).first()
        )
        self.stdout.write("users: " + ", ".join(f"{role} {u.username}" for role, u in users.items()))
        self.stdout.write(f"{'page':28} {'role':8} {'median ms':>9} {'p95 ms':>7} {'queries':>7} {'goal':>6}")
        failures = []
        for page in PAGES:
            if only and only not in page.name:
                continue
            for role, user in users.items():
                if (page.admin_only and role != "admin") or (page.managers_only and role == "rep"):
                    continue
                client = Client()
                client.force_login(user)
                path = page.path.format(customer=customer)
                for _ in range(warmup):
                    client.get(path, page.params, HTTP_HOST="127.0.0.1")
                times = []
                for _ in range(repeat):
                    for _attempt in range(3):
                        with CaptureQueriesContext(connection) as ctx:
                            started = time.perf_counter()
                            response = client.get(path, page.params, HTTP_HOST="127.0.0.1")
                            elapsed = (time.perf_counter() - started) * 1000
                        if response.status_code not in (302, 401):
                            break
                        # the session was lost: the password hash changed under us (a load test re-hashes
                        # its logins' passwords); sign in again with the current hash and repeat
                        user.refresh_from_db()
                        client.force_login(user)
                    times.append(elapsed)
                    if response.status_code != 200:
                        failures.append(f"{page.name} as {role}: HTTP {response.status_code}")
                        break
                p95 = percentile(times, 95)
                goal = "ok" if p95 <= page.budget_ms else f">{page.budget_ms}"
                self.stdout.write(
                    f"{page.name:28} {role:8} {statistics.median(times):9.1f} {p95:7.1f} "
                    f"{len(ctx.captured_queries):7} {goal:>6}"
                )
        if failures:
            raise CommandError("; ".join(failures))

    def time_sections(self, users: dict[str, User], repeat: int) -> None:
        """The dashboard's selectors one by one (the median over `repeat` builds of every section): where
        a cold dashboard spends its time. A selector that calls another includes the other's time."""
        from dashboards import reports
        from dashboards import selectors as s
        from opportunities.selectors import pipeline_get

        names = ["target_progress", "rep_actuals", "pipeline_by_stage", "forecast", "conversion_funnel",
                 "conversion_by_source", "conversion_by_rep", "sales_cycle", "sales_cycle_trend", "time_in_stage",
                 "stalled_deals", "activity_stats", "overdue_follow_ups", "aftersales_summary", "repurchase",
                 "revenue_trend", "tier_distribution", "tier_movement", "scope_users"]
        originals = {name: getattr(s, name) for name in names}
        spent: dict[str, list[float]] = {}

        def timed(name: str, function):
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    spent.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            return wrapper

        try:
            for name, function in originals.items():
                setattr(s, name, timed(name, function))
            for kind in ("month", "quarter", "week"):
                for role, user in users.items():
                    scope = s.dashboard_scope(user=user)
                    period = s.period_for(kind)
                    spent.clear()
                    totals = []
                    for _ in range(repeat):
                        started = time.perf_counter()
                        reports.build_sections(user=user, scope=scope, period=period, pipeline=pipeline_get(None))
                        totals.append((time.perf_counter() - started) * 1000)
                    self.stdout.write(f"== {kind}, {role} {user.username}: all sections median "
                                      f"{statistics.median(totals):.0f} ms")
                    for name, times in sorted(spent.items(), key=lambda kv: -statistics.median(kv[1])):
                        self.stdout.write(f"   {name:24} {statistics.median(times):8.1f} ms")
        finally:
            for name, function in originals.items():
                setattr(s, name, function)
