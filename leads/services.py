from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from .models import Customer

# Follow-up cadence per tier, in days. The customers issue makes this admin-editable.
DEFAULT_CADENCE_DAYS = {"A": 7, "B": 14, "C": 30}


@transaction.atomic
def customer_touch(*, customer: Customer, contacted_at: datetime) -> Customer:
    """Record a contact with the customer (a done activity): last contacted, and the next follow-up
    date from the tier's cadence. Never moves last-contacted backwards (a late-logged old call)."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.last_contacted_at is None or contacted_at > locked.last_contacted_at:
        locked.last_contacted_at = contacted_at
        locked.next_follow_up_at = contacted_at + timedelta(days=DEFAULT_CADENCE_DAYS[locked.tier])
        locked.save(update_fields=["last_contacted_at", "next_follow_up_at", "updated_at"])
    return locked
