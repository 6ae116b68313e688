"""What the customer page shows of other apps, without the leads app importing them.

Timeline: everything that happened with a customer, newest first. Each app that has something to
show registers a provider, usually in its AppConfig.ready():

    from leads.timeline import TimelineEntry, register_provider

    def activity_entries(*, customer, user, limit):
        return [TimelineEntry(when=a.done_at, title=a.subject, kind="activity", icon="bi-telephone",
                              url=a.get_absolute_url(), actor=a.owner) for a in ...[:limit]]

    register_provider("activities", activity_entries)

A provider gets the customer, the viewing user (apply your own scope rule to what you show) and a
limit, and returns TimelineEntry objects; it must run a fixed number of queries. A provider may also be
named on the AppConfig as a dotted path: `customer_timeline_provider = "activities.timeline.entries"`.

Panels: a whole section of the page loaded by HTMX from the other app's own URL (its partial view
checks the scope with `leads.selectors.customer_get_for_user`). Register one with
`register_panel("contracts", _("Contracts"), "contracts:for_customer")`, or name it on the AppConfig
as `customer_panel = ("contracts:for_customer", _("Contracts"))`. An app with a URL named
`<app label>:for_customer` taking `customer_pk` is picked up without either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass
class TimelineEntry:
    when: datetime
    title: str
    kind: str = "event"
    icon: str = "bi-dot"
    body: str = ""
    url: str = ""
    actor: Any = None
    details: list[str] = field(default_factory=list)


Provider = Callable[..., Iterable[TimelineEntry]]

_PROVIDERS: dict[str, Provider] = {}
_PANELS: dict[str, tuple[str, Any]] = {}


def register_provider(key: str, provider: Provider) -> None:
    """Register (or replace) a timeline provider under `key`. Idempotent."""
    _PROVIDERS[key] = provider


def register_panel(key: str, label, url_name: str) -> None:
    """Register (or replace) an HTMX panel; `url_name` is reversed with `customer_pk`."""
    _PANELS[key] = (url_name, label)


def providers() -> dict[str, Provider]:
    found = dict(_PROVIDERS)
    for config in apps.get_app_configs():
        dotted = getattr(config, "customer_timeline_provider", None)
        if dotted and config.label not in found:
            found[config.label] = import_string(dotted)
    return found


def customer_timeline(*, customer, user, limit: int = 50) -> list[TimelineEntry]:
    """Every provider's entries for the customer, newest first, at most `limit`."""
    entries: list[TimelineEntry] = []
    for key, provider in providers().items():
        try:
            entries.extend(provider(customer=customer, user=user, limit=limit))
        except Exception:  # one app's broken provider must not take the customer page down
            logger.exception("customer timeline provider %s failed", key)
    entries.sort(key=lambda e: e.when, reverse=True)
    return entries[:limit]


def customer_panels(*, customer) -> list[dict[str, str]]:
    """[{"key", "label", "url"}] of the panels to load on the customer page."""
    declared = dict(_PANELS)
    for config in apps.get_app_configs():
        if config.label in declared or config.label == "leads":
            continue
        panel = getattr(config, "customer_panel", None)
        if panel:
            declared[config.label] = panel
        else:
            declared[config.label] = (f"{config.label}:for_customer", config.verbose_name)
    panels = []
    for key, (url_name, label) in declared.items():
        try:
            url = reverse(url_name, kwargs={"customer_pk": customer.pk})
        except NoReverseMatch:
            continue
        panels.append({"key": key, "label": str(label), "url": url})
    return panels
