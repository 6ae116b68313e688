"""Every write of the customers app: profiles and contacts, ownership (pool, claims, assignment,
automatic return), tiers, cadence, merge and web-to-lead. Views, the API, admin actions and tasks call
these; each runs in a transaction, locks what races, and leaves a history row saying why."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from accounts.models import Role, Team, User
from accounts.scope import is_manager_or_admin, managed_user_ids, user_team_ids

from .models import (
    Contact,
    Customer,
    CustomerMerge,
    CustomerStatus,
    FollowUpCadence,
    LeadSettings,
    OwnershipChange,
    OwnershipKind,
    SourceChannel,
    Tag,
    Tier,
    TierRule,
    TierSource,
    WebAssignment,
)
from .tiering import compute_metrics

logger = logging.getLogger(__name__)

# Follow-up cadence per tier, in days, when the admin has not set one (FollowUpCadence rows).
DEFAULT_CADENCE_DAYS = {"A": 7, "B": 14, "C": 30}

# The fields of the profile form (and of the API): what `customer_update` may change.
PROFILE_FIELDS = [
    "name", "customer_type", "status", "industry", "region", "address", "size", "website", "phone",
    "email", "source", "needs", "requirements", "next_follow_up_at", "external_id",
]


class EditConflict(Exception):
    """Someone else saved the customer after the form was opened (its version moved on)."""

    def __init__(self, current: Customer, changes: dict[str, tuple[Any, Any]]):
        super().__init__(_("This customer was changed by someone else since you opened it."))
        self.current = current
        self.changes = changes  # field -> (their value now, your value)


def _history(customer: Customer, *, by: User | None, reason: str) -> None:
    customer._change_reason = reason[:100]
    if by is not None:
        customer._history_user = by


# --- cadence and contacts -------------------------------------------------------------------------
def cadence_days(tier: str) -> int:
    row = FollowUpCadence.objects.filter(tier=tier).values_list("days", flat=True).first()
    return row or DEFAULT_CADENCE_DAYS.get(tier, 30)


@transaction.atomic
def customer_touch(*, customer: Customer, contacted_at: datetime) -> Customer:
    """Record a contact with the customer (a done activity): last contacted, and the next follow-up
    date from the tier's cadence (admin-editable). Never moves last-contacted backwards (a late-logged
    old call)."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.last_contacted_at is None or contacted_at > locked.last_contacted_at:
        locked.last_contacted_at = contacted_at
        locked.next_follow_up_at = contacted_at + timedelta(days=cadence_days(locked.tier))
        locked.save(update_fields=["last_contacted_at", "next_follow_up_at", "updated_at"])
    return locked


# --- create and edit ------------------------------------------------------------------------------
def _check_owner(*, by: User, owner: User | None, team: Team | None) -> None:
    if owner is not None:
        allowed = managed_user_ids(by)
        if not owner.is_active or (allowed is not None and owner.pk not in allowed):
            raise ValidationError({"owner": _("You cannot give customers to this user.")}, code="owner_out_of_scope")
    elif team is not None:
        teams = user_team_ids(by)
        if teams is not None and team.pk not in teams:
            raise ValidationError({"team": _("You cannot put customers into this team's pool.")}, code="team_out_of_scope")


def _set_tags(customer: Customer, tags: Iterable[str] | None) -> None:
    if tags is None:
        return
    names = sorted({t.strip()[:50] for t in tags if t and t.strip()})
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    customer.tags.set(existing.values())


@transaction.atomic
def customer_create(
    *,
    by: User | None,
    name: str,
    owner: User | None = None,
    team: Team | None = None,
    tags: Iterable[str] | None = None,
    contacts: Iterable[dict] = (),
    reason: str = "",
    **fields: Any,
) -> Customer:
    """A new customer, owned by `owner` or (owner None) in `team`'s lead pool. Its tier is computed from
    the rules, its profile counts as reviewed now."""
    unknown = set(fields) - set(PROFILE_FIELDS) - {"tier", "last_contacted_at", "status"}
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    if by is not None:
        _check_owner(by=by, owner=owner, team=team)
    now = timezone.now()
    customer = Customer(
        name=name.strip(), owner=owner, team=team or (owner.team if owner else None), created_by=by,
        profile_reviewed_at=now, assigned_at=now if owner else None, **fields,
    )
    if not fields.get("external_id"):
        customer.external_id = None
    customer.full_clean(exclude=["owner", "team", "source", "tags"])
    _history(customer, by=by, reason=reason or _("created"))
    customer.save()
    for contact in contacts:
        if contact.get("name"):
            Contact.objects.create(customer=customer, **contact)
    _set_tags(customer, tags)
    OwnershipChange.objects.create(customer=customer, kind=OwnershipKind.CREATED, to_owner=owner, by=by, reason=reason)
    if "tier" not in fields:
        tier_recompute(customer=customer)
    customer.refresh_from_db()
    return customer


