"""Writes of the activities app: log, plan, complete, cancel, reschedule; plans; the calendar feed.

A done activity that counts as a contact (every kind but "note") moves the customer's last contact and,
by the tier's cadence, its next follow-up (`leads.services.customer_touch`), and a deal's last activity
(`opportunities.services.opportunity_record_activity`), in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.scope import managed_user_ids
from leads.models import Contact, Customer
from leads.services import customer_touch
from opportunities.models import Opportunity
from opportunities.services import opportunity_record_activity

from .models import (
    Activity,
    ActivityKind,
    ActivityPlan,
    ActivityStatus,
    CalendarFeed,
    PlanStatus,
    PlanTemplate,
    _new_token,
)

MAX_OCCURRENCES = 52


# --- checks -----------------------------------------------------------------------------------


def can_change(user: User, activity: Activity) -> bool:
    """The owner, and the managers (and admins) who see the owner's records, may change an activity."""
    ids = managed_user_ids(user)
    return ids is None or activity.owner_id in ids


def _check_owner(*, by: User, owner: User) -> None:
    ids = managed_user_ids(by)
    if ids is not None and owner.pk not in ids:
        raise PermissionDenied(_("You cannot plan activities for this user."))
    if not owner.is_active:
        raise ValidationError(_("The owner is not an active user."), code="inactive_owner")


def _check_customer(*, by: User, customer: Customer) -> None:
    if not Customer.objects.visible_to(by).filter(pk=customer.pk).exists():
        raise PermissionDenied(_("This customer is not in your scope."))


def _check_links(*, customer: Customer, contact: Contact | None, opportunity: Opportunity | None) -> None:
    if contact is not None and contact.customer_id != customer.pk:
        raise ValidationError(_("The contact does not belong to this customer."), code="contact_mismatch")
    if opportunity is not None and opportunity.customer_id != customer.pk:
        raise ValidationError(_("The opportunity does not belong to this customer."), code="opportunity_mismatch")


def _check_change(*, by: User, activity: Activity) -> None:
    if not can_change(by, activity):
        raise PermissionDenied(_("You cannot change this activity."))


def _lock(activity: Activity) -> Activity:
    return Activity.objects.select_for_update().select_related("kind", "customer").get(pk=activity.pk)


def _after_done(activity: Activity) -> None:
    if activity.kind.counts_as_contact:
        customer_touch(customer=activity.customer, contacted_at=activity.done_at)
    if activity.opportunity_id:
        opportunity_record_activity(opportunity_id=activity.opportunity_id, at=activity.done_at)


def _existing(owner: User, key: str | None) -> Activity | None:
    if not key:
        return None
    return Activity.objects.filter(owner=owner, idempotency_key=key).first()


def _create(owner: User, key: str | None, build) -> tuple[Activity, bool]:
    """Create through `build()` once per (owner, idempotency key): a repeat returns the first one."""
    found = _existing(owner, key)
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return build(), True
    except IntegrityError:
        found = _existing(owner, key)
        if found is None:
            raise
        return found, False


# --- log and plan -----------------------------------------------------------------------------


