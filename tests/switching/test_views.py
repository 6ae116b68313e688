"""The import wizard's pages: upload → mapping → preview → confirm → progress, templates, access."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leads.models import Customer
from opportunities.models import Stage
from switching import importing
from switching.columns import template_header
from switching.models import ImportJob, ImportStatus

from .import_helpers import csv_bytes, defaults, upload


@pytest.fixture
def kinds(db):
    defaults()


def _file(rows, name="file.csv", encoding="utf-8-sig"):
    return SimpleUploadedFile(name, csv_bytes(rows, encoding), content_type="text/csv")


class TestAccess:
    def test_reps_get_404_everywhere(self, org, kinds, client_for):
        job = upload(org.admin, "customers", [["external_id", "name"], ["1", "x"]])
        client = client_for(org.rep_a)
        for url in (reverse("switching:import_upload"), reverse("switching:import_detail", args=[job.pk]),
                    reverse("switching:import_template", args=["customers", "csv"]),
                    reverse("switching:import_progress", args=[job.pk])):
            assert client.get(url).status_code == 404, url
        assert client.post(reverse("switching:import_confirm", args=[job.pk])).status_code == 404

    def test_a_manager_does_not_see_another_users_job(self, org, kinds, client_for):
        job = upload(org.manager_b, "customers", [["external_id", "name"], ["1", "x"]])
        assert client_for(org.manager_a).get(reverse("switching:import_detail", args=[job.pk])).status_code == 404
        assert client_for(org.admin).get(reverse("switching:import_detail", args=[job.pk])).status_code == 200

    def test_nav_link_for_managers_only(self, org, kinds, client_for):
        assert 'id="nav-import-link"' in client_for(org.manager_a).get(reverse("switching:import_upload")).content.decode()
        assert 'id="nav-import-link"' not in client_for(org.rep_a).get(reverse("leads:customer_list")).content.decode()


class TestWizard:
    def test_upload_map_preview_confirm(self, org, kinds, client_for, django_capture_on_commit_callbacks):
        """The whole flow in the browser: an unknown stage name is mapped, the preview shows counts and
        the row error with its line, confirming queues the task, which imports the rows."""
        client = client_for(org.manager_a)
        Customer.objects.create(name="甲", owner=org.rep_a, team=org.team_a, external_id="C1")
        rows = [
            ["External ID", "客户外部编号", "商机名称", "阶段", "金额", "创建时间", "结束日期"],
            ["D1", "C1", "Deal", "谈判中", "100", "2024-01-01", ""],
            ["D2", "C1", "Bad", "谈判中", "-5", "2024-01-01", ""],
        ]
        response = client.post(reverse("switching:import_upload"), {"kind": "opportunities", "file": _file(rows, encoding="gbk")})
        job = ImportJob.objects.get()
        assert response.status_code == 302 and response.url == job.get_absolute_url()
        page = client.get(job.get_absolute_url()).content.decode()
        assert 'id="mapping-stages"' in page and "谈判中" in page
        form = {f"col_{i}": key for i, key in enumerate(importing.column_keys(job)) if key}
        response = client.post(reverse("switching:import_mapping", args=[job.pk]), {**form, "unknown_owner_policy": "stop"})
        assert response.status_code == 400  # the stage is not chosen yet
        negotiation = Stage.objects.get(pipeline__is_default=True, code="negotiation")
        response = client.post(reverse("switching:import_mapping", args=[job.pk]),
                               {**form, "stage_0": negotiation.pk, "unknown_owner_policy": "stop"})
        assert response.status_code == 302
        job.refresh_from_db()
        assert (job.status, job.new_count, job.error_count) == (ImportStatus.PREVIEWED, 1, 1)
        page = client.get(job.get_absolute_url()).content.decode()
        assert 'id="count-new">1<' in page and 'data-line="3"' in page and "The amount cannot be negative." in page
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert client.post(reverse("switching:import_confirm", args=[job.pk])).status_code == 302
        job.refresh_from_db()
        assert job.status == ImportStatus.QUEUED and len(callbacks) == 1
        importing.import_run(job_id=job.pk)  # what the queued task does
        response = client.get(reverse("switching:import_progress", args=[job.pk]))
        assert response.status_code == 286 and 'data-status="done"' in response.content.decode()
        assert Customer.objects.get(external_id="C1").opportunities.get().stage == negotiation

    def test_progress_polls_while_running(self, org, kinds, client_for):
        job = upload(org.admin, "customers", [["external_id", "name"], ["1", "x"]])
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, total_rows=4, processed_rows=1)
        response = client_for(org.admin).get(reverse("switching:import_progress", args=[job.pk]))
        assert response.status_code == 200 and "25%" in response.content.decode() and "hx-get" in response.content.decode()

    def test_unknown_owners_block_confirm_until_assigned(self, org, kinds, client_for):
        client = client_for(org.admin)
        rows = [["external_id", "name", "owner"], ["1", "x", "nobody"]]
        client.post(reverse("switching:import_upload"), {"kind": "customers", "file": _file(rows)})
        job = ImportJob.objects.get()
        form = {"col_0": "external_id", "col_1": "name", "col_2": "owner", "unknown_owner_policy": "stop"}
        client.post(reverse("switching:import_mapping", args=[job.pk]), form)
        page = client.get(job.get_absolute_url()).content.decode()
        assert 'id="unknown-owners"' in page and "nobody" in page and 'id="confirm-problems"' in page
        client.post(reverse("switching:import_confirm", args=[job.pk]))
        job.refresh_from_db()
        assert job.status == ImportStatus.PREVIEWED
        client.post(reverse("switching:import_mapping", args=[job.pk]),
                    {**form, "unknown_owner_policy": "assign", "default_owner": org.rep_a.pk})
        job.refresh_from_db()
        assert (job.error_count, job.new_count) == (0, 1)
        assert importing.confirm_problems(job) == []

    def test_bad_file_is_a_form_error(self, org, kinds, client_for):
        client = client_for(org.admin)
        response = client.post(reverse("switching:import_upload"), {"kind": "customers", "file": SimpleUploadedFile("x.csv", b"")})
        assert response.status_code == 200 and not ImportJob.objects.exists()
        response = client.post(reverse("switching:import_upload"), {"kind": "customers", "file": SimpleUploadedFile("x.pdf", b"%PDF")})
        assert "Upload a .csv or .xlsx file." in response.content.decode()

    def test_errors_csv_lists_every_row_error(self, org, kinds, client_for):
        rows = [["external_id", "name", "email"]] + [[str(i), f"n{i}", "not-an-email"] for i in range(3)]
        job = importing.import_set_mapping(job=upload(org.admin, "customers", rows), by=org.admin)
        response = client_for(org.admin).get(reverse("switching:import_errors", args=[job.pk]))
        lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
        assert [line[0] for line in lines[1:]] == ["2", "3", "4"]


class TestTemplates:
    def test_csv_template_has_bilingual_header_and_imports(self, org, kinds, client_for):
        response = client_for(org.admin).get(reverse("switching:import_template", args=["opportunities", "csv"]))
        content = b"".join(response.streaming_content)
        assert content.startswith(b"\xef\xbb\xbf")
        header = next(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        assert header == template_header("opportunities") and "External ID / 外部编号 *" in header

    def test_xlsx_template_has_a_columns_sheet(self, org, kinds, client_for):
        from openpyxl import load_workbook

        response = client_for(org.admin).get(reverse("switching:import_template", args=["activities", "xlsx"]))
        workbook = load_workbook(io.BytesIO(response.content))
        assert [c.value for c in workbook.worksheets[0][1]] == template_header("activities")
        assert workbook.worksheets[1].max_row == 1 + len(template_header("activities"))


def test_pages_run_a_fixed_number_of_queries(org, kinds, client_for, django_assert_max_num_queries):
    """The preview page with its row errors, the upload page with its list: no query per row."""
    rows = [["external_id", "name", "email"]] + [[str(i), f"n{i}", "not-an-email"] for i in range(40)]
    job = importing.import_set_mapping(job=upload(org.admin, "customers", rows), by=org.admin)
    client = client_for(org.admin)
    for i in range(3):
        upload(org.admin, "customers", [["external_id", "name"], [str(i), "x"]])
    with django_assert_max_num_queries(12):
        assert client.get(job.get_absolute_url()).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(reverse("switching:import_upload")).status_code == 200
