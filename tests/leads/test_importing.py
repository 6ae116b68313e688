"""Customer import: preview with per-row errors and duplicates, UTF-8/GBK/XLSX files, idempotent
re-runs, resuming after a crash or a kill, and the whole flow through a real Celery worker."""

import io
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.celery import app
from leads import importing
from leads.models import Customer, CustomerImport, DuplicatePolicy, ImportStatus
from leads.tasks import customer_import_run
from tests.factories import CustomerFactory
from tests.leads.factories import channel

HEADER_ZH = "客户名称,电话,邮箱,等级,行业,来源,标签,联系人,职位,外部编号\n"


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def preview(org, data: bytes, name: str = "customers.csv", **kwargs) -> CustomerImport:
    kwargs.setdefault("owner", org.rep_a)
    kwargs.setdefault("team", None)
    return importing.import_preview(data=data, file_name=name, by=org.rep_a, **kwargs)


def confirm_and_run(imp: CustomerImport) -> dict:
    CustomerImport.objects.filter(pk=imp.pk).update(status=ImportStatus.QUEUED)
    return customer_import_run.apply(args=[imp.pk]).get()


def many_rows(n: int) -> bytes:
    lines = [f"客户{i:03d}有限公司,1380000{i:04d},c{i}@example.cn,,,,,联系人{i},经理,\n" for i in range(n)]
    return csv_bytes(HEADER_ZH + "".join(lines))


@pytest.mark.django_db
class TestPreview:
    def test_per_row_errors(self, org):
        channel("website", name="Website registration")
        data = csv_bytes(
            HEADER_ZH
            + "上海云帆有限公司,13812345678,a@yunfan.cn,A级,software,website,\"VIP,重点\",王伟,CTO,\n"
            + ",13900000000,,,,,,,,\n"  # no name
            + "北京华信,abc,not-an-email,Z,,nowhere,,,,\n"  # bad phone, email, tier, source
            + "上海 云帆 有限公司,13812345678,a@yunfan.cn,,,,,,,\n"  # the same customer as row 2
        )
        imp = preview(org, data)
        assert imp.total_rows == 4 and imp.status == ImportStatus.PREVIEW
        assert set(imp.errors) == {"1", "2", "3"}
        assert "name" in imp.errors["1"]
        assert set(imp.errors["2"]) == {"phone", "email", "tier", "source"}
        assert "row 2" in imp.errors["3"]["name"][0] or "2" in imp.errors["3"]["name"][0]
        assert imp.valid_rows == 1
        first = imp.rows[0]
        assert first["tier"] == "A" or first["tier"] is None
        assert not Customer.objects.exists()  # nothing imported by a preview

    def test_chinese_labels_of_choices_are_accepted(self, org):
        data = csv_bytes("客户名称,状态,类型,等级\n杭州青禾,潜在客户,公司,B\n")
        imp = preview(org, data)
        assert imp.errors == {}, imp.errors

    @pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig"])
    def test_gbk_and_utf8_files(self, org, encoding):
        """Chinese Excel saves CSV as GBK: the same rows read the same in every encoding."""
        data = csv_bytes(HEADER_ZH + "深圳锦程物流有限公司,0755-88886666,,,物流,,,李娜,采购经理,\n", encoding)
        imp = preview(org, data)
        assert imp.errors == {}
        assert imp.rows[0]["name"] == "深圳锦程物流有限公司" and imp.rows[0]["contact_name"] == "李娜"

    def test_xlsx_with_numbers_as_phones(self, org):
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(["Customer name", "Phone", "Email", "Tags"])
        sheet.append(["Acme Trading Co., Ltd.", 13812345678, "info@acme.cn", "VIP；Key account"])
        buffer = io.BytesIO()
        book.save(buffer)
        imp = preview(org, buffer.getvalue(), name="customers.xlsx")
        assert imp.errors == {}
        assert imp.rows[0]["phone"] == "13812345678"

    def test_a_file_without_a_name_column_is_refused(self, org):
        with pytest.raises(importing.ImportFileError):
            preview(org, csv_bytes("foo,bar\n1,2\n"))

    def test_binary_garbage_is_refused(self, org):
        with pytest.raises(importing.ImportFileError):
            preview(org, bytes([0xFF, 0xFE, 0x00, 0x81, 0x30, 0x81]) * 50)

    def test_likely_duplicates_of_existing_customers(self, org):
        existing = CustomerFactory(owner=org.rep_b, name="Someone", phone="13812345678")
        imp = preview(org, csv_bytes(HEADER_ZH + "New Co,138-1234-5678,,,,,,,,\nFresh Co,13900000000,,,,,,,,\n"))
        assert imp.duplicates == {"0": {"similar": [[existing.pk, "Someone", "same phone"]]}}


