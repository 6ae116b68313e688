"""Reading an import file row by row: CSV (UTF-8 with or without BOM, or GBK/GB18030 as Chinese Excel
saves it; comma, semicolon or tab) or XLSX (the first sheet), without loading it whole into memory.

The text helpers come from the older customer importer (`leads.importing`): `_cell` for cell text,
`ImportFileError` for a file that cannot be read, and its encoding rule (UTF-8, else GB18030). Unlike that importer this one streams, so the size limit is the disk's, not 20,000 rows.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import IO

from django.utils.translation import gettext as _

from leads.importing import ImportFileError, _cell

from ..cells import unescape_cell

SAMPLE_BYTES = 64 * 1024


def is_xlsx(name: str, head: bytes) -> bool:
    return name.lower().endswith((".xlsx", ".xlsm")) or head[:2] == b"PK"


def detect_encoding(handle: IO[bytes]) -> str:
    """"utf-8-sig" if the whole file is valid UTF-8, else "gb18030" (a superset of GBK and GB2312) if it
    is valid GB18030: the rule of `leads.importing.decode_csv`, checked in a streaming pass."""
    for encoding in ("utf-8-sig", "gb18030"):
        handle.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while block := handle.read(1024 * 1024):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFileError(_("The file is neither UTF-8 nor GBK/GB18030 text."), code="encoding")


def iter_table(handle: IO[bytes], name: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-empty row, header included (line 1 = the first row)."""
    handle.seek(0)
    head = handle.read(8)
    handle.seek(0)
    if is_xlsx(name, head):
        yield from _iter_xlsx(handle)
        return
    encoding = detect_encoding(handle)
    handle.seek(0)
    text = io.TextIOWrapper(handle, encoding=encoding, newline="")
    try:
        sample = text.read(SAMPLE_BYTES)
        try:
            dialect = csv.Sniffer().sniff(sample[:8192], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        text.seek(0)
        reader = csv.reader(text, dialect)
        try:
            for row in reader:
                cells = [c.strip() for c in row]
                if any(cells):
                    yield reader.line_num, cells
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportFileError(_("The file is not a readable CSV file (%(error)s).") % {"error": exc}, code="bad_csv") from exc
    finally:
        text.detach()


def _iter_xlsx(handle: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the same error to the user
        raise ImportFileError(_("The file is not a readable XLSX workbook."), code="bad_xlsx") from exc
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_xlsx_cell(v) for v in row]
            if any(cells):
                yield number, cells
    finally:
        workbook.close()


def _xlsx_cell(value: object) -> str:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if (value.hour, value.minute, value.second) != (0, 0, 0) else value.strftime("%Y-%m-%d")
    return _cell(value)


def read_header(handle: IO[bytes], name: str) -> list[str]:
    for _line, cells in iter_table(handle, name):
        return cells
    raise ImportFileError(_("The file is empty."), code="empty")


def iter_records(handle: IO[bytes], name: str, keys: list[str | None]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column key: text}) of every data row, the header cells mapped to `keys`
    (None: an ignored column). A cell quoted against formulas (`'=SUM(A1)`, as the export writes it)
    reads as its value (`switching.cells.unescape_cell`)."""
    rows = iter_table(handle, name)
    next(rows, None)  # the header
    for line, cells in rows:
        yield line, {key: (_value(cells[i]) if i < len(cells) else "") for i, key in enumerate(keys) if key}


def _value(cell: str) -> str:
    return unescape_cell(cell) if cell[:1] == "'" else cell  # the check first: a million rows, few quotes
