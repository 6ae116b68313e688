"""Export everything: the cells, the zip (files, headers, README), the task, the expiry and the purge."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from crm.exports import FORMULA_PREFIXES
from crm.periodic import declared_periodic_tasks
from leads.models import Customer
from switching import exporting
from switching.cells import escape_cell, unescape_cell
from switching.columns import COLUMNS
from switching.export_tasks import export_purge_expired, export_run
from switching.models import Export, ExportStatus
from tests.factories import CustomerFactory
from tests.switching.export_data import DISCOUNT_NEEDS, FORMULA_NAME, build_small_crm


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Export zips go to a temporary private folder, never to var/."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.PRIVATE_MEDIA_ROOT


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def run_export(user) -> Export:
    export = Export.objects.create(requested_by=user)
    result = export_run.apply(args=[export.pk]).get()
    assert result["status"] == ExportStatus.DONE, result
    export.refresh_from_db()
    return export


def read_zip(export: Export) -> zipfile.ZipFile:
    with export.file.open("rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


def read_csv(archive: zipfile.ZipFile, name: str) -> list[list[str]]:
    raw = archive.read(name)
    assert raw.startswith(b"\xef\xbb\xbf"), f"{name} has no UTF-8 BOM"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def by_header(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


class TestCells:
    VALUES = ["=SUM(A1)", "-5% discount", "+86 138 0013 8000", "@user", "\tx", "＝全角", "'=x", "''+1", "'plain",
              "plain", "", "a'=b", "中文"]

    @pytest.mark.parametrize("value", VALUES)
    def test_escape_then_unescape_gives_the_value_back(self, value):
        """Whatever the text, the import reads back exactly what was exported."""
        assert unescape_cell(escape_cell(value)) == value

    @pytest.mark.parametrize("value", VALUES)
    def test_no_exported_cell_starts_a_formula(self, value):
        assert not escape_cell(value).startswith(FORMULA_PREFIXES)

    def test_formula_text_gets_one_quote(self):
        assert escape_cell("=SUM(A1)") == "'=SUM(A1)"
        assert escape_cell("-5% discount") == "'-5% discount"
        assert escape_cell("plain") == "plain"
        assert escape_cell("'=x") == "''=x"

    def test_numbers_and_dates_are_not_text(self):
        assert exporting.cell(timezone.make_aware(timezone.datetime(2026, 3, 2, 9, 15, 30))) == "2026-03-02 09:15:30"
        assert exporting.cell(timezone.make_aware(timezone.datetime(2026, 3, 2, 9, 15, 30, 5))) == "2026-03-02 09:15:30.000005"
        assert exporting.cell(True) == "yes" and exporting.cell(False) == "no"
        from decimal import Decimal

        assert exporting.cell(Decimal("-120000.50")) == "-120000.50"  # an amount, not a formula
        assert exporting.cell(None) == ""


@pytest.mark.django_db
class TestExportRun:
    def test_zip_holds_every_table_and_the_readme(self, org):
        crm = build_small_crm(org)
        export = run_export(org.admin)
        archive = read_zip(export)
        names = set(archive.namelist())
        assert names == {t.file_name for t in exporting.TABLES} | {"README.txt"}
        assert archive.getinfo("customers.csv").compress_type == zipfile.ZIP_DEFLATED
        assert export.row_counts["customers.csv"] == 4
        assert export.row_counts["contacts.csv"] == 3
        assert export.row_counts["opportunities.csv"] == len(crm.deals) == 5
        assert export.row_counts["activities.csv"] == 6
        assert export.row_counts["stage_history.csv"] == 5 + 3 + 3 + 2 + 1
        assert export.row_counts["contracts.csv"] == 1 and export.row_counts["payment_plan.csv"] == 2
        assert export.row_counts["payments.csv"] == 1 and export.row_counts["tickets.csv"] == 1
        assert export.row_counts["users.csv"] == 7 and export.row_counts["teams.csv"] == 3
        for table in exporting.TABLES:
            assert len(read_csv(archive, table.file_name)) == export.row_counts[table.file_name] + 1
        assert export.size == export.file.size > 0

    def test_import_files_use_exactly_the_import_headers(self, org):
        build_small_crm(org)
        archive = read_zip(run_export(org.admin))
        for kind, file_name in (("customers", "customers.csv"), ("contacts", "contacts.csv"),
                                ("opportunities", "opportunities.csv"), ("activities", "activities.csv")):
            assert read_csv(archive, file_name)[0] == [c.en for c in COLUMNS[kind]]

    def test_values_references_and_formats(self, org):
        crm = build_small_crm(org)
        archive = read_zip(run_export(org.admin))
        customers = {r["Name"]: r for r in by_header(read_csv(archive, "customers.csv"))}
        c1 = customers["华东精密制造 East China Precision"]
        assert c1["External ID"] == "OLD-C1"
        assert c1["Created at"] == "2026-03-02 09:15:30.123456"
        assert c1["Tags"] == "VIP, 制造业" and c1["Source channel"] == "website" and c1["Owner"] == "rep_a"
        assert c1["Phone"] == "'+8613800138000"  # stored normalised, quoted against formulas
        c2 = customers["'=SUM(A1)"]
        c2_id = f"crm-{crm.customers['c2'].pk}"
        assert c2["External ID"] == c2_id and c2["Needs"] == "'-5% discount"
        assert customers["Pool Lead 公海线索"]["Owner"] == ""

        contacts = {r["Name"]: r for r in by_header(read_csv(archive, "contacts.csv"))}
        assert contacts["王总 Wang"]["Customer external ID"] == "OLD-C1"
        assert contacts["王总 Wang"]["Decision maker"] == "yes"
        assert contacts["Li Ming 李明"]["Customer external ID"] == c2_id
        assert contacts["Li Ming 李明"]["Notes"] == "''=quoted already"
        assert contacts["Li Ming 李明"]["External ID"] == f"crm-{crm.contacts['li'].pk}"

        deals = {r["External ID"]: r for r in by_header(read_csv(archive, "opportunities.csv"))}
        won = deals["OLD-D1"]
        assert won["Outcome"] == "won" and won["Close date"] == "2026-04-10 16:30:05"
        assert won["Created at"] == "2026-03-05 10:00:00.250000" and won["Amount"] == "120000.50"
        assert won["Contact external ID"] == "OLD-P1" and won["Stage"] == crm.deals["won_big"].stage.name_zh
        lost = deals[f"crm-{crm.deals['lost'].pk}"]
        assert lost["Outcome"] == "lost" and lost["Title"].startswith("'=HYPERLINK")
        assert lost["Loss note"] == "'-价格太高 price too high" and lost["Loss reason"]
        open_deal = deals[f"crm-{crm.deals['open'].pk}"]
        assert open_deal["Outcome"] == "open" and open_deal["Close date"] == "2026-04-28"

        activities = by_header(read_csv(archive, "activities.csv"))
        first = next(a for a in activities if a["External ID"] == "OLD-A1")
        assert first["Opportunity external ID"] == "OLD-D1" and first["Kind"] == "call"
        assert first["Time"] == "2026-03-06 10:05:00" and first["Notes"] == "Budget ≈ 12万\nNext: demo"
        assert first["Next step"] == "'=demo next week"
        planned = next(a for a in activities if a["Subject"] == "Follow-up")
        assert planned["Status"] == "planned" and planned["Time"] == "2026-04-15 10:00:00"

        history = by_header(read_csv(archive, "stage_history.csv"))
        assert [h["Action"] for h in history if h["Opportunity external ID"] == "OLD-D1"] == [
            "create", "advance", "advance", "advance", "win"]
        payments = by_header(read_csv(archive, "payments.csv"))
        assert payments[0]["Contract number"] == "HT-2026-000001" and payments[0]["Amount"] == "60000.25"
        contracts = by_header(read_csv(archive, "contracts.csv"))
        assert contracts[0]["Payment terms"] == "'=50% upfront" and contracts[0]["Opportunity external ID"] == "OLD-D1"
        tickets = by_header(read_csv(archive, "tickets.csv"))
        assert tickets[0]["Subject"] == "'+ sign bug" and tickets[0]["Customer external ID"] == "OLD-C1"

    def test_no_cell_of_any_file_starts_a_formula(self, org):
        build_small_crm(org)
        archive = read_zip(run_export(org.admin))
        for table in exporting.TABLES:
            for row in read_csv(archive, table.file_name):
                for value in row:
                    assert not value.startswith(FORMULA_PREFIXES), (table.file_name, value)
        raw = archive.read("customers.csv").decode("utf-8-sig")
        assert FORMULA_NAME not in raw.replace("'" + FORMULA_NAME, "")
        assert DISCOUNT_NEEDS in raw

    def test_users_file_has_no_password(self, org):
        archive = read_zip(run_export(org.admin))
        users = read_csv(archive, "users.csv")
        assert "Password" not in users[0]
        assert org.admin.password not in archive.read("users.csv").decode("utf-8-sig")
        assert {"rep_a", "admin", "director"} <= {row[0] for row in users[1:]}
        teams = {r["Name"]: r for r in by_header(read_csv(archive, "teams.csv"))}
        assert teams["Team A"]["Parent team"] == "Sales" and teams["Team A"]["Manager"] == "manager_a"

    def test_readme_lists_every_file_and_column_in_both_languages(self, org):
        build_small_crm(org)
        readme = read_zip(run_export(org.admin)).read("README.txt").decode("utf-8-sig")
        for table in exporting.TABLES:
            assert readme.count(table.file_name) >= 2
            for column in table.columns:
                assert column.en in readme and column.zh in readme
        assert "customers.csv — Customers (4 rows, importable)" in readme
        assert "customers.csv — 客户 (4 行，可导入)" in readme
        assert "CRM 全量导出" in readme and "CRM full export" in readme

    def test_generated_id_never_clashes_with_a_stored_one(self, org):
        """A record whose generated crm-<pk> is already another record's external id gets crm-<pk>-1."""
        fresh = CustomerFactory(owner=org.rep_a, name="New")
        CustomerFactory(owner=org.rep_a, name="Imported before", external_id=f"crm-{fresh.pk}")
        rows = by_header(read_csv(read_zip(run_export(org.admin)), "customers.csv"))
        ids = {r["Name"]: r["External ID"] for r in rows}
        assert ids == {"New": f"crm-{fresh.pk}-1", "Imported before": f"crm-{fresh.pk}"}

    def test_file_is_private_and_expires_after_the_ttl(self, org, settings, private_media):
        settings.EXPORT_TTL_HOURS = 6
        export = run_export(org.admin)
        assert export.file.path.startswith(str(private_media))
        assert not export.file.path.startswith(str(settings.MEDIA_ROOT))
        assert export.file.name.startswith("switching/exports/") and export.file.name.endswith(".zip")
        assert export.expires_at - export.finished_at == timedelta(hours=6)
        assert export.is_downloadable() and not export.is_expired()
        assert export.is_expired(export.expires_at + timedelta(seconds=1))

    def test_a_second_delivery_of_the_task_does_nothing(self, org):
        export = run_export(org.admin)
        name = export.file.name
        assert export_run.apply(args=[export.pk]).get() == {"export": export.pk, "status": "skipped"}
        export.refresh_from_db()
        assert export.file.name == name

    def test_a_failure_marks_the_export_failed_and_leaves_no_file(self, org, settings, tmp_path):
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        settings.PRIVATE_MEDIA_ROOT = blocker  # the storage cannot create its folder: the move fails
        export = Export.objects.create(requested_by=org.admin)
        assert export_run.apply(args=[export.pk]).get()["status"] == ExportStatus.FAILED
        export.refresh_from_db()
        assert export.status == ExportStatus.FAILED and export.failure and not export.file
        assert export.expires_at is None

    def test_purge_deletes_expired_files_only(self, org, settings):
        old, fresh = run_export(org.admin), run_export(org.admin)
        Export.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        old_path = old.file.path
        assert export_purge_expired.apply().get() == 1
        old.refresh_from_db()
        fresh.refresh_from_db()
        assert not old.file and old.is_expired()
        import os

        assert not os.path.exists(old_path) and os.path.exists(fresh.file.path)
        assert export_purge_expired.apply().get() == 0

    def test_purge_is_a_declared_periodic_task(self):
        entries = {e["task"]: e for e in declared_periodic_tasks()}
        assert entries["switching.export_purge_expired"]["every"] == 3600

    def test_memory_stays_flat_with_many_rows(self, org):
        """Rows are streamed: 3,000 customers (more than one chunk) export with every row present."""
        Customer.objects.bulk_create([Customer(name=f"Bulk {i}", owner=org.rep_a) for i in range(3000)])
        export = run_export(org.admin)
        assert export.row_counts["customers.csv"] == 3000
        names = [r[1] for r in read_csv(read_zip(export), "customers.csv")[1:]]
        assert len(set(names)) == 3000