@pytest.mark.django_db
class TestRun:
    def test_rows_become_customers_with_contacts_and_tags(self, org):
        data = csv_bytes(HEADER_ZH + "上海云帆有限公司,13812345678,a@yunfan.cn,A,software,,\"VIP,重点\",王伟,CTO,EXT-1\n")
        imp = preview(org, data)
        assert confirm_and_run(imp)["created"] == 1
        customer = Customer.objects.get()
        assert (customer.owner, customer.tier, customer.external_id) == (org.rep_a, "A", "EXT-1")
        assert customer.contacts.get().title == "CTO"
        assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "重点"]
        assert customer.history.first().history_change_reason.startswith("import") or customer.history.exists()

    def test_into_a_team_pool(self, org):
        imp = preview(org, many_rows(2), owner=None, team=org.team_a)
        confirm_and_run(imp)
        assert list(Customer.objects.values_list("owner", "team")) == [(None, org.team_a.pk)] * 2

    def test_rerunning_the_same_file_does_not_double_rows(self, org):
        data = many_rows(30)
        confirm_and_run(preview(org, data))
        assert Customer.objects.count() == 30
        second = preview(org, data)
        assert len([d for d in second.duplicates.values() if "update" in d]) == 30
        result = confirm_and_run(second)
        second.refresh_from_db()
        assert Customer.objects.count() == 30
        assert (second.created_count, second.updated_count, second.skipped_count) == (0, 0, 30)
        assert result["status"] == ImportStatus.DONE

    def test_a_changed_row_updates_the_customer(self, org):
        confirm_and_run(preview(org, csv_bytes(HEADER_ZH + "Alpha,13812345678,,,,,,,,K-1\n")))
        confirm_and_run(preview(org, csv_bytes(HEADER_ZH + "Alpha,13812345678,alpha@example.cn,,,,,,,K-1\n")))
        assert Customer.objects.get().email == "alpha@example.cn"

    def test_duplicates_are_skipped_or_imported_by_choice(self, org):
        CustomerFactory(owner=org.rep_b, phone="13800000001")
        data = many_rows(3)  # row 2 has 13800000001
        confirm_and_run(preview(org, data, duplicate_policy=DuplicatePolicy.SKIP))
        assert Customer.objects.count() == 1 + 2
        Customer.objects.filter(owner=org.rep_a).delete()
        confirm_and_run(preview(org, data, duplicate_policy=DuplicatePolicy.CREATE))
        assert Customer.objects.count() == 1 + 3

    def test_a_crash_half_way_is_resumed_without_doubles(self, org, monkeypatch):
        """Row 61 fails (a crash in the second chunk): the first chunk stays, the second is rolled
        back, the import is marked failed; the re-run imports the rest, nothing twice."""
        imp = preview(org, many_rows(80))
        real = importing._apply_row

        def flaky(customer_import, row, index):
            if index == "60":
                raise RuntimeError("worker lost")
            return real(customer_import, row, index)

        monkeypatch.setattr(importing, "_apply_row", flaky)
        with pytest.raises(RuntimeError):
            confirm_and_run(imp)
        imp.refresh_from_db()
        assert (imp.status, imp.processed_rows, imp.created_count) == (ImportStatus.FAILED, 50, 50)
        assert Customer.objects.count() == 50 and "worker lost" in imp.failure
        monkeypatch.setattr(importing, "_apply_row", real)
        customer_import_run.apply(args=[imp.pk]).get()
        imp.refresh_from_db()
        assert (imp.status, imp.processed_rows, imp.created_count) == (ImportStatus.DONE, 80, 80)
        assert Customer.objects.count() == 80
        assert Customer.objects.values("external_id").distinct().count() == 80

    def test_a_killed_run_is_resumed_and_even_a_restart_from_zero_doubles_nothing(self, org):
        imp = preview(org, many_rows(120))
        CustomerImport.objects.filter(pk=imp.pk).update(status=ImportStatus.QUEUED)
        importing.import_run(import_id=imp.pk, max_rows=50)  # the worker was killed after one chunk
        imp.refresh_from_db()
        assert imp.status == ImportStatus.RUNNING and imp.processed_rows == 50
        # the progress counter is lost too (worst case): the keys still prevent doubles
        CustomerImport.objects.filter(pk=imp.pk).update(processed_rows=0, created_count=0)
        customer_import_run.apply(args=[imp.pk]).get()
        imp.refresh_from_db()
        assert imp.status == ImportStatus.DONE and Customer.objects.count() == 120
        assert imp.created_count == 70 and imp.skipped_count == 50

    def test_a_preview_is_not_run_before_it_is_confirmed(self, org):
        imp = preview(org, many_rows(2))
        assert customer_import_run.apply(args=[imp.pk]).get() == {"status": ImportStatus.PREVIEW}
        assert not Customer.objects.exists()


