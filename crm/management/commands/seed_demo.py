"""Load the demo data set. Idempotent: running it twice leaves one copy.

Each app that has demo data names a seeder on its AppConfig (`demo_seeder = "leads.demo.seed"`);
they run in INSTALLED_APPS order, so customers exist before deals, deals before contracts.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Load demo users, teams and sales data (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2026, help="random seed for the generated data")

    def handle(self, *args, **options):
        for config in apps.get_app_configs():
            seeder_path = getattr(config, "demo_seeder", None)
            if not seeder_path:
                continue
            with transaction.atomic():
                summary = import_string(seeder_path)(seed=options["seed"])
            self.stdout.write(f"{config.label}: {summary}")
