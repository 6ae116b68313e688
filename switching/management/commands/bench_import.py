"""Time the import at size: `manage.py bench_import [--deals 100000] [--activities 1000000]`.

Writes synthetic files of the old system's shape (customers, one contact each, deals with old stage
names and history dates, activities with old kind names) into `--dir`, then imports them in order with
`crm_import` (the same services as the wizard: upload, preview, run) as `--user`, and prints the time
of each step and the rows per second. Run it on a scratch database (`scripts/bench.sh --import`); the
test suite runs it at a small size. The figures go to docs/benchmarks.md ("## Import").
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, User
from activities.defaults import ensure_defaults
from opportunities.services import pipeline_ensure_default

OLD_STAGES = ["prospecting", "qualification", "proposal_sent", "negotiating", "closed_won", "closed_lost"]
STAGE_MAP = "prospecting=lead,qualification=needs_analysis,proposal_sent=proposal,negotiating=negotiation,closed_won=won,closed_lost=lost"
OLD_KINDS = ["Phone", "Visit", "Meeting", "E-mail", "WeChat", "Demo"]
KIND_MAP = "Phone=call,Visit=visit,Meeting=meeting,E-mail=email,WeChat=wechat,Demo=demo"


class Command(BaseCommand):
    help = "Generate old-system files (deals, activities, their customers) and time their import."

    def add_arguments(self, parser):
        parser.add_argument("--deals", type=int, default=100_000)
        parser.add_argument("--activities", type=int, default=1_000_000)
        parser.add_argument("--deals-per-customer", type=int, default=5)
        parser.add_argument("--user", default="admin")
        parser.add_argument("--dir", default="")
        parser.add_argument("--seed", type=int, default=11)

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']!r} (run seed_demo first)")
        pipeline_ensure_default()
        ensure_defaults()
        owners = list(User.objects.filter(is_active=True, role=Role.REP).values_list("username", flat=True)) or [user.username]
        folder = Path(options["dir"] or tempfile.mkdtemp(prefix="crm-import-bench-"))
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        files = self._generate(folder, options["deals"], options["activities"], options["deals_per_customer"], owners,
                               random.Random(options["seed"]))
        self.stdout.write(f"generated {', '.join(f'{k}: {n:,}' for k, (_p, n) in files.items())} rows in "
                          f"{time.monotonic() - started:.1f} s under {folder}")
        total = 0.0
        for kind, (path, count) in files.items():
            started = time.monotonic()
            extra = {}
            if kind == "opportunities":
                extra["stage_map"] = STAGE_MAP
            if kind == "activities":
                extra["kind_map"] = KIND_MAP
            call_command("crm_import", kind, str(path), user=user.username, quiet_errors=True, stdout=self.stdout, **extra)
            seconds = time.monotonic() - started
            total += seconds
            self.stdout.write(f"== {kind}: {count:,} rows in {seconds:.1f} s ({count / max(seconds, 0.001):,.0f} rows/s)")
        self.stdout.write(f"== total import time {total:.1f} s")

    def _generate(self, folder: Path, deals: int, activities: int, per_customer: int, owners: list[str],
                  rng: random.Random) -> dict[str, tuple[Path, int]]:
        customers = max(1, deals // max(1, per_customer))
        base = datetime(2023, 1, 1, 9, 0)  # noqa: DTZ001 - local wall-clock times written into the file
        files = {}

        def write(kind: str, header: list[str], rows) -> None:
            path = folder / f"{kind}.csv"
            count = 0
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                for row in rows:
                    writer.writerow(row)
                    count += 1
            files[kind] = (path, count)

        write("customers", ["External ID", "客户名称", "Owner", "Phone", "Created at", "Industry", "来源渠道"], (
            [f"C{i}", f"Bench 客户 {i} 有限公司", owners[i % len(owners)], f"138{i:08d}",
             (base + timedelta(days=i % 365)).strftime("%Y-%m-%d"), "software", "referral"]
            for i in range(customers)
        ))
        write("contacts", ["external_id", "customer_external_id", "姓名", "Phone", "Email"], (
            [f"P{i}", f"C{i}", f"联系人 {i}", f"139{i:08d}", f"contact{i}@example.com"] for i in range(customers)
        ))
        deal_dates = []

        def deal_rows():
            for i in range(deals):
                created = base + timedelta(days=rng.randrange(0, 600), hours=rng.randrange(0, 9))
                stage = rng.choice(OLD_STAGES)
                closed = stage.startswith("closed")
                close = created + timedelta(days=rng.randrange(5, 120))
                deal_dates.append(created)
                yield [f"D{i}", f"C{i % customers}", f"Bench deal {i}", stage, f"{rng.randrange(1, 500) * 1000}.00",
                       created.strftime("%Y-%m-%d %H:%M"), close.strftime("%Y-%m-%d") if closed or rng.random() < 0.5 else "",
                       owners[i % len(owners)], rng.choice(["website", "referral", "cold_call", "partner"])]

        write("opportunities", ["External ID", "Customer external ID", "商机名称", "Stage", "Amount", "创建时间",
                                "Close date", "Owner", "Source"], deal_rows())

        def activity_rows():
            for i in range(activities):
                deal = i % max(1, deals)
                when = deal_dates[deal] + timedelta(days=rng.randrange(0, 60), minutes=rng.randrange(0, 600))
                yield [f"A{i}", f"C{deal % customers}", f"D{deal}", rng.choice(OLD_KINDS),
                       when.strftime("%Y-%m-%d %H:%M"), rng.choice(["positive", "neutral", "negative", ""]),
                       owners[deal % len(owners)], f"Bench activity {i}"]

        write("activities", ["External ID", "客户外部编号", "商机外部编号", "类型", "时间", "结果", "负责人", "主题"],
              activity_rows())
        return files