def _diff(current: Customer, data: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for field, value in data.items():
        if field == "tags":
            now = sorted(current.tags.values_list("name", flat=True))
            if sorted(value or []) != now:
                changes[field] = (", ".join(now), ", ".join(sorted(value or [])))
            continue
        ours = value
        theirs = getattr(current, field)
        if field in ("phone",):
            from .normalise import normalise_phone

            ours = normalise_phone(ours)
        if field == "email":
            ours = (ours or "").strip().lower()
        if (theirs or None) != (ours or None):
            changes[field] = (theirs, ours)
    return changes


@transaction.atomic
def customer_update(
    *, customer: Customer, by: User | None, data: dict[str, Any], expected_version: int | None = None,
    reason: str = "",
) -> Customer:
    """Save profile fields (`PROFILE_FIELDS`, `tags`). With `expected_version` (the version the form
    was opened at) a save over someone else's newer change raises EditConflict instead of overwriting.
    """
    unknown = set(data) - set(PROFILE_FIELDS) - {"tags"}
    if unknown:
        raise TypeError(f"unknown customer fields: {sorted(unknown)}")
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if expected_version is not None and locked.version != expected_version:
        changes = _diff(locked, data)
        raise EditConflict(locked, changes)
    tags = data.pop("tags", None)
    for field, value in data.items():
        setattr(locked, field, value)
    if "external_id" in data and not data["external_id"]:
        locked.external_id = None
    locked.full_clean(exclude=["owner", "team", "source", "tags"])
    locked.version += 1
    locked.profile_reviewed_at = timezone.now()
    _history(locked, by=by, reason=reason)
    locked.save()
    _set_tags(locked, tags)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def customer_mark_reviewed(*, customer: Customer, by: User | None) -> Customer:
    """The profile was checked and is current: clears the "needs update" flag."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    locked.profile_reviewed_at = timezone.now()
    _history(locked, by=by, reason=_("profile reviewed"))
    locked.save(update_fields=["profile_reviewed_at", "updated_at"])
    return locked


@transaction.atomic
def contact_save(*, customer: Customer, by: User | None, contact: Contact | None = None, **fields: Any) -> Contact:
    """Create (contact None) or update a contact of the customer."""
    if contact is None:
        contact = Contact(customer=customer)
    elif contact.customer_id != customer.pk:
        raise PermissionDenied
    for field, value in fields.items():
        setattr(contact, field, value)
    contact.full_clean(exclude=["customer"])
    if by is not None:
        contact._history_user = by
    if contact.pk is not None:  # an edit: the next version, read under the row lock (API ETag/If-Match)
        contact.version = Contact.objects.select_for_update().values_list("version", flat=True).get(pk=contact.pk) + 1
    contact.save()
    Customer.objects.filter(pk=customer.pk).update(updated_at=timezone.now())
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, by: User | None) -> None:
    if by is not None:
        contact._history_user = by
    contact.delete()


# --- ownership: the lead pool ---------------------------------------------------------------------
class ClaimLost(ValidationError):
    """The lead is no longer in the pool (someone else claimed it first) or not in the user's pool."""


def _ownership(
    customer: Customer, *, kind: str, by: User | None, to: User | None, reason: str = "", now: datetime | None = None
) -> None:
    """Move the (locked) customer to `to` (None: its team's pool), with history and the change log."""
    previous = customer.owner
    if to is None and customer.team_id is None and previous is not None:
        customer.team_id = previous.team_id
    if to is not None:
        customer.team_id = to.team_id or customer.team_id
    customer.owner = to
    customer.assigned_at = (now or timezone.now()) if to is not None else None
    customer.version += 1
    _history(customer, by=by, reason=reason or str(OwnershipKind(kind).label))
    customer.save(update_fields=["owner", "team", "assigned_at", "version", "updated_at"])
    OwnershipChange.objects.create(
        customer=customer, kind=kind, from_owner=previous, to_owner=to, by=by, reason=reason
    )


@transaction.atomic
def customer_claim(*, customer_id: int, by: User) -> Customer:
    """A rep takes a lead from their team's pool. Of two simultaneous claims exactly one wins: the
    row is locked, and the loser finds it owned and gets ClaimLost."""
    teams = user_team_ids(by)
    locked = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if locked is None or (teams is not None and locked.team_id not in teams):
        raise ClaimLost(_("This lead is not in your lead pool."), code="not_in_pool")
    if locked.owner_id is not None:
        raise ClaimLost(_("Someone else has already claimed this lead."), code="already_claimed")
    _ownership(locked, kind=OwnershipKind.CLAIMED, by=by, to=by)
    locked.refresh_from_db()
    return locked


def _check_assignee(*, by: User, to: User) -> None:
    if not is_manager_or_admin(by):
        raise PermissionDenied(_("Only managers can assign customers."))
    allowed = managed_user_ids(by)
    if not to.is_active or (allowed is not None and to.pk not in allowed):
        raise ValidationError(_("%(user)s is not in a team you manage.") % {"user": to}, code="assignee_out_of_scope")


@transaction.atomic
def customer_assign(*, customer: Customer, to: User, by: User, reason: str = "") -> Customer:
    """A manager gives the customer to a user in the teams they manage (assign or reassign)."""
    _check_assignee(by=by, to=to)
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.owner_id == to.pk:
        return locked
    _ownership(locked, kind=OwnershipKind.ASSIGNED, by=by, to=to, reason=reason)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def customer_release(*, customer: Customer, by: User, reason: str = "") -> Customer:
    """The owner (or a manager) puts the customer back into its team's pool."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.owner_id is None:
        return locked
    if locked.owner_id != by.pk and not is_manager_or_admin(by):
        raise PermissionDenied(_("Only the owner or a manager can release this customer."))
    _ownership(locked, kind=OwnershipKind.RELEASED, by=by, to=None, reason=reason)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def customer_bulk_assign(*, customer_ids: Iterable[int], to: User, by: User) -> int:
    """Assign every given customer that `by` may see to `to`; returns how many changed owner."""
    _check_assignee(by=by, to=to)
    changed = 0
    for customer in (
        Customer.objects.visible_to(by).filter(pk__in=list(customer_ids)).exclude(owner=to)
        .select_related("owner").select_for_update(of=("self",)).order_by("pk")
    ):
        _ownership(customer, kind=OwnershipKind.ASSIGNED, by=by, to=to)
        changed += 1
    return changed


@transaction.atomic
def customer_bulk_tag(*, customer_ids: Iterable[int], tag_name: str, by: User) -> int:
    """Add a tag to every given customer that `by` may see; returns how many got it."""
    tag_name = tag_name.strip()[:50]
    if not tag_name:
        raise ValidationError(_("Give the tag a name."), code="tag_empty")
    tag, _created = Tag.objects.get_or_create(name=tag_name)
    ids = list(
        Customer.objects.visible_to(by).filter(pk__in=list(customer_ids)).exclude(tags=tag).values_list("pk", flat=True)
    )
    through = Customer.tags.through
    through.objects.bulk_create([through(customer_id=pk, tag_id=tag.pk) for pk in ids], ignore_conflicts=True)
    Customer.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    return len(ids)


def pool_return_candidates(*, now: datetime | None = None, days: int | None = None):
    """Owned leads not contacted (nor assigned) for `days` days."""
    now = now or timezone.now()
    days = days if days is not None else LeadSettings.load().pool_return_days
    cutoff = now - timedelta(days=days)
    return (
        Customer.objects.filter(status=CustomerStatus.LEAD, owner__isnull=False)
        .annotate(quiet_since=Coalesce("last_contacted_at", "assigned_at", "created_at"))
        .filter(quiet_since__lt=cutoff)
    )


def pool_return_scan(*, now: datetime | None = None, batch: int = 500) -> int:
    """Beat: owned leads with no contact for N days (admin setting) go back to their team's pool, each
    with a history row and an ownership-change entry. Rows another transaction holds are skipped
    (the next scan takes them), so two scans never return one lead twice."""
    settings_row = LeadSettings.load()
    if not settings_row.pool_return_enabled:
        return 0
    days = settings_row.pool_return_days
    reason = _("no contact for %(days)s days") % {"days": days}
    returned = 0
    while True:
        with transaction.atomic():
            ids = list(pool_return_candidates(now=now, days=days).order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            locked = list(
                pool_return_candidates(now=now, days=days).filter(pk__in=ids).select_related("owner")
                .select_for_update(skip_locked=True, of=("self",))
            )
            for customer in locked:
                _ownership(customer, kind=OwnershipKind.RETURNED, by=None, to=None, reason=reason, now=now)
            returned += len(locked)
            if not locked:
                break
    return returned


# --- tiers ----------------------------------------------------------------------------------------
def _fmt(value: Decimal) -> str:
    value = Decimal(value)
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value.quantize(Decimal('0.01')):f}"


def tier_evaluate(customer_ids: list[int], rules: list[TierRule] | None = None) -> dict[int, tuple[str, list[dict]]]:
    """{customer id: (tier, explanation)} from the active rules: the best tier (A, then B) one of whose
    rules the customer meets, else C. The explanation lists the rules checked, met or not."""
    rules = list(TierRule.objects.filter(is_active=True)) if rules is None else rules
    values = compute_metrics({r.metric for r in rules}, customer_ids)
    result = {}
    for pk in customer_ids:
        explanation: list[dict] = []
        tier = Tier.C
        for candidate in (Tier.A, Tier.B):
            met_any = False
            for rule in (r for r in rules if r.tier == candidate):
                value = values[rule.metric].get(pk, Decimal(0))
                met = value >= rule.threshold
                met_any = met_any or met
                explanation.append(
                    {"tier": str(candidate), "metric": rule.metric, "value": _fmt(value), "threshold": _fmt(rule.threshold), "met": met}
                )
            if met_any:
                tier = candidate
                explanation = [e for e in explanation if e["met"] or e["tier"] != candidate]
                break
        result[pk] = (str(tier), explanation)
    return result


@transaction.atomic
def tier_recompute(*, customer: Customer, by: User | None = None) -> Customer:
    """Recompute one customer's tier from the rules (a hand-set tier stays; its explanation updates)."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    tier, explanation = tier_evaluate([locked.pk])[locked.pk]
    locked.tier_explanation = explanation
    locked.tier_computed_at = timezone.now()
    fields = ["tier_explanation", "tier_computed_at"]
    if locked.tier_source == TierSource.RULES and locked.tier != tier:
        locked.tier = tier
        fields += ["tier", "updated_at"]
        _history(locked, by=by, reason=_("tier recomputed from the rules"))
        locked.save(update_fields=fields)
    else:
        Customer.objects.filter(pk=locked.pk).update(tier_explanation=explanation, tier_computed_at=locked.tier_computed_at)
    return locked


def tier_recompute_all(*, chunk: int = 1000) -> dict[str, int]:
    """Nightly: recompute every customer's tier in chunks (a fixed number of queries per chunk);
    changed tiers get a history row each, the rest only a fresh explanation."""
    rules = list(TierRule.objects.filter(is_active=True))
    now = timezone.now()
    last_pk, seen, changed = 0, 0, 0
    reason = _("tier recomputed from the rules")
    while True:
        with transaction.atomic():
            batch = list(Customer.objects.filter(pk__gt=last_pk).order_by("pk")[:chunk])
            if not batch:
                break
            last_pk = batch[-1].pk
            evaluated = tier_evaluate([c.pk for c in batch], rules)
            moved = []
            for customer in batch:
                tier, explanation = evaluated[customer.pk]
                customer.tier_explanation = explanation
                customer.tier_computed_at = now
                if customer.tier_source == TierSource.RULES and customer.tier != tier:
                    customer.tier = tier
                    moved.append(customer)
            Customer.objects.bulk_update(batch, ["tier_explanation", "tier_computed_at"])
            if moved:
                bulk_update_with_history(moved, Customer, ["tier"], default_change_reason=reason[:100])
            seen += len(batch)
            changed += len(moved)
    return {"customers": seen, "changed": changed}


@transaction.atomic
def tier_override(*, customer: Customer, tier: str, reason: str, by: User) -> Customer:
    """Set the tier by hand, with a reason (kept in history); the nightly recompute leaves it."""
    if tier not in Tier.values:
        raise ValidationError({"tier": _("Unknown tier.")}, code="tier_unknown")
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the tier is set by hand.")}, code="reason_required")
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    locked.tier = tier
    locked.tier_source = TierSource.MANUAL
    locked.tier_reason = reason.strip()[:500]
    locked.version += 1
    _history(locked, by=by, reason=_("tier set by hand: %(reason)s") % {"reason": reason.strip()})
    locked.save(update_fields=["tier", "tier_source", "tier_reason", "version", "updated_at"])
    locked.refresh_from_db()
    return locked


@transaction.atomic
def tier_override_clear(*, customer: Customer, by: User) -> Customer:
    """Back to the rules: the tier is computed again."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    locked.tier_source = TierSource.RULES
    locked.tier_reason = ""
    locked.version += 1
    _history(locked, by=by, reason=_("tier back to the rules"))
    locked.save(update_fields=["tier_source", "tier_reason", "version", "updated_at"])
    return tier_recompute(customer=locked, by=by)


# --- merge ----------------------------------------------------------------------------------------
MERGE_FILL_FIELDS = [
    "customer_type", "industry", "region", "address", "size", "website", "phone", "email", "source",
    "needs", "requirements", "next_follow_up_at", "last_contacted_at", "owner", "team",
]


def _serialize(obj) -> dict:
    return json.loads(serializers.serialize("json", [obj]))[0]


def _move_rows(model, field_name: str, loser_pk, survivor_pk, conflicts: list) -> list:
    """Point every `model` row whose `field_name` is the loser at the survivor; rows that cannot move
    (a unique constraint: the survivor already has one) are kept in `conflicts` and deleted."""
    qs = model._base_manager.filter(**{field_name: loser_pk})
    ids = list(qs.values_list("pk", flat=True))
    if not ids:
        return []
    changes = {field_name: survivor_pk}
    if any(field.name == "version" for field in model._meta.concrete_fields):  # the API's ETag moves on
        changes["version"] = F("version") + 1
    try:
        with transaction.atomic():
            model._base_manager.filter(pk__in=ids).update(**changes)
        return ids
    except IntegrityError:
        pass
    moved = []
    for obj in model._base_manager.filter(pk__in=ids):
        try:
            with transaction.atomic():
                model._base_manager.filter(pk=obj.pk).update(**changes)
            moved.append(obj.pk)
        except IntegrityError:
            conflicts.append(_serialize(obj))
            obj.delete()
    return moved


def merge_related_counts(customer: Customer) -> dict[str, int]:
    """How many rows of each related kind point at the customer (for the merge confirmation)."""
    counts = {}
    for rel in Customer._meta.related_objects:
        if rel.related_model is CustomerMerge:
            continue
        if rel.many_to_many:
            through = rel.through
            n = through._base_manager.filter(**{rel.field.m2m_reverse_field_name(): customer.pk}).count()
        else:
            n = rel.related_model._base_manager.filter(**{rel.field.attname: customer.pk}).count()
        if n:
            counts[str(rel.related_model._meta.verbose_name_plural)] = n
    return counts


@transaction.atomic
def customer_merge(*, survivor: Customer, merged: Customer, by: User) -> CustomerMerge:
    """Fold `merged` into `survivor` (managers and admins, both customers in their scope).

    Every row of every model pointing at the merged customer (ForeignKey, OneToOne, ManyToMany and
    generic relations, including apps added later) is moved to the survivor; the survivor's empty
    fields take the merged customer's values, tags are united; the merged customer is deleted and a
    CustomerMerge keeps its fields, the ids moved and any row that could not move."""
    if not is_manager_or_admin(by):
        raise PermissionDenied(_("Only managers and admins can merge customers."))
    if survivor.pk == merged.pk:
        raise ValidationError(_("A customer cannot be merged with itself."), code="merge_self")
    visible = Customer.objects.visible_to(by)
    locked = {c.pk: c for c in visible.select_for_update().filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")}
    if len(locked) != 2:
        raise PermissionDenied(_("Both customers must be in your scope."))
    keep, gone = locked[survivor.pk], locked[merged.pk]
    snapshot = {"customer": _serialize(gone), "contacts": [], "conflicts": []}
    moved: dict[str, list] = {}

    for rel in Customer._meta.related_objects:
        model = rel.related_model
        if model is CustomerMerge:
            continue
        label = model._meta.label
        if rel.many_to_many:
            through = rel.through
            ids = _move_rows(through, rel.field.m2m_reverse_field_name(), gone.pk, keep.pk, snapshot["conflicts"])
        else:
            ids = _move_rows(model, rel.field.attname, gone.pk, keep.pk, snapshot["conflicts"])
        if ids:
            moved[label] = ids

    # generic relations (content type + object id) pointing at the merged customer
    customer_ct = ContentType.objects.get_for_model(Customer)
    from django.apps import apps

    for model in apps.get_models():
        for gfk in (f for f in model._meta.private_fields if isinstance(f, GenericForeignKey)):
            ct_field = model._meta.get_field(gfk.ct_field)
            fk_field = model._meta.get_field(gfk.fk_field)
            qs = model._base_manager.filter(**{ct_field.attname: customer_ct.pk, gfk.fk_field: fk_field.to_python(gone.pk)})
            ids = list(qs.values_list("pk", flat=True))
            if ids:
                qs.update(**{gfk.fk_field: fk_field.to_python(keep.pk)})
                moved.setdefault(model._meta.label, []).extend(ids)

    # the survivor's own many-to-many (tags) and its empty fields
    keep.tags.add(*gone.tags.all())
    for field in MERGE_FILL_FIELDS:
        attname = Customer._meta.get_field(field).attname
        if getattr(keep, attname) in (None, "") and getattr(gone, attname) not in (None, ""):
            setattr(keep, attname, getattr(gone, attname))
    if gone.last_contacted_at and keep.last_contacted_at and gone.last_contacted_at > keep.last_contacted_at:
        keep.last_contacted_at = gone.last_contacted_at
    if not keep.external_id and gone.external_id:
        keep.external_id = gone.external_id
        Customer.objects.filter(pk=gone.pk).update(external_id=None)
    if keep.owner_id and not keep.assigned_at:
        keep.assigned_at = timezone.now()

    record = CustomerMerge.objects.create(
        survivor=keep, merged_id=gone.pk, merged_name=gone.name, snapshot=snapshot, moved=moved, merged_by=by
    )
    _history(gone, by=by, reason=_("merged into #%(id)s %(name)s") % {"id": keep.pk, "name": keep.name})
    gone.delete()
    keep.version += 1
    _history(keep, by=by, reason=_("merged #%(id)s %(name)s into this customer") % {"id": gone.pk or record.merged_id, "name": record.merged_name})
    keep.save()
    tier_recompute(customer=keep, by=by)
    return record


# --- web-to-lead ----------------------------------------------------------------------------------
def web_rate_limit_hit(*, ip: str, now: datetime | None = None) -> bool:
    """Count one web-to-lead submission from `ip`; True when the hourly limit (admin setting) is
    exceeded. A fixed one-hour window in the shared cache (Redis), counted across every web process."""
    now = now or timezone.now()
    limit = LeadSettings.load().web_limit_per_hour
    key = f"leads:web:{ip}:{int(now.timestamp()) // 3600}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > limit


def _round_robin_next(channel: SourceChannel) -> User | None:
    if channel.web_team_id is None:
        return None
    reps = list(
        User.objects.filter(team_id=channel.web_team_id, is_active=True, role=Role.REP).order_by("pk").values_list("pk", flat=True)
    )
    if not reps:
        return None
    last = channel.web_last_assignee_id or 0
    following = [pk for pk in reps if pk > last]
    return User.objects.get(pk=(following or reps)[0])


@transaction.atomic
def web_lead_submit(*, channel: SourceChannel, data: dict[str, Any]) -> Customer:
    """A lead from the public form or JSON endpoint of `channel` (validated data): into the channel's
    team pool, or round-robin to the team's reps (the channel row is locked so two submissions never
    pick the same turn). The lead notes its channel as its source."""
    locked = SourceChannel.objects.select_for_update().get(pk=channel.pk)
    owner = _round_robin_next(locked) if locked.web_assignment == WebAssignment.ROUND_ROBIN else None
    contact = {
        "name": data.get("contact_name") or "", "phone": data.get("phone") or "", "email": data.get("email") or "",
        "title": data.get("title") or "",
    }
    customer = customer_create(
        by=None,
        name=data.get("company") or data.get("contact_name") or "",
        customer_type="company" if data.get("company") else "individual",
        owner=owner,
        team=locked.web_team,
        source=locked,
        phone=data.get("phone") or "",
        email=data.get("email") or "",
        needs=data.get("message") or "",
        contacts=[contact] if contact["name"] else [],
        reason=_("web-to-lead form: %(channel)s") % {"channel": locked},
    )
    if owner is not None:
        locked.web_last_assignee = owner
        locked.save(update_fields=["web_last_assignee"])
    return customer
