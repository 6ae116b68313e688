"""Tier metrics this app measures for the leads tier rules (registered in OpportunitiesConfig.ready)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Sum
from django.utils import timezone

from .models import Opportunity, StageKind


def won_revenue_12m(customer_ids: Iterable[int]) -> dict[int, Decimal]:
    """Amount of the deals won in the last 12 months (closed_at within 365 days), per customer. One query."""
    since = timezone.now() - timedelta(days=365)
    rows = (
        Opportunity.objects.filter(
            customer_id__in=list(customer_ids), stage__kind=StageKind.WON, closed_at__gte=since
        )
        .values_list("customer_id")
        .annotate(total=Sum("amount"))
    )
    return dict(rows)


def open_weighted_pipeline(customer_ids: Iterable[int]) -> dict[int, Decimal]:
    """Sum of amount × probability / 100 over the customer's open deals. One query."""
    weighted = ExpressionWrapper(
        F("amount") * F("probability") / 100, output_field=DecimalField(max_digits=18, decimal_places=2)
    )
    rows = (
        Opportunity.objects.filter(customer_id__in=list(customer_ids), stage__kind=StageKind.OPEN)
        .values_list("customer_id")
        .annotate(total=Sum(weighted))
    )
    return dict(rows)
