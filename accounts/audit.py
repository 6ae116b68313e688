"""The audit trail: who changed what, read from django-simple-history's tables (selectors only).

Every model registered with simple-history (`history = HistoricalRecords()` on the model) appears
here by itself, found through simple-history's registry: accounts imports none of the other apps.
The list is one UNION over the history tables, filtered in SQL (user, object type, object id, date
range, kind of change) and paginated there; a page then costs a fixed number of queries: the count,
the page, two per object type on the page (its rows and the rows before them, for the diff), and one
per type of related object shown in a diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

HISTORY_TYPES = {"+": _("created"), "~": _("changed"), "-": _("deleted")}
# Fields whose value names the object well enough in a list (no query needed to show it).
LABEL_FIELDS = ("name", "title", "username", "subject", "number", "code")


@dataclass(frozen=True)
class AuditedModel:
    model: type[models.Model]
    history: type[models.Model]
    content_type: ContentType

    @property
    def key(self) -> str:
        return self.model._meta.label_lower

    @property
    def label(self) -> str:
        return str(self.model._meta.verbose_name)


def audited_models() -> list[AuditedModel]:
    """Every model with a simple-history table, in a stable order (app, model)."""
    from simple_history.models import registered_models
    from simple_history.utils import get_history_model_for_model

    found = []
    for model in set(registered_models.values()):
        if model._meta.auto_created:  # history of many-to-many through tables: not a user-facing object
            continue
        try:
            history = get_history_model_for_model(model)
        except Exception:  # noqa: BLE001 - a model without a usable history manager is skipped
            continue
        found.append((model, history))
    content_types = ContentType.objects.get_for_models(*(model for model, _history in found))
    return sorted(
        (AuditedModel(model, history, content_types[model]) for model, history in found),
        key=lambda audited: audited.key,
    )


@dataclass
class Change:
    field: str
    old: Any
    new: Any


@dataclass
class AuditEntry:
    when: datetime
    kind: str  # "+", "~" or "-"
    user: Any  # a User, or None for changes made by the system (tasks, commands)
    audited: AuditedModel
    object_id: str
    label: str = ""
    reason: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def kind_label(self) -> str:
        return str(HISTORY_TYPES.get(self.kind, self.kind))

    @property
    def object_url(self) -> str | None:
        """Where an admin opens the object (built from the pk, no query): its Django admin page, else
        its own page; none for a deleted object."""
        if self.kind == "-":
            return None
        model = self.audited.model
        if admin.site.is_registered(model):
            opts = model._meta
            try:
                return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[self.object_id])
            except NoReverseMatch:
                pass
        if hasattr(model, "get_absolute_url"):
            try:
                return model(pk=self.object_id).get_absolute_url()
            except Exception:  # noqa: BLE001 - a get_absolute_url needing more than the pk: no link
                return None
        return None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_entry_rows(
    *,
    user_id: int | None = None,
    model_key: str | None = None,
    object_id: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    kind: str | None = None,
) -> models.QuerySet | None:
    """The filtered UNION of every history table, newest first, as tuples
    (history_id, content_type_id, history_date, history_type, history_user_id, object_id, reason).

    None when nothing can match (an unknown object type)."""
    selected = [a for a in audited_models() if model_key in (None, "", a.key)]
    if not selected:
        return None
    parts = []
    for audited in selected:
        pk_name = audited.model._meta.pk.attname
        qs = audited.history._default_manager.all()
        if user_id:
            qs = qs.filter(history_user_id=user_id)
        if object_id:
            try:
                qs = qs.filter(**{pk_name: audited.model._meta.pk.to_python(object_id)})
            except Exception:  # noqa: BLE001 - an id of the wrong shape matches nothing
                qs = qs.none()
        if date_from:
            qs = qs.filter(history_date__gte=_day_start(date_from))
        if date_to:
            qs = qs.filter(history_date__lt=_day_start(date_to + timedelta(days=1)))
        if kind:
            qs = qs.filter(history_type=kind)
        parts.append(
            qs.annotate(
                a_hid=F("history_id"),
                a_ct=Value(audited.content_type.pk, output_field=IntegerField()),
                a_date=F("history_date"),
                a_type=F("history_type"),
                a_user=F("history_user_id"),
                a_obj=Cast(pk_name, output_field=CharField()),
                a_reason=F("history_change_reason"),
            ).values_list("a_hid", "a_ct", "a_date", "a_type", "a_user", "a_obj", "a_reason")
        )
    union = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    return union.order_by("-a_date", "-a_ct", "-a_hid")


def _display(model_field: models.Field, value: Any, related: dict[tuple[type, Any], str]) -> Any:
    if value is None or value == "":
        return ""
    if model_field.is_relation and model_field.many_to_one:
        return related.get((model_field.related_model, value), f"#{value}")
    if model_field.flatchoices:
        return dict(model_field.flatchoices).get(value, value)
    if isinstance(value, datetime):
        return timezone.localtime(value) if timezone.is_aware(value) else value
    return value


def audit_entries_for_rows(rows: list[tuple]) -> list[AuditEntry]:
    """Turn one page of `audit_entry_rows` into entries with their field-level changes."""
    from .models import User

    by_ct = {a.content_type.pk: a for a in audited_models()}
    users = User.objects.in_bulk({row[4] for row in rows if row[4]})
    records: dict[tuple[int, int], Any] = {}
    previous: dict[tuple[int, int], Any] = {}
    for ct_id in {row[1] for row in rows}:
        audited = by_ct[ct_id]
        manager = audited.history._default_manager
        pk_name = audited.model._meta.pk.attname
        earlier = manager.filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id")),
            **{pk_name: OuterRef(pk_name)},
        ).order_by("-history_date", "-history_id")
        page = manager.filter(history_id__in=[row[0] for row in rows if row[1] == ct_id]).annotate(
            prev_id=Subquery(earlier.values("history_id")[:1])
        )
        page = list(page)
        prev_ids = [record.prev_id for record in page if record.prev_id]
        prev_by_id = manager.in_bulk(prev_ids) if prev_ids else {}
        for record in page:
            records[(ct_id, record.history_id)] = record
            previous[(ct_id, record.history_id)] = prev_by_id.get(record.prev_id)

    # What changed, field by field; related objects resolved in one query per related model.
    pending: list[tuple[AuditEntry, list[tuple[models.Field, Any, Any]]]] = []
    wanted: dict[type, set] = {}
    entries = []
    for hid, ct_id, when, kind, user_id, object_id, reason in rows:
        audited = by_ct[ct_id]
        record = records.get((ct_id, hid))
        label = ""
        raw_changes = []
        if record is not None:
            label = next((str(getattr(record, f)) for f in LABEL_FIELDS if getattr(record, f, "")), "")
            before = previous.get((ct_id, hid))
            if kind == "~" and before is not None:
                for tracked in audited.history.tracked_fields:
                    old, new = getattr(before, tracked.attname, None), getattr(record, tracked.attname, None)
                    if old != new:
                        model_field = audited.model._meta.get_field(tracked.name)
                        raw_changes.append((model_field, old, new))
                        if model_field.is_relation and model_field.many_to_one:
                            wanted.setdefault(model_field.related_model, set()).update(
                                v for v in (old, new) if v is not None
                            )
        entry = AuditEntry(
            when=when, kind=kind, user=users.get(user_id), audited=audited, object_id=object_id,
            label=label, reason=reason or "",
        )
        entries.append(entry)
        pending.append((entry, raw_changes))
    related = {
        (model, pk): str(obj) for model, ids in wanted.items() for pk, obj in model._default_manager.in_bulk(ids).items()
    }
    for entry, raw_changes in pending:
        entry.changes = [
            Change(str(f.verbose_name), _display(f, old, related), _display(f, new, related))
            for f, old, new in raw_changes
        ]
    return entries