@pytest.mark.django_db
class TestImportPages:
    def test_upload_shows_the_preview(self, org, client_for):
        client = client_for(org.rep_a)
        upload = SimpleUploadedFile("c.csv", csv_bytes(HEADER_ZH + "Alpha,13812345678,,,,,,,,\n,13900000000,,,,,,,,\n", "gbk"))
        response = client.post(reverse("leads:import_upload"), {"file": upload, "assign_to": "me", "duplicate_policy": "skip"})
        imp = CustomerImport.objects.get()
        assert response.status_code == 302 and response["Location"] == imp.get_absolute_url()
        body = client.get(imp.get_absolute_url()).content.decode()
        assert "Alpha" in body and "table-danger" in body and "confirm-import" in body

    def test_another_users_import_is_404(self, org, client_for):
        imp = preview(org, many_rows(1))
        assert client_for(org.rep_a2).get(imp.get_absolute_url()).status_code == 404
        assert client_for(org.rep_a2).get(reverse("leads:import_progress", args=[imp.pk])).status_code == 404

    def test_template_download(self, org, client_for):
        response = client_for(org.rep_a).get(reverse("leads:import_template"))
        header = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[0].split(",")
        assert importing.map_header(header)[0] == "name"

    def test_progress_stops_polling_when_done(self, org, client_for):
        imp = preview(org, many_rows(1))
        confirm_and_run(imp)
        response = client_for(org.rep_a).get(reverse("leads:import_progress", args=[imp.pk]))
        assert response.status_code == 286 and "100%" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_whole_flow_through_a_real_worker(org, client_for):
    """Upload → preview → confirm: the Celery worker imports the rows; the progress bar reaches 100%."""
    client = client_for(org.rep_a)
    upload = SimpleUploadedFile("c.csv", many_rows(60))
    client.post(reverse("leads:import_upload"), {"file": upload, "assign_to": "me", "duplicate_policy": "skip"})
    imp = CustomerImport.objects.get()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        client.post(imp.get_absolute_url(), {"duplicate_policy": "skip"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = client.get(reverse("leads:import_progress", args=[imp.pk]))
            if response.status_code == 286:
                break
            time.sleep(0.2)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE and imp.created_count == 60
    assert Customer.objects.filter(owner=org.rep_a).count() == 60
