"""Writes of the dashboards app: targets (绩效考核)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from django.http import Http404

from accounts.models import User
from accounts.scope import is_manager_or_admin, managed_user_ids

from .models import Target
from .reports import cached_sections_forget
from .selectors import METRICS, month_start


def targets_set(*, user: User, month: date, values: dict[int, dict[str, Any]]) -> list[Target]:
    """Set the targets of `month` for several reps at once (the manager's grid).

    Managers set targets for the users of their team subtree, admins for anyone; a rep sets none.
    A user outside the setter's scope is a 404 and nothing is saved (one transaction)."""
    if not is_manager_or_admin(user):
        raise Http404("targets")
    allowed = managed_user_ids(user)
    month = month_start(month)
    if allowed is not None and not set(values) <= allowed:
        raise Http404("user")
    saved = []
    with transaction.atomic():
        for user_id, fields in sorted(values.items()):
            clean = {m: fields[m] for m in METRICS if m in fields}
            target, _ = Target.objects.select_for_update().get_or_create(user_id=user_id, month=month, defaults=clean)
            for name, value in clean.items():
                setattr(target, name, value)
            target.updated_by = user
            target.save()
            saved.append(target)
        transaction.on_commit(cached_sections_forget)
    return saved
