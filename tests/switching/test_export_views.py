"""The export pages: administrators only (404 for everyone else), the request, the polling, the download
(and its security log line), the expiry (410), and the whole flow through a real Celery worker."""

from __future__ import annotations

import io
import logging
import time
import zipfile
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from crm.celery import app
from switching.export_tasks import export_run
from switching.models import Export, ExportStatus

LIST = reverse("switching:export_list")
ROWS = reverse("switching:export_rows")
NEW = reverse("switching:export_request")


def download_url(export: Export) -> str:
    return reverse("switching:export_download", args=[export.pk])


def done_export(user) -> Export:
    export = Export.objects.create(requested_by=user)
    export_run.apply(args=[export.pk]).get()
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE
    return export


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("who", ["rep_a", "manager_a", "director"])
    def test_everyone_but_an_admin_gets_404_everywhere(self, org, client_for, who):
        export = done_export(org.admin)
        client = client_for(getattr(org, who))
        assert client.get(LIST).status_code == 404
        assert client.get(ROWS).status_code == 404
        assert client.post(NEW).status_code == 404
        assert client.get(download_url(export)).status_code == 404
        assert Export.objects.count() == 1

    def test_anonymous_is_sent_to_the_login(self, org, client):
        export = done_export(org.admin)
        for url in (LIST, download_url(export)):
            response = client.get(url)
            assert response.status_code == 302 and "login" in response["Location"]

    def test_an_unknown_export_is_404(self, org, client_for):
        assert client_for(org.admin).get(reverse("switching:export_download", args=[999999])).status_code == 404


@pytest.mark.django_db
class TestExportPage:
    def test_admin_sees_the_page_and_the_latest_exports(self, org, client_for, django_assert_max_num_queries):
        for _ in range(3):
            done_export(org.admin)
        Export.objects.create(requested_by=org.admin, status=ExportStatus.FAILED, failure="OSError: disk full")
        client = client_for(org.admin)
        with django_assert_max_num_queries(8):
            response = client.get(LIST)
        body = response.content.decode()
        assert response.status_code == 200 and "Export everything" in body
        assert body.count('data-status="done"') == 3 and "OSError: disk full" in body
        assert body.count("/download/") == 3
        assert 'hx-trigger="every 2s"' not in body  # nothing pending: no polling

    def test_request_queues_the_task_after_commit(self, org, client_for, django_capture_on_commit_callbacks):
        client = client_for(org.admin)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.post(NEW, follow=True)
        export = Export.objects.get()
        assert export.status == ExportStatus.QUEUED and export.requested_by == org.admin
        assert len(callbacks) == 1
        assert "The export has started" in response.content.decode()
        assert 'hx-trigger="every 2s"' in response.content.decode()  # the list polls while it runs

    def test_polling_stops_when_nothing_is_pending(self, org, client_for):
        client = client_for(org.admin)
        pending = Export.objects.create(requested_by=org.admin)
        assert client.get(ROWS).status_code == 200
        export_run.apply(args=[pending.pk]).get()
        response = client.get(ROWS)
        assert response.status_code == 286 and 'data-status="done"' in response.content.decode()

    def test_page_in_chinese(self, org, client_for):
        done_export(org.admin)
        client = client_for(org.admin)
        client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
        body = client.get(LIST).content.decode()
        assert "全量导出" in body and "下载" in body


@pytest.mark.django_db
class TestDownload:
    def test_admin_downloads_the_zip_and_it_is_logged(self, org, client_for, caplog):
        export = done_export(org.admin)
        with caplog.at_level(logging.INFO, logger="crm.security"):
            response = client_for(org.admin).get(download_url(export))
        assert response.status_code == 200 and response["Content-Type"] == "application/zip"
        assert f'filename="{export.download_name}"' in response["Content-Disposition"]
        assert response["Cache-Control"] == "private, no-store"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        assert "README.txt" in archive.namelist() and "customers.csv" in archive.namelist()
        logged = [r for r in caplog.records if r.getMessage().startswith("export_downloaded")]
        assert logged and f"export={export.pk}" in logged[0].getMessage() and "user=admin" in logged[0].getMessage()

    def test_a_queued_or_failed_export_has_nothing_to_download(self, org, client_for):
        client = client_for(org.admin)
        for status in (ExportStatus.QUEUED, ExportStatus.RUNNING, ExportStatus.FAILED):
            export = Export.objects.create(requested_by=org.admin, status=status)
            assert client.get(download_url(export)).status_code == 404

    def test_after_expiry_410_with_a_clear_message(self, org, client_for):
        export = done_export(org.admin)
        Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        response = client_for(org.admin).get(download_url(export))
        assert response.status_code == 410
        assert "has been deleted" in response.content.decode()
        page = client_for(org.admin).get(LIST).content.decode()
        assert "Expired" in page and download_url(export) not in page

    def test_after_the_purge_410(self, org, client_for):
        from switching.export_tasks import export_purge_expired

        export = done_export(org.admin)
        Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        export_purge_expired.apply().get()
        assert client_for(org.admin).get(download_url(export)).status_code == 410

    def test_a_file_missing_from_the_storage_is_410(self, org, client_for):
        export = done_export(org.admin)
        export.file.storage.delete(export.file.name)
        assert client_for(org.admin).get(download_url(export)).status_code == 410


@pytest.mark.django_db(transaction=True)
def test_the_whole_flow_through_a_real_worker(org, client_for):
    """Request on the page → the Celery worker builds the zip → the list stops polling → download."""
    client = client_for(org.admin)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        client.post(NEW)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.get(ROWS).status_code == 286:
                break
            time.sleep(0.2)
    export = Export.objects.get()
    assert export.status == ExportStatus.DONE, export.failure
    response = client.get(download_url(export))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.read("users.csv").decode("utf-8-sig").count("\r\n") == 8  # header + the 7 users of the org


@pytest.mark.django_db
def test_admin_lists_exports_read_only(org, client_for):
    export = done_export(org.admin)
    client = client_for(org.admin)
    assert client.get(reverse("admin:switching_export_changelist")).status_code == 200
    page = client.get(reverse("admin:switching_export_change", args=[export.pk]))
    assert page.status_code == 200 and "customers.csv" in page.content.decode()
    assert client.get(reverse("admin:switching_export_add")).status_code == 403


@pytest.mark.django_db
def test_the_user_menu_links_the_export_for_admins_only(org, client_for):
    assert f'href="{LIST}" id="nav-export-link"' in client_for(org.admin).get(LIST).content.decode()
    page = client_for(org.manager_a).get(reverse("switching:import_upload")).content.decode()
    assert "nav-import-link" in page and "nav-export-link" not in page
