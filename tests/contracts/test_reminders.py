"""Overdue instalments remind their owner through the notifications app: the day after the due date at
09:00 and weekly while unpaid, each exactly once, caught up after an outage, cancelled once paid."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from contracts import reminders, services
from contracts.models import ContractStatus
from notifications import services as notification_services
from notifications.models import Notification, Reminder, ReminderStatus

from .factories import days, make_contract, to_status

pytestmark = pytest.mark.django_db

SOURCE = "contracts.instalment_overdue"


def at(day, hour=9, minute=5):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _signed(org, due_offsets, owner=None):
    """A signed contract with one 100.00 instalment due `offset` days from today per entry."""
    owner = owner or org.rep_a
    contract = make_contract(owner, amount=str(100 * len(due_offsets)),
                             instalments=[{"due_date": days(d), "amount": Decimal("100")} for d in due_offsets])
    return to_status(contract, ContractStatus.SIGNED, org)


def _keys():
    return sorted(Reminder.objects.filter(source=SOURCE).values_list("key", flat=True))


class TestOverdueCollect:
    def test_the_day_after_due_then_weekly(self, org):
        """At 09:05 today: instalments due yesterday (week 0) and 8 days ago (week 1) are reminded;
        due today, 2 days ago or in the future are not."""
        contract = _signed(org, [-1, -8, -2, 0, 5])
        by_due = {i.due_date: i for i in contract.instalments.all()}
        notification_services.sources_collect(now=at(days(0)))
        assert _keys() == sorted([f"instalment-{by_due[days(-1)].pk}-0", f"instalment-{by_due[days(-8)].pk}-1"])
        reminder = Reminder.objects.get(key=f"instalment-{by_due[days(-1)].pk}-0")
        assert reminder.recipient == org.rep_a
        assert reminder.due_at == timezone.make_aware(datetime.combine(days(0), time(9, 0)))

    def test_delivered_once_in_app(self, org):
        contract = _signed(org, [-1])
        for minute in (5, 6, 30):
            notification_services.reminders_scan(now=at(days(0), minute=minute))
            notification_services.deliveries_send(channel="in_app", now=at(days(0), minute=minute))
        notes = Notification.objects.filter(user=org.rep_a, verb=SOURCE)
        assert notes.count() == 1
        note = notes.get()
        assert contract.number in note.title and "#payments" in note.link

    def test_catch_up_after_an_outage(self, org):
        """No scan ran for three days: the next one raises the reminders of the days it missed."""
        contract = _signed(org, [-4, -3, -2, -1])
        notification_services.sources_collect(now=at(days(-3), hour=10, minute=0))
        assert len(_keys()) == 1  # due 4 days ago: reminded 3 days ago at 09:00
        notification_services.sources_collect(now=at(days(0)))
        assert _keys() == sorted(f"instalment-{i.pk}-0" for i in contract.instalments.all())

    def test_paid_or_terminated_before_delivery_is_cancelled(self, org):
        paid = _signed(org, [-1])
        terminated = _signed(org, [-1])
        notification_services.sources_collect(now=at(days(0)))
        services.payment_receipt_record(contract=paid, instalment=paid.instalments.get(), user=org.rep_a,
                                        received_on=days(0), amount=Decimal("100"), method="cash")
        services.contract_terminate(contract=terminated, user=org.manager_a, reason="客户破产")
        notification_services.reminders_dispatch(now=at(days(0)))
        assert set(Reminder.objects.filter(source=SOURCE).values_list("status", flat=True)) == {
            ReminderStatus.CANCELLED}
        assert not Notification.objects.exists()

    def test_partly_paid_still_reminded_for_the_rest(self, org):
        contract = _signed(org, [-1])
        services.payment_receipt_record(contract=contract, instalment=contract.instalments.get(), user=org.rep_a,
                                        received_on=days(0), amount=Decimal("30"), method="cash")
        notification_services.sources_collect(now=at(days(0)))
        reminder = Reminder.objects.get(source=SOURCE)
        with translation.override("en"):
            message = reminders.overdue_render(reminder)
        assert "70.00" in message["body"]

    def test_message_in_the_recipients_language(self, org):
        _signed(org, [-1])
        notification_services.sources_collect(now=at(days(0)))
        with translation.override("zh-hans"):
            message = reminders.overdue_render(Reminder.objects.get(source=SOURCE))
        assert message["title"].startswith("回款逾期")

    def test_no_query_outside_the_reminder_time(self, org, django_assert_num_queries):
        """The scan runs every minute: windows without 09:00 cost nothing."""
        _signed(org, [-1])
        with django_assert_num_queries(0):
            assert reminders.overdue_collect(start=at(days(0), 10, 0), end=at(days(0), 10, 11)) == []

    def test_drafts_are_not_reminded(self, org):
        make_contract(org.rep_a, instalments=[{"due_date": days(-1), "amount": Decimal("1000.00")}])
        assert reminders.overdue_collect(start=at(days(0), 8, 0), end=at(days(0), 9, 30)) == []

    def test_reminder_days(self):
        start = at(days(0), 8, 55)
        assert reminders.reminder_days(start, start + timedelta(minutes=4)) == []
        assert reminders.reminder_days(start, start + timedelta(minutes=5)) == [days(0)]
        assert reminders.reminder_days(start, start + timedelta(days=2, minutes=5)) == [days(0), days(1), days(2)]
