from django.core.management.base import BaseCommand

from crm.periodic import sync_periodic_tasks


class Command(BaseCommand):
    help = "Write every app's periodic tasks into django-celery-beat's schedule (idempotent)."

    def handle(self, *args, **options):
        names = sync_periodic_tasks()
        self.stdout.write(f"{len(names)} periodic tasks: {', '.join(names)}")
