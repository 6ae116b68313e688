"""Cell text → typed values, with the error messages a row gets when a cell does not parse."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from ..columns import squash


class CellError(Exception):
    """A cell that does not parse: the row gets an error on that column."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
)
_TRUE = {"1", "yes", "y", "true", "t", "是", "对", "√", "x"}
_FALSE = {"0", "no", "n", "false", "f", "否", "不是", ""}


def parse_date(column: str, text: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date, no time zone
        except ValueError:
            continue
    try:
        return parse_datetime(column, text).date() if text else None
    except CellError:
        raise CellError(column, _("“%(value)s” is not a date (use YYYY-MM-DD).") % {"value": text}) from None


def parse_datetime(column: str, text: str) -> datetime | None:
    """A local date-time of the configured time zone (a date alone: midnight); an explicit offset
    (ISO 8601, e.g. +08:00) is kept."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value: datetime | None = datetime.fromisoformat(text)  # the fast path: 2024-03-01 10:30[:00]
    except ValueError:
        value = None
    if value is None:
        for fmt in _DATETIME_FORMATS:
            try:
                value = datetime.strptime(text, fmt)  # noqa: DTZ007 - made aware below
                break
            except ValueError:
                continue
    if value is None:
        for fmt in _DATE_FORMATS:
            try:
                value = datetime.combine(datetime.strptime(text, fmt).date(), time.min)  # noqa: DTZ007
                break
            except ValueError:
                continue
    if value is None:
        raise CellError(column, _("“%(value)s” is not a date and time (use YYYY-MM-DD HH:MM).") % {"value": text})
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def parse_decimal(column: str, text: str, *, minimum: Decimal | None = Decimal("0")) -> Decimal | None:
    text = (text or "").strip().replace(",", "").replace("，", "").replace("¥", "").replace("￥", "")
    if not text:
        return None
    try:
        value = Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise CellError(column, _("“%(value)s” is not an amount.") % {"value": text}) from None
    if minimum is not None and value < minimum:
        raise CellError(column, _("The amount cannot be negative."))
    if value >= Decimal("1e12"):
        raise CellError(column, _("“%(value)s” is too large.") % {"value": text})
    return value


def parse_int(column: str, text: str, *, low: int, high: int) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = int(float(text.rstrip("%")))
    except ValueError:
        raise CellError(column, _("“%(value)s” is not a whole number.") % {"value": text}) from None
    if not low <= value <= high:
        raise CellError(column, _("“%(value)s” is not between %(low)s and %(high)s.") % {"value": text, "low": low, "high": high})
    return value


def parse_bool(column: str, text: str) -> bool:
    key = squash(text or "")
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise CellError(column, _("“%(value)s” is not yes or no.") % {"value": text})


def parse_choice(column: str, text: str, choices: dict[str, str], default: str = "") -> str:
    """A value of `choices` ({squashed code or label: value}, see leads.importing._choice_map)."""
    key = squash(text or "")
    if not key:
        return default
    value = choices.get(key)
    if value is None:
        raise CellError(column, _("“%(value)s” is not one of the choices.") % {"value": text})
    return value


def check_length(column: str, text: str, limit: int) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise CellError(column, _("At most %(limit)s characters.") % {"limit": limit})
    return text


def check_email(column: str, text: str) -> str:
    text = (text or "").strip().lower()
    if text:
        try:
            validate_email(text)
        except ValidationError:
            raise CellError(column, _("“%(value)s” is not an email address.") % {"value": text}) from None
    return text


_URL = URLValidator()


def check_url(column: str, text: str) -> str:
    text = (text or "").strip()
    if not text:
        return ""
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        text = "https://" + text
    try:
        _URL(text)
    except ValidationError:
        raise CellError(column, _("“%(value)s” is not a web address.") % {"value": text}) from None
    return text[:200]