@pytest.mark.django_db
class TestStalePendingExports:
    def test_an_export_stuck_for_hours_is_marked_failed_by_the_purge(self, org):
        stuck = Export.objects.create(requested_by=org.admin, status=ExportStatus.RUNNING)
        recent = Export.objects.create(requested_by=org.admin)
        Export.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - exporting.STALE_AFTER - timedelta(minutes=1))
        export_purge_expired.apply().get()
        stuck.refresh_from_db()
        recent.refresh_from_db()
        assert stuck.status == ExportStatus.FAILED and "Interrupted" in stuck.failure
        assert recent.status == ExportStatus.QUEUED


def second_pipeline_deal(org):
    """A won deal in a second pipeline, whose won stage is named 赢单 like the default pipeline's."""
    from opportunities.models import Opportunity, Pipeline, Stage, StageKind
    from opportunities.services import pipeline_ensure_closed_stages, pipeline_ensure_default

    pipeline_ensure_default()
    renewals = Pipeline.objects.create(code="renewals", name_zh="续约", name_en="Renewals")
    Stage.objects.create(pipeline=renewals, code="quote", name_zh="报价", name_en="Quote", order=1)
    pipeline_ensure_closed_stages(pipeline=renewals)
    won = renewals.stages.get(kind=StageKind.WON)
    customer = CustomerFactory(owner=org.rep_a, external_id="R-1")
    return Opportunity.objects.create(
        pipeline=renewals, stage=won, customer=customer, owner=org.rep_a, title="Renewal 2026", external_id="R-D1",
        probability=100,
        created_at=timezone.now() - timedelta(days=20), closed_at=timezone.now() - timedelta(days=2),
    )


