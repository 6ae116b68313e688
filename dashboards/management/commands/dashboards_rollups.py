"""`manage.py dashboards_rollups [--rebuild | --check]`: the dashboard's summary tables (dashboards/rollups.py).

Without options: whether the selectors read them (PostgreSQL, triggers installed for this version and
TIME_ZONE). --rebuild reinstalls the triggers and recounts every table from the source rows (after
loading data with triggers off, or to be sure); --check recounts inside a transaction that is rolled back
and reports the tables whose rows differ from what the triggers kept (exit status 1 if any).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from dashboards import rollups


class Command(BaseCommand):
    help = "Install, recount or check the dashboard's summary tables (PostgreSQL)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--rebuild", action="store_true", help="reinstall the triggers and recount every table")
        group.add_argument("--check", action="store_true", help="compare every table with a recount (rolled back)")

    def handle(self, *args, rebuild: bool, check: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The summary tables exist on PostgreSQL only; elsewhere the dashboards count the source rows.")
        if rebuild:
            rollups.install()
            rollups.rebuild()
            self.stdout.write(f"installed {rollups.signature()} and recounted {len(rollups.TABLES)} tables")
            return
        if check:
            differing = self.differing_tables()
            for table in differing:
                self.stdout.write(f"{table}: differs from a recount")
            if differing:
                raise CommandError(f"{len(differing)} summary tables differ; run --rebuild")
            self.stdout.write(f"all {len(rollups.TABLES)} summary tables equal a recount")
            return
        self.stdout.write(f"installed: {rollups.installed_signature()}; expected: {rollups.signature()}; "
                          f"read by the dashboards: {rollups.ready()}")

    def differing_tables(self) -> list[str]:
        with transaction.atomic():
            kept = rollups.snapshot()
            rollups.rebuild()
            recounted = rollups.snapshot()
            transaction.set_rollback(True)
        return [table for table in rollups.TABLES if kept[table] != recounted[table]]
