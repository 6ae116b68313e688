"""Our tier metric for the leads app's tier rules (registered in ActivitiesConfig.ready())."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from .models import Activity, ActivityStatus


def activities_90d(customer_ids: Iterable[int]) -> dict[int, int]:
    """Done activities that count as a contact (not notes), per customer, in the last 90 days. One query."""
    since = timezone.now() - timedelta(days=90)
    rows = (
        Activity.objects.filter(
            customer_id__in=list(customer_ids), status=ActivityStatus.DONE, done_at__gte=since,
            kind__counts_as_contact=True,
        )
        .values_list("customer_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)