@pytest.mark.django_db
def test_stages_of_another_pipeline_are_qualified_by_its_code(org):
    deal = second_pipeline_deal(org)
    archive = read_zip(run_export(org.admin))
    row = by_header(read_csv(archive, "opportunities.csv"))[0]
    assert row["External ID"] == deal.external_id and row["Stage"] == "renewals/赢单"
    history = by_header(read_csv(archive, "stage_history.csv"))
    assert history == []  # built without history rows
    assert exporting.stage_label("赢单", "Won", "new_business", True) == "赢单"


@pytest.mark.django_db
class TestExportRequest:
    @pytest.mark.parametrize("who", ["rep_a", "manager_a", "director"])
    def test_only_an_administrator_may_request(self, org, who):
        from django.core.exceptions import PermissionDenied

        with pytest.raises(PermissionDenied):
            exporting.export_request(user=getattr(org, who))
        assert not Export.objects.exists()

    def test_the_task_is_queued_once_the_row_is_committed(self, org, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            export = exporting.export_request(user=org.admin)
        assert export.status == ExportStatus.QUEUED and len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_export_build_it_once(org):
    """A duplicate delivery running at the same time: the conditional claim lets exactly one build."""
    import threading

    from django.db import connection

    export = Export.objects.create(requested_by=org.admin)
    results, barrier = [], threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            results.append(exporting.export_run(export_id=export.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    built = [r for r in results if r is not None]
    assert len(results) == 2 and len(built) == 1 and built[0].status == ExportStatus.DONE
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE and export.file
