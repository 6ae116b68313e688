"""Reads of the customers app: the scoped list with its search, filters and sorting, the detail page,
the pool, duplicate candidates, timeline entries of the customer's own history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.scope import get_visible_or_404, is_manager_or_admin, managed_user_ids

from .models import Contact, Customer, CustomerImport, LeadSettings, OwnershipChange, OwnershipKind
from .normalise import name_key, normalise_email, normalise_phone, normalise_search
from .timeline import TimelineEntry

SORTS = {
    "updated": ["-updated_at", "-id"],
    "name": ["name", "id"],
    "-name": ["-name", "-id"],
    "tier": ["tier", "-updated_at", "-id"],
    "follow_up": [F("next_follow_up_at").asc(nulls_last=True), "id"],
    "contacted": [F("last_contacted_at").desc(nulls_last=True), "-id"],
    "created": ["-created_at", "-id"],
}
SORT_LABELS = {
    "updated": gettext_lazy("Recently updated"),
    "name": gettext_lazy("Name A-Z"),
    "-name": gettext_lazy("Name Z-A"),
    "tier": gettext_lazy("Tier"),
    "follow_up": gettext_lazy("Next follow-up"),
    "contacted": gettext_lazy("Last contacted"),
    "created": gettext_lazy("Newest"),
}


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def freshness_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=LeadSettings.load().freshness_days)


def annotate_flags(qs: QuerySet[Customer], *, now: datetime | None = None) -> QuerySet[Customer]:
    """`is_overdue` (next follow-up passed) and `needs_update` (profile not reviewed for N days)."""
    now = now or timezone.now()
    cutoff = freshness_cutoff(now)
    return qs.annotate(
        is_overdue=Case(When(next_follow_up_at__lt=now, then=Value(True)), default=Value(False), output_field=BooleanField()),
        needs_update=Case(
            When(Q(profile_reviewed_at__isnull=True) | Q(profile_reviewed_at__lt=cutoff), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def customer_list(*, user: User) -> QuerySet[Customer]:
    """Customers `user` may see (owned by the data-scope rule, or in their team's pool)."""
    return Customer.objects.visible_to(user).select_related("owner", "team")


def search_q(term: str) -> Q:
    """Every word of the term must occur in the customer's name, phones, emails or contact names
    (ILIKE over the denormalised, trigram-indexed `search_text`)."""
    q = Q()
    for word in term.split():
        q &= Q(search_text__contains=normalise_search(word))
    return q


@dataclass
class CustomerFilters:
    q: str = ""
    tier: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    owner: str = ""  # "" all, "me", "pool", or a user id
    tag: list[str] = field(default_factory=list)
    overdue: bool = False
    needs_update: bool = False
    sort: str = "updated"


def customer_filtered(*, user: User, filters: CustomerFilters, now: datetime | None = None) -> QuerySet[Customer]:
    """The list page and the export: the user's visible customers, searched, filtered and sorted,
    annotated with the overdue / needs-update flags, with owner, team and source joined and tags
    prefetched (a fixed number of queries for any page)."""
    now = now or timezone.now()
    qs = annotate_flags(Customer.objects.visible_to(user), now=now)
    if filters.q.strip():
        qs = qs.filter(search_q(filters.q))
    if filters.tier:
        qs = qs.filter(tier__in=filters.tier)
    if filters.status:
        qs = qs.filter(status__in=filters.status)
    if filters.source:
        qs = qs.filter(source_id__in=filters.source)
    if filters.owner == "me":
        qs = qs.filter(owner=user)
    elif filters.owner == "pool":
        qs = qs.filter(owner__isnull=True)
    elif filters.owner.isdigit():
        qs = qs.filter(owner_id=int(filters.owner))
    for tag in filters.tag:
        qs = qs.filter(tags__name=tag)
    if filters.overdue:
        qs = qs.filter(next_follow_up_at__lt=now)
    if filters.needs_update:
        qs = qs.filter(Q(profile_reviewed_at__isnull=True) | Q(profile_reviewed_at__lt=freshness_cutoff(now)))
    order = SORTS.get(filters.sort, SORTS["updated"])
    return qs.select_related("owner", "team", "source").prefetch_related("tags").order_by(*order)


def customer_get_for_user(*, user: User, pk: int) -> Customer:
    return get_visible_or_404(
        annotate_flags(Customer.objects.select_related("owner", "team", "source", "created_by")), user, pk=pk
    )


def owner_choices(*, user: User) -> QuerySet[User]:
    """The users whose customers `user` sees (and may assign to, if a manager)."""
    ids = managed_user_ids(user)
    qs = User.objects.filter(is_active=True).select_related("team").order_by("team__name", "username")
    return qs if ids is None else qs.filter(pk__in=ids)


def assignee_choices(*, user: User) -> QuerySet[User]:
    if not is_manager_or_admin(user):
        return User.objects.none()
    return owner_choices(user=user)


def pool_list(*, user: User) -> QuerySet[Customer]:
    """The unowned leads of the user's teams (all teams for admins), oldest first."""
    return (
        Customer.objects.visible_to(user).filter(owner__isnull=True)
        .select_related("team", "source").prefetch_related("tags").order_by("created_at", "id")
    )


# --- duplicates -----------------------------------------------------------------------------------
NAME_SIMILARITY = 0.45


@dataclass
class Duplicate:
    customer: Customer
    reasons: list[str]
    visible: bool


def duplicate_candidates(
    *, name: str = "", phone: str = "", email: str = "", exclude_pk: int | None = None, limit: int = 10
) -> list[tuple[Customer, list[str]]]:
    """Customers that are likely the same as the given name/phone/email: the same normalised phone
    (customer's or a contact's) or email, the same name without legal suffixes and spacing, or (on
    PostgreSQL) a trigram-similar name. Two queries at most, all indexed."""
    phone, email, key = normalise_phone(phone), normalise_email(email), name_key(name)
    q = Q()
    if phone and phone.startswith("+"):
        q |= Q(phone=phone) | Q(pk__in=Contact.objects.filter(phone=phone).values("customer_id"))
    if email:
        q |= Q(email=email) | Q(pk__in=Contact.objects.filter(email=email).values("customer_id"))
    similar = None
    if key:
        q |= Q(name_key=key)
        if is_postgres() and len(key) >= 2:
            from django.contrib.postgres.search import TrigramSimilarity

            similar = TrigramSimilarity("name_key", key)
            q |= Q(name_key__trigram_similar=key)
    if not q:
        return []
    qs = Customer.objects.filter(q).select_related("owner", "team")
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    if similar is not None:
        qs = qs.annotate(similarity=similar).order_by("-similarity", "-id")
    else:
        qs = qs.order_by("-id")
    found = []
    contact_q = Q(pk__in=[])
    if phone and phone.startswith("+"):
        contact_q |= Q(phone=phone)
    if email:
        contact_q |= Q(email=email)
    contact_pairs: list[tuple[int, str, str]] | None = None
    for customer in qs[: limit * 3]:
        reasons = []
        if phone and customer.phone == phone:
            reasons.append(_("same phone"))
        if email and customer.email == email:
            reasons.append(_("same email"))
        if key and customer.name_key == key:
            reasons.append(_("same name"))
        elif similar is not None and getattr(customer, "similarity", 0) >= NAME_SIMILARITY:
            reasons.append(_("similar name"))
        if not reasons and (phone or email):
            if contact_pairs is None:
                contact_pairs = list(Contact.objects.filter(contact_q).values_list("customer_id", "phone", "email"))
            if any(c == customer.pk and phone and p == phone for c, p, _e in contact_pairs):
                reasons.append(_("a contact has the same phone"))
            if any(c == customer.pk and email and e == email for c, _p, e in contact_pairs):
                reasons.append(_("a contact has the same email"))
        if reasons:
            found.append((customer, reasons))
        if len(found) >= limit:
            break
    return found


def duplicate_warnings(*, user: User, name: str = "", phone: str = "", email: str = "", exclude_pk: int | None = None) -> list[Duplicate]:
    """The duplicate candidates, each marked visible or not: the page links to the ones the user may
    see and only mentions the others ("a customer of another team") without their details."""
    candidates = duplicate_candidates(name=name, phone=phone, email=email, exclude_pk=exclude_pk)
    if not candidates:
        return []
    visible_ids = set(Customer.objects.visible_to(user).filter(pk__in=[c.pk for c, _r in candidates]).values_list("pk", flat=True))
    return [Duplicate(customer=c, reasons=r, visible=c.pk in visible_ids) for c, r in candidates]


# --- timeline: the customer's own history ---------------------------------------------------------
TIMELINE_QUIET_FIELDS = {"version", "tier_explanation", "tier_computed_at", "assigned_at", "owner", "team", "profile_reviewed_at"}


def customer_own_timeline(*, customer: Customer, user: User, limit: int = 50) -> list[TimelineEntry]:
    """Leads' provider for the timeline: creation, edits (which fields), tier changes, merges, and
    every ownership change (claims, assignments, returns to the pool). Three queries."""
    entries: list[TimelineEntry] = []
    records = list(customer.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    for newer, older in zip(records, [*records[1:], None], strict=False):
        if newer is records[-1] and len(records) > limit:
            break
        if newer.history_type == "+":
            entries.append(TimelineEntry(when=newer.history_date, title=_("Customer created"), kind="created",
                                         icon="bi-plus-circle", actor=newer.history_user,
                                         body=newer.history_change_reason or ""))
            continue
        changed = []
        if older is not None:
            delta = newer.diff_against(older)
            changed = [str(Customer._meta.get_field(c.field).verbose_name) for c in delta.changes
                       if c.field not in TIMELINE_QUIET_FIELDS]
            if not changed and older.owner_id != newer.owner_id:
                continue  # shown by the ownership log below
        if not changed and not newer.history_change_reason:
            continue
        entries.append(TimelineEntry(
            when=newer.history_date, title=newer.history_change_reason or _("Profile edited"), kind="edit",
            icon="bi-pencil", actor=newer.history_user, details=changed,
        ))
    icons = {
        OwnershipKind.CLAIMED: "bi-hand-index", OwnershipKind.ASSIGNED: "bi-person-check",
        OwnershipKind.RELEASED: "bi-box-arrow-up", OwnershipKind.RETURNED: "bi-arrow-counterclockwise",
    }
    for change in (
        OwnershipChange.objects.filter(customer=customer).exclude(kind=OwnershipKind.CREATED)
        .select_related("from_owner", "to_owner", "by")[:limit]
    ):
        title = change.get_kind_display()
        if change.to_owner:
            title = f"{title}: {change.to_owner}"
        entries.append(TimelineEntry(when=change.at, title=title, kind="ownership", icon=icons.get(change.kind, "bi-person"),
                                     actor=change.by, body=change.reason))
    for merge in customer.merges.select_related("merged_by")[:limit]:
        entries.append(TimelineEntry(
            when=merge.merged_at, title=_("Merged with %(name)s") % {"name": merge.merged_name}, kind="merge",
            icon="bi-union", actor=merge.merged_by,
        ))
    return entries


def import_get_for_user(*, user: User, pk: int) -> CustomerImport:
    from django.http import Http404

    qs = CustomerImport.objects.all()
    if not (user.is_superuser or managed_user_ids(user) is None):
        qs = qs.filter(created_by=user)
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


def export_allowed(user: User) -> bool:
    return is_manager_or_admin(user) or not LeadSettings.load().export_managers_only
