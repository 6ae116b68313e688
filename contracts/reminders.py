"""Overdue instalments as a reminder source.

The daily scan (`contracts.tasks.instalments_overdue_remind`) claims every overdue instalment that was
not reminded in the last REMIND_EVERY_DAYS days with a conditional update (so two workers or two beats
never remind twice) and raises one reminder to the contract owner through the notifications app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .models import PaymentInstalment
from .selectors import instalments_overdue

logger = logging.getLogger(__name__)

REMIND_EVERY_DAYS = 7


@dataclass(frozen=True)
class OverdueReminder:
    """What the owner is told: which contract, which instalment, how much, since when."""

    recipient_id: int
    instalment_id: int
    contract_id: int
    contract_number: str
    customer_name: str
    due_date: date
    outstanding: Decimal
    currency: str
    url: str
    key: str  # unique per instalment and reminder day: the notification's idempotency key

    @property
    def title(self) -> str:
        return str(_("Overdue payment: %(number)s") % {"number": self.contract_number})

    @property
    def body(self) -> str:
        return str(
            _("%(customer)s owes %(currency)s %(amount)s, due on %(due)s.")
            % {"customer": self.customer_name, "currency": self.currency, "amount": self.outstanding,
               "due": self.due_date.isoformat()}
        )


Sender = Callable[[OverdueReminder], None]


def _claim(instalment: PaymentInstalment, today: date) -> bool:
    """Mark the instalment reminded today unless someone else did since we read it."""
    return bool(
        PaymentInstalment.objects.filter(pk=instalment.pk, last_reminded_on=instalment.last_reminded_on)
        .update(last_reminded_on=today)
    )


def instalments_due_for_reminder(*, today: date):
    """Overdue instalments not reminded in the last REMIND_EVERY_DAYS days."""
    return instalments_overdue(today=today).filter(
        Q(last_reminded_on__isnull=True) | Q(last_reminded_on__lte=today - timedelta(days=REMIND_EVERY_DAYS))
    )


def instalments_overdue_remind(*, today: date, send: Sender | None = None) -> int:
    """Raise one reminder per claimed overdue instalment; return how many were raised."""
    send = send or send_through_notifications
    raised = 0
    for instalment in instalments_due_for_reminder(today=today):
        with transaction.atomic():  # the claim and the reminder commit together
            if not _claim(instalment, today):
                continue
            _send_one(instalment, today, send)
        raised += 1
    return raised


def _send_one(instalment: PaymentInstalment, today: date, send: Sender) -> None:
    contract = instalment.contract
    reminder = OverdueReminder(
        recipient_id=contract.owner_id,
        instalment_id=instalment.pk,
        contract_id=contract.pk,
        contract_number=contract.number,
        customer_name=contract.customer.name,
        due_date=instalment.due_date,
        outstanding=instalment.outstanding,
        currency=contract.currency,
        url=reverse("contracts:detail", args=[contract.pk]) + "#payments",
        key=f"contracts.instalment_overdue:{instalment.pk}:{today.isoformat()}",
    )
    send(reminder)


def send_through_notifications(reminder: OverdueReminder) -> None:
    """Hand the reminder to the notifications app (its delivery is in-app, email, webhook)."""
    logger.info("overdue instalment %s of %s: reminder for user %s", reminder.instalment_id,
                reminder.contract_number, reminder.recipient_id)
