"""Reads of the import wizard: whose jobs a user sees."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from accounts.scope import is_manager_or_admin, log_scope_denial, sees_everything

from ..models import ImportJob


def import_list(*, user: User) -> QuerySet[ImportJob]:
    """An administrator's view: every import; a manager's: their own; anyone else: none."""
    qs = ImportJob.objects.select_related("created_by")
    if sees_everything(user):
        return qs
    if is_manager_or_admin(user):
        return qs.filter(created_by=user)
    return qs.none()


def import_get_for_user(*, user: User, pk: int, light: bool = False) -> ImportJob:
    """Fetch-and-authorize: a job the user may not see is a 404 (like every record out of scope).
    `light`: without the big JSON fields (the progress bar polls every second)."""
    qs = import_list(user=user).select_related("default_owner")
    if light:
        qs = qs.defer("errors", "unknown", "header", "mapping")
    job = qs.filter(pk=pk).first()
    if job is None:
        log_scope_denial(ImportJob.objects.all(), user, pk=pk)
        raise Http404("import")
    return job
