"""A real `celery worker` process against Redis, killed with SIGKILL in the middle of sending, then
restarted: every due reminder is delivered exactly once (in-app and email)."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from crm.celery import app
from notifications.models import Channel, Delivery, DeliveryStatus, Notification, Reminder
from notifications.tasks import reminders_scan
from tests.factories import UserFactory

from . import mailbox

ROOT = Path(__file__).resolve().parents[2]
REMINDERS = 120


def start_worker(log: Path) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.notifications.worker_settings",
        "DJANGO_ENV": "test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "MAILBOX_DELAY": "0.03",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", "worker", "--pool=prefork", "--concurrency=2",
         "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def emails_sent() -> int:
    return Delivery.objects.filter(channel=Channel.EMAIL, status=DeliveryStatus.SENT).count()


@pytest.fixture
def outbox():
    mailbox.create_table()
    yield
    mailbox.drop_table()


@pytest.fixture
def purged_queue():
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    yield
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_then_restarted_sends_each_reminder_once(outbox, purged_queue, tmp_path):
    users = [UserFactory(username=f"kill{i}") for i in range(40)]
    due = timezone.now() - timedelta(minutes=1)
    Reminder.objects.bulk_create(
        Reminder(source="tests.kill", key=f"r{n}", recipient=users[n % len(users)], due_at=due, event_at=due,
                 title=f"Reminder {n}", link="/")
        for n in range(REMINDERS)
    )
    log = tmp_path / "worker.log"
    worker = start_worker(log)
    try:
        reminders_scan.delay()  # the beat tick
        wait_for(lambda: emails_sent() >= 25, 90, "the first emails")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker: main process and pool children
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    sent_before = emails_sent()
    print("sent before the kill:", sent_before)
    assert sent_before < REMINDERS, "the kill did not land mid-batch"
    assert len(mailbox.sent()) == sent_before

    worker = start_worker(log)
    try:
        reminders_scan.delay()  # the next beat tick after the restart
        wait_for(lambda: emails_sent() == REMINDERS and Notification.objects.count() == REMINDERS, 120,
                 f"every reminder (log: {log})")
        time.sleep(1)  # anything still running would show up as a duplicate below
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)

    emails = mailbox.sent()
    assert len(emails) == REMINDERS
    assert len({message_id for message_id, _to in emails}) == REMINDERS
    assert Counter(Notification.objects.values_list("delivery__reminder_id", flat=True)) == Counter(
        {pk: 1 for pk in Reminder.objects.values_list("pk", flat=True)}
    )
    assert not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists()
    assert sent_before > 0
