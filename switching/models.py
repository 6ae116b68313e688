"""Import jobs and export archives (see docs/switching.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from contracts.storage import private_storage

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


class ImportJob(models.Model):
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
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)
