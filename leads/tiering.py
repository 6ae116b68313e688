"""Tier metrics: what the admin-editable tier rules measure.

The leads app knows nothing of deals or activities (imports point down the house map), so the apps
that hold the numbers register them here, usually in their AppConfig.ready():

    from leads.tiering import register_metric

    register_metric(
        "won_revenue_12m", _("Won revenue, last 12 months"), won_revenue_by_customer, unit="¥",
    )

A metric function takes a list of customer ids and returns {customer_id: number} for them (customers
missing from the dict count as 0). It must run a fixed number of queries whatever the number of ids
(one aggregate with `customer_id__in=ids`): the nightly recompute calls it in chunks over every
customer.

The seeded rules use the keys `won_revenue_12m` (opportunities/contracts), `open_weighted_pipeline`
(opportunities) and `activities_90d` (activities). Leads provides `contacted_90d` itself (1 when the
customer was contacted in the last 90 days, from `last_contacted_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

MetricFunc = Callable[[list[int]], dict[int, Decimal | int | float]]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    func: MetricFunc
    unit: str = ""


_METRICS: dict[str, Metric] = {}

# Labels of the metrics the seeded rules name, so the admin can show them before their app registers.
KNOWN_LABELS = {
    "won_revenue_12m": _("Won revenue, last 12 months"),
    "open_weighted_pipeline": _("Open weighted pipeline"),
    "activities_90d": _("Activities, last 90 days"),
    "contacted_90d": _("Contacted in the last 90 days (1 = yes)"),
}


def register_metric(key: str, label, func: MetricFunc, *, unit: str = "") -> None:
    """Register (or replace) a tier metric. Idempotent: ready() may run more than once."""
    _METRICS[key] = Metric(key=key, label=label, func=func, unit=unit)


def unregister_metric(key: str) -> None:
    _METRICS.pop(key, None)


def registered_metrics() -> dict[str, Metric]:
    return dict(_METRICS)


def metric_label(key: str) -> str:
    metric = _METRICS.get(key)
    if metric is not None:
        return str(metric.label)
    if key in KNOWN_LABELS:
        return str(KNOWN_LABELS[key])
    return key


def metric_choices() -> list[tuple[str, str]]:
    keys = {*KNOWN_LABELS, *_METRICS}
    return sorted(((key, metric_label(key)) for key in keys), key=lambda c: c[1])


def compute_metrics(keys: Iterable[str], customer_ids: list[int]) -> dict[str, dict[int, Decimal]]:
    """{metric key: {customer id: value}} for the given metrics; an unregistered metric is all 0."""
    values: dict[str, dict[int, Decimal]] = {}
    for key in keys:
        metric = _METRICS.get(key)
        raw = metric.func(customer_ids) if metric is not None and customer_ids else {}
        values[key] = {pk: Decimal(str(value or 0)) for pk, value in raw.items()}
    return values


def _contacted_90d(customer_ids: list[int]) -> dict[int, int]:
    from .models import Customer

    since = timezone.now() - timedelta(days=90)
    ids = Customer.objects.filter(pk__in=customer_ids, last_contacted_at__gte=since).values_list("pk", flat=True)
    return dict.fromkeys(ids, 1)


def register_builtin_metrics() -> None:
    register_metric("contacted_90d", KNOWN_LABELS["contacted_90d"], _contacted_90d)


def describe(explanation: list[dict]) -> list[str]:
    """The stored explanation as sentences for the page ("why this tier")."""
    lines = []
    for item in explanation:
        label = metric_label(item.get("metric", ""))
        if item.get("met"):
            template = gettext("%(tier)s: %(metric)s is %(value)s, at least %(threshold)s")
        else:
            template = gettext("%(tier)s not reached: %(metric)s is %(value)s, below %(threshold)s")
        lines.append(
            template
            % {"tier": item.get("tier", ""), "metric": label, "value": item.get("value"), "threshold": item.get("threshold")}
        )
    return lines