def activity_log(
    *,
    by: User,
    customer: Customer,
    kind: ActivityKind,
    subject: str,
    notes: str = "",
    contact: Contact | None = None,
    opportunity: Opportunity | None = None,
    owner: User | None = None,
    done_at: datetime | None = None,
    duration_minutes: int | None = None,
    outcome: str = "",
    next_step: str = "",
    follow_up_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> tuple[Activity, bool]:
    """Log a done activity (the quick-log). With an idempotency key, a repeat of the same submission
    returns the first activity and `False`. `follow_up_at` also plans the next step."""
    owner = owner or by
    key = (idempotency_key or "").strip()[:64] or None

    def build() -> Activity:
        _check_owner(by=by, owner=owner)
        _check_customer(by=by, customer=customer)
        _check_links(customer=customer, contact=contact, opportunity=opportunity)
        when = done_at or timezone.now()
        if when > timezone.now() + timedelta(minutes=5):
            raise ValidationError(_("A done activity cannot be in the future."), code="done_in_future")
        activity = Activity.objects.create(
            kind=kind, subject=subject, notes=notes, customer=customer, contact=contact, opportunity=opportunity,
            owner=owner, done_at=when, status=ActivityStatus.DONE, duration_minutes=duration_minutes,
            outcome=outcome, next_step=next_step, idempotency_key=key, created_by=by,
        )
        _after_done(activity)
        if follow_up_at is not None:
            activity_plan(
                by=by, customer=customer, kind=kind, subject=next_step or subject, planned_at=follow_up_at,
                contact=contact, opportunity=opportunity, owner=owner,
                idempotency_key=f"{key}:next" if key else None,
            )
        return activity

    return _create(owner, key, build)


def activity_plan(
    *,
    by: User,
    customer: Customer,
    kind: ActivityKind,
    subject: str,
    planned_at: datetime | None = None,
    due_at: datetime | None = None,
    notes: str = "",
    contact: Contact | None = None,
    opportunity: Opportunity | None = None,
    owner: User | None = None,
    duration_minutes: int | None = None,
    plan: ActivityPlan | None = None,
    idempotency_key: str | None = None,
) -> tuple[Activity, bool]:
    """Plan an activity (its reminder follows from the planned time, see activities/reminders.py)."""
    owner = owner or by
    key = (idempotency_key or "").strip()[:64] or None

    def build() -> Activity:
        if planned_at is None and due_at is None:
            raise ValidationError(_("A planned activity needs a planned time or a due date."), code="no_time")
        _check_owner(by=by, owner=owner)
        _check_customer(by=by, customer=customer)
        _check_links(customer=customer, contact=contact, opportunity=opportunity)
        return Activity.objects.create(
            kind=kind, subject=subject, notes=notes, customer=customer, contact=contact, opportunity=opportunity,
            owner=owner, planned_at=planned_at, due_at=due_at, status=ActivityStatus.PLANNED,
            duration_minutes=duration_minutes, plan=plan, idempotency_key=key, created_by=by,
        )

    return _create(owner, key, build)


@transaction.atomic
def activity_complete(
    *,
    activity: Activity,
    by: User,
    done_at: datetime | None = None,
    outcome: str = "",
    next_step: str = "",
    notes: str | None = None,
    duration_minutes: int | None = None,
    follow_up_at: datetime | None = None,
) -> Activity:
    """A planned activity was carried out: done, with its evaluation (outcome and next step)."""
    _check_change(by=by, activity=activity)
    locked = _lock(activity)
    if locked.status != ActivityStatus.PLANNED:
        raise ValidationError(_("Only a planned activity can be marked done."), code="not_planned")
    locked.complete()
    locked.done_at = done_at or timezone.now()
    locked.outcome = outcome
    locked.next_step = next_step
    if notes is not None:
        locked.notes = notes
    if duration_minutes is not None:
        locked.duration_minutes = duration_minutes
    locked.version += 1
    locked.save()
    _after_done(locked)
    if follow_up_at is not None:
        activity_plan(
            by=by, customer=locked.customer, kind=locked.kind, subject=next_step or locked.subject,
            planned_at=follow_up_at, contact=locked.contact, opportunity=locked.opportunity, owner=locked.owner,
        )
    return locked


@transaction.atomic
def activity_cancel(*, activity: Activity, by: User) -> Activity:
    _check_change(by=by, activity=activity)
    locked = _lock(activity)
    if locked.status != ActivityStatus.PLANNED:
        raise ValidationError(_("Only a planned activity can be cancelled."), code="not_planned")
    locked.cancel()
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def activity_reopen(*, activity: Activity, by: User, planned_at: datetime | None = None) -> Activity:
    _check_change(by=by, activity=activity)
    locked = _lock(activity)
    if locked.status != ActivityStatus.CANCELLED:
        raise ValidationError(_("Only a cancelled activity can be planned again."), code="not_cancelled")
    locked.reopen()
    if planned_at is not None:
        locked.planned_at = planned_at
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def activity_reschedule(
    *, activity: Activity, by: User, planned_at: datetime | None, due_at: datetime | None = None
) -> Activity:
    """Move a planned activity; its reminder moves with it (the next reminder scan sees the new time)."""
    _check_change(by=by, activity=activity)
    locked = _lock(activity)
    if locked.status != ActivityStatus.PLANNED:
        raise ValidationError(_("Only a planned activity can be rescheduled."), code="not_planned")
    if planned_at is None and due_at is None:
        raise ValidationError(_("A planned activity needs a planned time or a due date."), code="no_time")
    locked.planned_at, locked.due_at = planned_at, due_at
    locked.version += 1
    locked.save(update_fields=["planned_at", "due_at", "version", "updated_at"])
    return locked


EDITABLE_FIELDS = {"kind", "subject", "notes", "contact", "duration_minutes", "outcome", "next_step"}


@transaction.atomic
def activity_update(*, activity: Activity, by: User, **fields) -> Activity:
    """Edit the description of an activity (not its status or times: see complete/cancel/reschedule)."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable here: {sorted(unknown)}")
    _check_change(by=by, activity=activity)
    locked = _lock(activity)
    _check_links(customer=locked.customer, contact=fields.get("contact"), opportunity=None)
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.version += 1
    locked.save()
    return locked


# --- plans ------------------------------------------------------------------------------------


def _owner_language(owner: User) -> str:
    return owner.language or settings.LANGUAGE_CODE


@transaction.atomic
def plan_series_create(
    *,
    by: User,
    customer: Customer,
    owner: User,
    kind: ActivityKind,
    subject: str,
    first_at: datetime,
    interval_days: int,
    occurrences: int,
) -> ActivityPlan:
    """A series: `occurrences` planned activities, `interval_days` apart (e.g. weekly calls)."""
    if not 1 <= interval_days <= 365:
        raise ValidationError(_("The interval must be between 1 and 365 days."), code="bad_interval")
    if not 1 <= occurrences <= MAX_OCCURRENCES:
        raise ValidationError(
            _("A series has between 1 and %(max)d activities.") % {"max": MAX_OCCURRENCES}, code="bad_occurrences"
        )
    _check_owner(by=by, owner=owner)
    _check_customer(by=by, customer=customer)
    plan = ActivityPlan.objects.create(
        title=subject, customer=customer, owner=owner, interval_days=interval_days, occurrences=occurrences,
        starts_at=first_at, created_by=by,
    )
    Activity.objects.bulk_create(
        Activity(
            kind=kind, subject=subject, customer=customer, owner=owner, plan=plan, created_by=by,
            planned_at=first_at + timedelta(days=interval_days * n), status=ActivityStatus.PLANNED,
        )
        for n in range(occurrences)
    )
    return plan


@transaction.atomic
def plan_template_apply(
    *, by: User, customer: Customer, owner: User, template: PlanTemplate, start: date
) -> ActivityPlan:
    """Apply a plan template from `start`: one planned activity per step, at its day offset and time."""
    _check_owner(by=by, owner=owner)
    _check_customer(by=by, customer=customer)
    steps = list(template.steps.select_related("kind"))
    if not steps:
        raise ValidationError(_("This template has no steps."), code="empty_template")
    tz = timezone.get_current_timezone()
    with translation.override(_owner_language(owner)):
        title = f"{template} · {customer}"
        subjects = [step.localized_subject for step in steps]
    plan = ActivityPlan.objects.create(
        title=title[:200], customer=customer, owner=owner, template=template, created_by=by,
        starts_at=datetime.combine(start, steps[0].at_time, tzinfo=tz),
    )
    Activity.objects.bulk_create(
        Activity(
            kind=step.kind, subject=subject, customer=customer, owner=owner, plan=plan, created_by=by,
            planned_at=datetime.combine(start + timedelta(days=step.offset_days), step.at_time, tzinfo=tz),
            status=ActivityStatus.PLANNED,
        )
        for step, subject in zip(steps, subjects, strict=True)
    )
    return plan


@transaction.atomic
def plan_cancel(*, plan: ActivityPlan, by: User) -> int:
    """Stop a plan: its activities still planned are cancelled (done ones stay). Returns how many."""
    ids = managed_user_ids(by)
    if ids is not None and plan.owner_id not in ids:
        raise PermissionDenied(_("You cannot change this plan."))
    locked = ActivityPlan.objects.select_for_update().get(pk=plan.pk)
    locked.status = PlanStatus.CANCELLED
    locked.save(update_fields=["status"])
    return Activity.objects.filter(plan=locked, status=ActivityStatus.PLANNED).update(
        status=ActivityStatus.CANCELLED, version=F("version") + 1, updated_at=timezone.now()
    )


# --- calendar feed ----------------------------------------------------------------------------


def calendar_feed_get_or_create(*, user: User) -> CalendarFeed:
    feed, _created = CalendarFeed.objects.get_or_create(user=user)
    return feed


@transaction.atomic
def calendar_feed_reset(*, user: User) -> CalendarFeed:
    """A new secret URL; the old one stops working at once."""
    feed, created = CalendarFeed.objects.select_for_update().get_or_create(user=user)
    if not created:
        feed.token = _new_token()
        feed.last_used_at = None
        feed.save(update_fields=["token", "last_used_at"])
    return feed


def calendar_feed_revoke(*, user: User) -> bool:
    """Turn the feed off: the URL stops working (a new one can be created later)."""
    deleted, _ = CalendarFeed.objects.filter(user=user).delete()
    return bool(deleted)


def calendar_feed_touch(*, feed: CalendarFeed) -> None:
    now = timezone.now()
    if feed.last_used_at is None or now - feed.last_used_at > timedelta(minutes=10):
        CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=now)


def activity_scope_totals_recount() -> int:
    """Recount ActivityScopeTotal from the activities (after a load with triggers off: `bench_seed`), with
    the activities and customers locked against writes meanwhile. PostgreSQL only; returns the rows."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE activities_activity, leads_customer IN SHARE MODE")
        cursor.execute("DELETE FROM activities_activityscopetotal")
        cursor.execute(
            "INSERT INTO activities_activityscopetotal (owner_id, customer_owner_id, activities) "
            "SELECT a.owner_id, c.owner_id, count(*) FROM activities_activity a "
            "JOIN leads_customer c ON c.id = a.customer_id GROUP BY 1, 2"
        )
        return cursor.rowcount
