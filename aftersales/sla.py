"""Working-time arithmetic for SLA deadlines: pure functions, no database.

A deadline is the moment at which a ticket has been "on the clock" for the SLA target. The clock runs
during working time (every hour for a 24x7 policy, the business hours of the business calendar
otherwise) and stops during pauses (the time the ticket waited on the customer, or sat resolved
before being reopened).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A calendar that never finds a working window within this many days is misconfigured.
MAX_DAYS = 3660

Interval = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours: `start`-`end` local time on the ISO `weekdays` (1 = Monday ... 7 = Sunday)."""

    tz: ZoneInfo
    start: time = time(9, 0)
    end: time = time(18, 0)
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset({1, 2, 3, 4, 5}))

    def windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows from the day containing `since` onwards, clipped to start at `since`."""
        day: date = since.astimezone(self.tz).date()
        for _ in range(MAX_DAYS):
            if day.isoweekday() in self.weekdays:
                opens = datetime.combine(day, self.start, tzinfo=self.tz)
                closes = datetime.combine(day, self.end, tzinfo=self.tz)
                if closes > since:
                    yield max(opens, since), closes
            day += timedelta(days=1)


def _merge(pauses: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping pauses; an open pause (end None) swallows everything after it."""
    merged: list[Interval] = []
    for start, end in sorted(pauses, key=lambda p: p[0]):
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None:
                break
            if start <= last_end:
                merged[-1] = (last_start, None if end is None else max(last_end, end))
                continue
        merged.append((start, end))
    return merged


def _subtract(window: tuple[datetime, datetime | None], pauses: list[Interval]) -> Iterator[Interval]:
    """The parts of `window` outside every pause (pauses merged and sorted)."""
    start, end = window
    for p_start, p_end in pauses:
        if end is not None and p_start >= end:
            break
        if p_end is not None and p_end <= start:
            continue
        if p_start > start:
            yield start, p_start
        if p_end is None:
            return
        start = max(start, p_end)
        if end is not None and start >= end:
            return
    yield start, end


def add_working_time(
    start: datetime,
    seconds: float,
    calendar: BusinessCalendar | None = None,
    pauses: Iterable[Interval] = (),
) -> datetime | None:
    """The moment `seconds` of working time after `start`, skipping the pauses.

    `calendar=None` means the clock runs around the clock (24x7). Returns None while a pause is still
    open and the target is not reached before it began: the deadline is not known until the clock runs.
    """
    remaining = timedelta(seconds=seconds)
    merged = _merge(pauses)
    open_from = merged[-1][0] if merged and merged[-1][1] is None else None
    windows: Iterable[tuple[datetime, datetime | None]]
    windows = [(start, None)] if calendar is None else calendar.windows(start)
    for window in windows:
        if open_from is not None and window[0] >= open_from:
            return None  # the clock stopped before the target was reached and has not restarted
        for piece_start, piece_end in _subtract(window, merged):
            if piece_end is None or piece_start + remaining <= piece_end:
                return piece_start + remaining
            remaining -= piece_end - piece_start
    return None
