"""contracts.reminders: overdue instalments raise one reminder each (then again only after a week),
never twice when scans overlap."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from contracts import reminders, services
from contracts.models import ContractStatus, PaymentInstalment

from .factories import days, make_contract, to_status

pytestmark = pytest.mark.django_db


def _signed(org, plan):
    total = sum((Decimal(a) for _, a in plan), Decimal("0"))
    contract = make_contract(org.rep_a, amount=str(total),
                             instalments=[{"due_date": days(d), "amount": Decimal(a)} for d, a in plan])
    return to_status(contract, ContractStatus.SIGNED, org)


class TestInstalmentsOverdueRemind:
    def test_one_reminder_per_overdue_instalment(self, org):
        contract = _signed(org, [(-5, "100"), (-1, "200"), (3, "300")])
        sent = []
        today = timezone.localdate()
        assert reminders.instalments_overdue_remind(today=today, send=sent.append) == 2
        assert {r.recipient_id for r in sent} == {org.rep_a.pk}
        assert [r.outstanding for r in sorted(sent, key=lambda r: r.due_date)] == [Decimal("100.00"),
                                                                                  Decimal("200.00")]
        assert all(r.contract_number == contract.number and "#payments" in r.url for r in sent)
        assert contract.number in sent[0].title

    def test_not_again_the_same_week_then_again(self, org):
        _signed(org, [(-5, "100")])
        sent = []
        today = timezone.localdate()
        reminders.instalments_overdue_remind(today=today, send=sent.append)
        reminders.instalments_overdue_remind(today=today, send=sent.append)
        reminders.instalments_overdue_remind(today=today + timedelta(days=6), send=sent.append)
        assert len(sent) == 1
        reminders.instalments_overdue_remind(today=today + timedelta(days=7), send=sent.append)
        assert len(sent) == 2

    def test_paid_instalments_are_not_reminded(self, org):
        contract = _signed(org, [(-5, "100")])
        services.payment_receipt_record(contract=contract, instalment=contract.instalments.get(), user=org.rep_a,
                                        received_on=days(0), amount=Decimal("100"), method="cash")
        sent = []
        assert reminders.instalments_overdue_remind(today=timezone.localdate(), send=sent.append) == 0

    def test_a_failed_delivery_is_retried(self, org):
        """The claim and the reminder commit together: if raising fails, the next scan tries again."""
        _signed(org, [(-5, "100")])

        def broken(reminder):
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            reminders.instalments_overdue_remind(today=timezone.localdate(), send=broken)
        assert PaymentInstalment.objects.get().last_reminded_on is None
        sent = []
        assert reminders.instalments_overdue_remind(today=timezone.localdate(), send=sent.append) == 1


@pytest.mark.django_db(transaction=True)
class TestConcurrentScans:
    def test_overlapping_scans_remind_once(self, org):
        _signed(org, [(-5, "100"), (-4, "100"), (-3, "100")])
        sent = []
        lock = threading.Lock()
        barrier = threading.Barrier(3)

        def send(reminder):
            with lock:
                sent.append(reminder.instalment_id)

        def work():
            try:
                barrier.wait(timeout=10)
                reminders.instalments_overdue_remind(today=timezone.localdate(), send=send)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(sent) == sorted(PaymentInstalment.objects.values_list("pk", flat=True))
