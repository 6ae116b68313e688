"""The reminder mechanism: scheduling, claiming, fan-out, sending, retries, catch-up."""

import smtplib
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from notifications import services
from notifications.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationPreference,
    Reminder,
    ReminderStatus,
    SourceCursor,
    TeamWebhook,
)
from notifications.tasks import deliveries_send, reminders_scan
from tests.factories import UserFactory

from .factories import due_reminders


def run_scan(now=None):
    """One beat tick: collect + dispatch, then every channel's sender, in this process."""
    result = services.reminders_scan(now=now)
    for channel in result["channels"]:
        services.deliveries_send(channel=channel, now=now)
    return result


@pytest.mark.django_db
class TestReminderSchedule:
    def test_same_due_time_is_sent_once(self, org):
        """Scheduling the same (source, key, recipient, due time) again after it was sent sends nothing."""
        due = timezone.now() - timedelta(minutes=1)
        services.reminder_schedule(source="s", key="k", recipient=org.rep_a, due_at=due, title="Call")
        run_scan()
        services.reminder_schedule(source="s", key="k", recipient=org.rep_a, due_at=due, title="Call")
        run_scan()
        assert Notification.objects.filter(user=org.rep_a).count() == 1
        assert len(mail.outbox) == 1

    def test_a_new_due_time_is_a_new_reminder(self, org):
        """Moving the reminder to a new time makes it pending again and it is sent again then."""
        now = timezone.now()
        services.reminder_schedule(source="s", key="k", recipient=org.rep_a, due_at=now - timedelta(hours=1), title="A")
        run_scan(now)
        reminder = services.reminder_schedule(
            source="s", key="k", recipient=org.rep_a, due_at=now + timedelta(minutes=5), title="B"
        )
        assert reminder.status == ReminderStatus.PENDING
        run_scan(now)
        assert Notification.objects.filter(user=org.rep_a).count() == 1  # not due yet
        run_scan(now + timedelta(minutes=6))
        assert list(Notification.objects.filter(user=org.rep_a).values_list("title", flat=True)) == ["B", "A"]

    def test_cancelled_reminder_is_not_sent(self, org):
        due = timezone.now() - timedelta(minutes=1)
        services.reminder_schedule(source="s", key="k", recipient=org.rep_a, due_at=due, title="Call")
        assert services.reminder_cancel(source="s", key="k") == 1
        run_scan()
        assert not Notification.objects.exists()
        assert not mail.outbox

    def test_notify_delivers_right_after_commit(self, org, eager_celery, django_capture_on_commit_callbacks):
        """`notify` (used by other apps for events) delivers without waiting for the minute scan."""
        with django_capture_on_commit_callbacks(execute=True):
            services.notify(source="aftersales", key="t-1", recipient=org.rep_a, title="Ticket assigned")
        assert Notification.objects.get(user=org.rep_a).title == "Ticket assigned"
        assert mail.outbox[0].to == ["rep_a@example.com"]
        with django_capture_on_commit_callbacks(execute=True):
            services.notify(source="aftersales", key="t-1", recipient=org.rep_a, title="Ticket assigned")
        assert Notification.objects.filter(user=org.rep_a).count() == 1


@pytest.mark.django_db
class TestDispatch:
    def test_one_delivery_per_wanted_channel(self, org):
        """In-app and email by default; the webhook only where the team has one; nothing a user turned off."""
        TeamWebhook.objects.create(team=org.team_b, url="http://127.0.0.1:9/hook")
        NotificationPreference.objects.create(user=org.rep_a2, email=False)
        no_email = UserFactory(username="noemail", team=org.team_a, email="")
        due_reminders([org.rep_a, org.rep_a2, org.rep_b, no_email])
        assert services.reminders_dispatch() == 4
        channels = {
            user.username: set(Delivery.objects.filter(reminder__recipient=user).values_list("channel", flat=True))
            for user in (org.rep_a, org.rep_a2, org.rep_b, no_email)
        }
        assert channels == {
            "rep_a": {Channel.IN_APP, Channel.EMAIL},
            "rep_a2": {Channel.IN_APP},
            "rep_b": {Channel.IN_APP, Channel.EMAIL, Channel.WEBHOOK},
            "noemail": {Channel.IN_APP},
        }

    def test_future_reminders_wait(self, org):
        due_reminders([org.rep_a], due_at=timezone.now() + timedelta(minutes=10))
        assert services.reminders_dispatch() == 0
        assert services.reminders_dispatch(now=timezone.now() + timedelta(minutes=11)) == 1

    def test_moot_reminder_is_cancelled(self, org, test_source):
        """A source whose render says "no longer relevant" (activity done) gets nothing sent."""
        test_source.moot.add("gone")
        services.reminder_schedule(source=test_source.key, key="gone", recipient=org.rep_a,
                                   due_at=timezone.now() - timedelta(minutes=1))
        run_scan()
        assert Reminder.objects.get(key="gone").status == ReminderStatus.CANCELLED
        assert not Delivery.objects.exists()

    def test_inactive_recipient_gets_nothing(self, org):
        org.rep_a.is_active = False
        org.rep_a.save()
        due_reminders([org.rep_a])
        run_scan()
        assert not Delivery.objects.exists()


