"""Import jobs and export archives (see docs/switching.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from contracts.storage import private_storage
from crm.models import RowProgress

from .columns import KIND_LABELS


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", KIND_LABELS["customers"]
    CONTACTS = "contacts", KIND_LABELS["contacts"]
    OPPORTUNITIES = "opportunities", KIND_LABELS["opportunities"]
    ACTIVITIES = "activities", KIND_LABELS["activities"]


class ImportStatus(models.TextChoices):
    DRAFT = "draft", _("Mapping")
    PREVIEWED = "previewed", _("Previewed")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class UnknownOwnerPolicy(models.TextChoices):
    ASSIGN = "assign", _("Assign their records to the chosen user")
    STOP = "stop", _("Stop: fix the file first")


class ImportJob(RowProgress, models.Model):
    """One file being imported: upload → mapping → preview → confirm → the Celery task.

    The file stays in the private storage (never served); the preview and the run read it again, so a
    file of a million rows costs no staging table. `mapping` holds the person's choices:
    {"columns": {header: key}, "stages": {old name: stage id}, "kinds": {old name: kind id},
    "owners": {old owner: user id}}. The run processes the rows in chunks and commits
    `processed_rows` with each chunk; rows are upserted by `external_id`, so a run killed half-way and
    started again finishes the file without doubling anything.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=ImportKind.choices)
    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.DRAFT)
    file = models.FileField(_("file"), upload_to="switching/imports/%Y/%m/", storage=private_storage, max_length=255)
    file_name = models.CharField(_("file name"), max_length=255)
    header = models.JSONField(_("header"), default=list, blank=True, editable=False)
    mapping = models.JSONField(_("mapping"), default=dict, blank=True)
    unknown_owner_policy = models.CharField(
        _("unknown owners"), max_length=8, choices=UnknownOwnerPolicy.choices, default=UnknownOwnerPolicy.STOP
    )
    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner of unknown owners' records"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+",
    )
    # the preview's figures
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    new_count = models.PositiveIntegerField(_("new"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    unknown_ref_count = models.PositiveIntegerField(_("unknown references"), default=0)
    # new customer rows that look like customers already in the CRM (same name, phone or email under
    # another external id): shown in the preview, imported only as the person confirms
    duplicate_count = models.PositiveIntegerField(_("likely duplicates"), default=0)
    duplicates = models.JSONField(_("likely duplicates"), default=list, blank=True, editable=False)
    errors = models.JSONField(_("row errors"), default=list, blank=True, editable=False)
    unknown = models.JSONField(_("unknown values"), default=dict, blank=True, editable=False)
    # the run
    processed_rows = models.PositiveIntegerField(_("processed rows"), default=0)
    created_rows = models.PositiveIntegerField(_("created"), default=0)
    updated_rows = models.PositiveIntegerField(_("updated"), default=0)
    skipped_rows = models.PositiveIntegerField(_("skipped"), default=0)
    failure = models.TextField(_("failure"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("imported by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the wizard's list: a user's imports, newest first
            models.Index(fields=["created_by", "-created_at"], name="importjob_user_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.file_name}"

    def get_absolute_url(self) -> str:
        return reverse("switching:import_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)


# --- export everything (switching/exporting.py) ----------------------------------------------------------
class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


def export_upload_to(instance: Export, filename: str) -> str:
    """A random name in the private storage: the download view names the file for the person."""
    return f"switching/exports/{uuid.uuid4().hex}.zip"


class Export(models.Model):
    """A zip of the whole CRM (CSV files and a README), built by the Celery task `switching.export_run`.

    The file lives in the private storage (never under MEDIA_ROOT) and is served only to administrators
    by the download view, until `expires_at` (settings.EXPORT_TTL_HOURS after it was finished); the
    periodic task `switching.export_purge_expired` deletes it then and empties `file` (the row stays, as
    the history of who exported when).
    """

    status = models.CharField(_("status"), max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.SET_NULL, null=True,
        related_name="+",
    )
    file = models.FileField(
        _("file"), upload_to=export_upload_to, storage=private_storage, max_length=255, blank=True, editable=False
    )
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0, editable=False)
    row_counts = models.JSONField(_("rows per file"), default=dict, blank=True, editable=False)
    failure = models.TextField(_("failure"), blank=True, editable=False)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the hourly purge: finished exports past their expiry that still hold a file
            models.Index(fields=["expires_at"], condition=~models.Q(file=""), name="export_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.download_name} ({self.get_status_display()})"

    @property
    def download_name(self) -> str:
        stamp = timezone.localtime(self.created_at) if self.created_at else timezone.localtime()
        return f"crm-export-{stamp:%Y%m%d-%H%M}-{self.pk}.zip"

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())

    def is_expired(self, now: datetime | None = None) -> bool:
        """Finished and past its expiry, or its file already purged."""
        if self.status != ExportStatus.DONE:
            return False
        return not self.file or (self.expires_at is not None and self.expires_at <= (now or timezone.now()))

    def is_downloadable(self, now: datetime | None = None) -> bool:
        return self.status == ExportStatus.DONE and not self.is_expired(now)
