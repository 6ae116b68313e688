"""Reminder sources: how other apps tell the one reminder mechanism what is due.

A source is registered under a key, either
- by the app that owns it, declaring dotted paths on its AppConfig (no import of this app needed, so
  apps listed above notifications in the house map can contribute):

      class ActivitiesConfig(AppConfig):
          reminder_sources = [
              {"key": "activities.planned", "label": _("Planned activities"),
               "collect": "activities.reminders.planned_collect",
               "render": "activities.reminders.planned_render", "lead": True},
          ]

- or by calling `register_source(...)` (apps below notifications in the map, e.g. in `ready()`).

`collect(*, start, end)` returns the items due in the window (event times between start and end), each a
dict: {"key": str, "recipient_id": int, "at": datetime, "changed_at": datetime | None (optional),
"target": model instance (optional), "data": JSON-able dict (optional)}. The scan upserts them as
Reminder rows; with `lead=True` the due time is `at` minus the recipient's lead-minutes preference.
`every` (seconds) makes the scan collect that source less often than every minute.
The window starts where the previous successful collect ended (minus a small overlap), so a scan after an
outage covers the whole outage.

`render(reminder)` returns {"title", "body", "link", optionally "html"} for a reminder, in the active
language (the recipient's: the caller wraps it in `translation.override`), or None when the reminder is
no longer relevant (the activity was done or moved): it is then cancelled and nothing is sent.
A source without `render` delivers the title/body/link stored on the reminder (`reminder_schedule`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.utils.module_loading import import_string

_registered: dict[str, ReminderSource] = {}
_discovered = False


@dataclass(frozen=True)
class ReminderSource:
    key: str
    label: Any = ""
    collect: Callable[..., Any] | None = None
    render: Callable[..., Any] | None = None
    lead: bool = False
    every: int = 0  # collect at most every this many seconds (0: every scan)


def _resolve(value: Any) -> Callable[..., Any] | None:
    if value is None or callable(value):
        return value
    return import_string(value)


def register_source(
    key: str,
    *,
    label: Any = "",
    collect: Callable[..., Any] | str | None = None,
    render: Callable[..., Any] | str | None = None,
    lead: bool = False,
    every: int = 0,
) -> ReminderSource:
    """Register (or replace) the reminder source `key`. Callables or dotted paths."""
    source = ReminderSource(
        key=key, label=label or key, collect=_resolve(collect), render=_resolve(render), lead=lead, every=every
    )
    _registered[key] = source
    return source


def unregister_source(key: str) -> None:
    _registered.pop(key, None)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for config in apps.get_app_configs():
        for entry in getattr(config, "reminder_sources", []):
            if entry["key"] not in _registered:
                register_source(**entry)


def sources() -> list[ReminderSource]:
    _discover()
    return list(_registered.values())


def get_source(key: str) -> ReminderSource | None:
    _discover()
    return _registered.get(key)


def source_label(key: str) -> Any:
    source = get_source(key)
    return source.label if source else key