@pytest.mark.django_db
class TestSourceCollect:
    def test_lead_minutes_preference(self, org, test_source):
        """A lead source is due its recipient's lead minutes before the event (default 30)."""
        from notifications.registry import register_source

        register_source(test_source.key, collect=test_source.collect, render=test_source.render, lead=True)
        NotificationPreference.objects.create(user=org.rep_b, lead_minutes=90)
        now = timezone.now()
        event = now + timedelta(hours=2)
        test_source.items = [
            {"key": "a", "recipient_id": org.rep_a.pk, "at": event},
            {"key": "b", "recipient_id": org.rep_b.pk, "at": event},
        ]
        services.sources_collect(now=now)
        due = dict(Reminder.objects.values_list("key", "due_at"))
        assert due == {"a": event - timedelta(minutes=30), "b": event - timedelta(minutes=90)}

    def test_collect_twice_is_idempotent(self, org, test_source):
        now = timezone.now()
        test_source.items = [{"key": "a", "recipient_id": org.rep_a.pk, "at": now - timedelta(minutes=2)}]
        run_scan(now)
        run_scan(now + timedelta(minutes=1))
        assert Reminder.objects.count() == 1
        assert Notification.objects.count() == 1

    def test_failing_source_does_not_stop_the_others(self, org, test_source):
        from notifications.registry import register_source, unregister_source

        def broken(*, start, end):
            raise RuntimeError("boom")

        register_source("tests.broken", collect=broken)
        try:
            now = timezone.now()
            test_source.items = [{"key": "a", "recipient_id": org.rep_a.pk, "at": now - timedelta(minutes=2)}]
            result = services.sources_collect(now=now)
            assert result["tests.broken"] == -1 and result[test_source.key] == 1
            assert not SourceCursor.objects.filter(source="tests.broken").exists()
        finally:
            unregister_source("tests.broken")


@pytest.mark.django_db
class TestCatchUp:
    def test_everything_due_during_an_outage_is_sent_late(self, org, test_source):
        """Workers down for three hours: on the first scan after, every reminder that fell due meanwhile
        is sent once, and marked late; one that was due just now is not late."""
        before = timezone.now() - timedelta(hours=3)
        run_scan(before)  # the last scan before the outage: sets the source's cursor
        now = timezone.now()
        test_source.items = [
            {"key": f"outage-{i}", "recipient_id": org.rep_a.pk, "at": before + timedelta(minutes=20 * i)}
            for i in range(1, 8)
        ] + [{"key": "fresh", "recipient_id": org.rep_a.pk, "at": now - timedelta(minutes=1)}]
        due_reminders([org.rep_b], due_at=before + timedelta(minutes=30))  # a directly scheduled one
        run_scan(now)
        notifications = Notification.objects.filter(user=org.rep_a)
        assert notifications.count() == 8
        assert set(notifications.filter(late=True).values_list("title", flat=True)) == {
            f"Test reminder outage-{i}" for i in range(1, 8)
        }
        assert Notification.objects.get(user=org.rep_b).late
        assert not Delivery.objects.filter(status=DeliveryStatus.PENDING).exists()
        assert Delivery.objects.filter(late=True).count() == 7 * 2 + 2
        late_mail = [m for m in mail.outbox if "outage-1" in m.subject]
        assert len(late_mail) == 1 and late_mail[0].subject.startswith("【延迟】")
        run_scan(now + timedelta(minutes=1))
        assert Notification.objects.count() == 9  # nothing twice


class FakeSMTP:
    """Stands in for smtplib.SMTP (the only thing mocked): refuses mail to `refused` addresses while down."""

    down = False
    refused: set[str] = set()
    sent: list[tuple[str, list[str]]] = []

    def __init__(self, host="", port=0, **kwargs):
        if FakeSMTP.down:
            raise ConnectionRefusedError("SMTP server down")

    def ehlo_or_helo_if_needed(self):
        pass

    def login(self, *args):
        pass

    def starttls(self, *args, **kwargs):
        pass

    def sendmail(self, from_addr, to_addrs, msg, **kwargs):
        if set(to_addrs) & FakeSMTP.refused:
            raise smtplib.SMTPRecipientsRefused({addr: (450, b"mailbox busy") for addr in to_addrs})
        FakeSMTP.sent.append((from_addr, list(to_addrs)))
        return {}

    def quit(self):
        pass

    def close(self):
        pass


