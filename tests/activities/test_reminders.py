"""Our reminder sources, run through the notifications app's real scan: planned activities (lead minutes),
follow-ups, stalled deals, the Monday weekly review; each sent once, and nothing once it is moot."""

from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from activities import services
from activities.reminders import digest_times
from notifications import services as notifications
from notifications.models import Notification, NotificationPreference, Reminder, ReminderStatus
from tests.factories import CustomerFactory

from .factories import ActivityFactory, kind


def scan(now):
    result = notifications.reminders_scan(now=now)
    for channel in result["channels"]:
        notifications.deliveries_send(channel=channel, now=now)


def titles(user):
    return list(Notification.objects.filter(user=user).order_by("id").values_list("title", flat=True))


@pytest.mark.django_db
class TestPlannedActivityReminder:
    def test_reminded_lead_minutes_before_once(self, org):
        """Default 30 minutes before; a user who chose 60 is reminded 60 minutes before; once each."""
        NotificationPreference.objects.create(user=org.rep_a2, lead_minutes=60)
        now = timezone.now().replace(second=0, microsecond=0)
        at = now + timedelta(hours=2)
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a), subject="Call A", planned_at=at)
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a2), subject="Call B", planned_at=at)
        scan(now)
        assert not Notification.objects.exists()
        scan(at - timedelta(minutes=61))
        assert not Notification.objects.exists()
        scan(at - timedelta(minutes=60))
        assert titles(org.rep_a) == [] and len(titles(org.rep_a2)) == 1 and "Call B" in titles(org.rep_a2)[0]
        scan(at - timedelta(minutes=30))
        assert len(titles(org.rep_a)) == 1 and "Call A" in titles(org.rep_a)[0]
        scan(at - timedelta(minutes=29))
        scan(at)
        assert Notification.objects.count() == 2
        assert sorted(m.to[0] for m in mail.outbox) == ["rep_a2@example.com", "rep_a@example.com"]

    def test_done_or_cancelled_before_the_reminder_sends_nothing(self, org):
        now = timezone.now()
        customer = CustomerFactory(owner=org.rep_a)
        done = ActivityFactory(customer=customer, planned_at=now + timedelta(hours=1))
        cancelled = ActivityFactory(customer=customer, planned_at=now + timedelta(hours=1))
        scan(now)  # collected: reminders pending
        services.activity_complete(activity=done, by=org.rep_a)
        services.activity_cancel(activity=cancelled, by=org.rep_a)
        scan(now + timedelta(minutes=31))
        assert not Notification.objects.exists()
        assert set(Reminder.objects.values_list("status", flat=True)) == {ReminderStatus.CANCELLED}

    def test_rescheduled_activity_is_reminded_at_its_new_time(self, org):
        now = timezone.now()
        activity = ActivityFactory(customer=CustomerFactory(owner=org.rep_a), planned_at=now + timedelta(hours=1))
        scan(now)
        new_time = now + timedelta(hours=30)
        services.activity_reschedule(activity=activity, by=org.rep_a, planned_at=new_time)
        scan(now + timedelta(minutes=31))  # the old time: moot
        assert not Notification.objects.exists()
        scan(new_time - timedelta(minutes=30))
        assert Notification.objects.count() == 1
        assert timezone.localtime(new_time).strftime("%H:%M") in titles(org.rep_a)[0]

    def test_planned_a_few_minutes_ahead_is_reminded_at_once_not_late(self, org):
        now = timezone.now()
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a), planned_at=now + timedelta(minutes=10))
        scan(now + timedelta(seconds=30))
        notification = Notification.objects.get()
        assert not notification.late


@pytest.mark.django_db
class TestFollowUpReminder:
    def test_customer_reaching_the_follow_up_date(self, org):
        now = timezone.now()
        scan(now)  # start the source's cursor
        customer = CustomerFactory(owner=org.rep_a, name="ACME", next_follow_up_at=now + timedelta(hours=3))
        scan(now + timedelta(hours=2))
        assert not Notification.objects.exists()
        scan(now + timedelta(hours=3, minutes=1))
        assert len(titles(org.rep_a)) == 1 and "ACME" in titles(org.rep_a)[0]
        assert Notification.objects.get().link == customer.get_absolute_url()

    def test_a_touch_before_the_date_moves_it(self, org):
        """Logging a call before the follow-up date moves the date: nothing at the old date."""
        now = timezone.now()
        scan(now)
        customer = CustomerFactory(owner=org.rep_a, tier="A", next_follow_up_at=now + timedelta(hours=3))
        services.activity_log(by=org.rep_a, customer=customer, kind=kind("call"), subject="Call", done_at=now)
        scan(now + timedelta(hours=4))
        assert not Notification.objects.exists()


@pytest.mark.django_db
class TestStalledDealReminder:
    def test_owner_is_told_once(self, org, make_deal):
        now = timezone.now()
        customer = CustomerFactory(owner=org.rep_a)
        make_deal(customer, org.rep_a, stalled=True, title="Stuck")
        make_deal(customer, org.rep_a, title="Fine")
        scan(now)
        scan(now + timedelta(hours=1))
        assert len(titles(org.rep_a)) == 1 and "Stuck" in titles(org.rep_a)[0]
        assert not Notification.objects.get().late


@pytest.mark.django_db
class TestWeeklyReview:
    def test_digest_times(self):
        tz = timezone.get_current_timezone()
        monday_9 = datetime(2026, 3, 2, 9, 0, tzinfo=tz)
        assert digest_times(monday_9 - timedelta(days=3), monday_9 + timedelta(days=10)) == [
            monday_9, monday_9 + timedelta(days=7)]
        assert digest_times(monday_9 + timedelta(minutes=1), monday_9 + timedelta(days=1)) == []

    def test_each_manager_gets_it_monday_9_in_their_language(self, org):
        """Monday 09:00: each manager (not reps) gets the review of last week, once, by email in their
        language; the numbers are their team's."""
        tz = timezone.get_current_timezone()
        monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
        nine = datetime.combine(monday, time(9), tzinfo=tz)
        last_week = nine - timedelta(days=5)
        org.manager_a.language = "en"
        org.manager_a.save()
        customer = CustomerFactory(owner=org.rep_a)
        services.activity_log(by=org.rep_a, customer=customer, kind=kind("visit"), subject="Visit",
                              done_at=last_week)
        ActivityFactory(customer=customer, planned_at=last_week, subject="Missed call")
        scan(nine - timedelta(minutes=2))
        assert not Notification.objects.filter(verb="activities.weekly_review").exists()
        scan(nine + timedelta(minutes=1))
        scan(nine + timedelta(minutes=2))
        reviews = Notification.objects.filter(verb="activities.weekly_review")
        assert sorted(reviews.values_list("user__username", flat=True)) == ["director", "manager_a", "manager_b"]
        review = reviews.get(user=org.manager_a)
        assert review.title.startswith("Weekly review")
        last_monday = monday - timedelta(days=7)
        assert review.link == (
            f"{reverse('dashboards:review')}?month={last_monday:%Y-%m}&team={org.manager_a.team_id}"
        ), "the digest links to the team's monthly review"
        assert "1 done, 0 of 1 planned carried out" in review.body
        assert org.rep_a.display_name in review.body and org.rep_b.display_name not in review.body
        email = next(m for m in mail.outbox if m.to == ["manager_a@example.com"] and "Weekly review" in m.subject)
        html = email.alternatives[0][0]
        assert "<table" in html and "Done as planned" in html