@pytest.fixture
def fake_smtp(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    FakeSMTP.down, FakeSMTP.refused, FakeSMTP.sent = False, set(), []
    with mock.patch("smtplib.SMTP", FakeSMTP):
        yield FakeSMTP


@pytest.mark.django_db
class TestFailingSmtp:
    def test_failing_address_is_retried_without_holding_up_the_others(self, org, fake_smtp):
        """One mailbox refuses: its email retries with back-off; the other emails and every in-app
        notification go out at once; when the mailbox accepts again, the retry delivers it once."""
        fake_smtp.refused = {"rep_a@example.com"}
        now = timezone.now()
        due_reminders([org.rep_a, org.rep_a2, org.rep_b], due_at=now - timedelta(minutes=1))
        run_scan(now)
        assert sorted(to[0] for _f, to in fake_smtp.sent) == ["rep_a2@example.com", "rep_b@example.com"]
        assert Notification.objects.count() == 3
        failing = Delivery.objects.get(channel=Channel.EMAIL, reminder__recipient=org.rep_a)
        assert failing.status == DeliveryStatus.PENDING and failing.attempts == 1
        assert failing.next_attempt_at == now + timedelta(minutes=1)
        assert "SMTPRecipientsRefused" in failing.last_error

        fake_smtp.refused = set()
        run_scan(now + timedelta(seconds=30))  # back-off not over: not retried yet
        assert len(fake_smtp.sent) == 2
        run_scan(now + timedelta(minutes=1))
        assert sorted(to[0] for _f, to in fake_smtp.sent) == [
            "rep_a2@example.com", "rep_a@example.com", "rep_b@example.com"
        ]
        failing.refresh_from_db()
        assert failing.status == DeliveryStatus.SENT
        run_scan(now + timedelta(minutes=10))
        assert len(fake_smtp.sent) == 3

    def test_server_down_backs_off_then_gives_up_visibly(self, org, fake_smtp, settings):
        """SMTP down for good: attempts back off exponentially, then the delivery is failed and listed
        for admins; the in-app notification was delivered all along."""
        settings.NOTIFICATIONS_MAX_ATTEMPTS = 4
        fake_smtp.down = True
        now = timezone.now()
        due_reminders([org.rep_a], due_at=now)
        delivery_times = []
        at = now
        for _ in range(4):
            run_scan(at)
            email = Delivery.objects.get(channel=Channel.EMAIL)
            delivery_times.append(email.next_attempt_at - at)
            at = email.next_attempt_at
        assert delivery_times[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
        email.refresh_from_db()
        assert email.status == DeliveryStatus.FAILED and email.attempts == 4
        assert Notification.objects.filter(user=org.rep_a).count() == 1
        from notifications.selectors import failing_deliveries

        assert list(failing_deliveries()) == [email]

    def test_admin_sees_and_retries_failed_deliveries(self, org, fake_smtp, settings, client):
        settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
        fake_smtp.down = True
        due_reminders([org.rep_a])
        run_scan()
        client.force_login(org.admin)
        response = client.get("/admin/notifications/faileddelivery/")
        assert response.status_code == 200
        assert "SMTP server down" in response.content.decode()
        email = Delivery.objects.get(channel=Channel.EMAIL)
        fake_smtp.down = False
        response = client.post(
            "/admin/notifications/faileddelivery/",
            {"action": "retry_deliveries", "_selected_action": [email.pk]},
        )
        assert response.status_code == 302
        run_scan()
        email.refresh_from_db()
        assert email.status == DeliveryStatus.SENT and len(fake_smtp.sent) == 1


@pytest.mark.django_db
class TestTaskRunTwice:
    def test_send_task_executed_twice_sends_one_email(self, org, eager_celery):
        """The same Celery task delivered twice (a broker redelivery) sends one email."""
        due_reminders([org.rep_a])
        services.reminders_dispatch()
        deliveries_send.apply(args=["email"])
        deliveries_send.apply(args=["email"])
        assert len(mail.outbox) == 1

    def test_scan_task_executed_twice_sends_one_email(self, org, eager_celery):
        due_reminders([org.rep_a])
        reminders_scan.apply()
        reminders_scan.apply()
        assert len(mail.outbox) == 1
        assert Notification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
class TestConcurrentScans:
    def test_two_scans_at_once_deliver_each_reminder_once(self, org):
        """Two beats (threads with their own PostgreSQL connections) scan and send at the same moment:
        every reminder is delivered exactly once per channel."""
        users = [UserFactory(username=f"load{i}", team=org.team_a) for i in range(40)]
        due_reminders(users)
        barrier = threading.Barrier(2)
        errors = []

        def beat():
            try:
                barrier.wait(timeout=10)
                run_scan()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        assert Notification.objects.count() == 40
        assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)
        assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 80
