"""Activities (calls, visits, meetings ...), activity plans, and the personal calendar feed."""

from __future__ import annotations

import secrets
from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from accounts.scope import ScopedQuerySet, managed_user_ids
from leads.models import Customer


def _english() -> bool:
    return (get_language() or "").lower().startswith("en")


class ActivityKind(models.Model):
    """What kind of interaction (admin-editable). The seeded codes are used by the API: call, visit,
    meeting, email, wechat, demo, note."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    icon = models.CharField(_("icon"), max_length=40, default="bi-chat-dots", help_text=_("A Bootstrap icon name."))
    counts_as_contact = models.BooleanField(
        _("counts as a contact"),
        default=True,
        help_text=_("A done activity of this kind updates the customer's last contact and next follow-up."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("activity kind")
        verbose_name_plural = _("activity kinds")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        if self.name_en and _english():
            return self.name_en
        return self.name


class ActivityStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class Outcome(models.TextChoices):
    POSITIVE = "positive", _("Positive")
    NEUTRAL = "neutral", _("Neutral")
    NEGATIVE = "negative", _("Negative")


class ActivityQuerySet(ScopedQuerySet):
    def scope_q(self, user) -> Q:
        """Activities the user owns by the scope rule, and every activity on a customer they see as owner
        (a manager's visit shows on the rep's customer)."""
        ids = managed_user_ids(user)
        if ids is None:  # admins: everything
            return Q()
        if not ids:
            return Q(pk__in=[])
        ids = sorted(ids)
        # the customers as a subquery, not a join: PostgreSQL then filters the activities with a hashed
        # set of customer ids instead of hash-joining every activity to its customer (the API's COUNT(*)
        # at the issue-8 size: 514 -> 371 ms for a director, 1,085 -> 260 ms for a rep)
        return Q(owner_id__in=ids) | Q(customer_id__in=Customer.objects.filter(owner_id__in=ids).values("pk"))

    def scope_count(self, user) -> int | None:
        """How many activities `user` sees (`scope_q`), from the trigger-maintained ActivityScopeTotal rows
        (PostgreSQL; None elsewhere): a sum over at most users² rows instead of a COUNT over an OR that
        no index serves (1.5 million activities for a director at the issue-8 size)."""
        if connection.vendor != "postgresql":
            return None
        ids = managed_user_ids(user)
        totals = ActivityScopeTotal.objects.all()
        if ids is not None:
            ids = sorted(ids)
            totals = totals.filter(Q(owner_id__in=ids) | Q(customer_owner_id__in=ids))
        return totals.aggregate(n=Sum("activities"))["n"] or 0

    def planned(self) -> ActivityQuerySet:
        return self.filter(status=ActivityStatus.PLANNED)


class Activity(FSMModelMixin, models.Model):
    """One interaction with a customer: planned (with a time), done (with an outcome) or cancelled."""

    kind = models.ForeignKey(ActivityKind, verbose_name=_("kind"), on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(_("subject"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="activities"
    )
    contact = models.ForeignKey(
        "leads.Contact",
        verbose_name=_("contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
    )
    opportunity = models.ForeignKey(
        "opportunities.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="activities"
    )
    plan = models.ForeignKey(
        "activities.ActivityPlan",
        verbose_name=_("plan"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activities",
    )
    planned_at = models.DateTimeField(_("planned at"), null=True, blank=True)
    due_at = models.DateTimeField(
        _("due at"), null=True, blank=True, help_text=_("Deadline, if it differs from the planned time.")
    )
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    status = FSMField(_("status"), max_length=16, choices=ActivityStatus.choices, default=ActivityStatus.PLANNED)
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True)
    next_step = models.CharField(_("next step"), max_length=255, blank=True)
    # A double submit or a retry on a flaky connection carries the same key: one activity, not two.
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, null=True, blank=True, editable=False)
    external_id = models.CharField(
        _("external id"), max_length=100, null=True, blank=True, unique=True,
        help_text=_("The key of this record in another system or import file; re-imports update it."),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="activity_idempotency_key_per_owner",
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(done_at__isnull=False), name="activity_done_has_done_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="planned") | Q(planned_at__isnull=False) | Q(due_at__isnull=False),
                name="activity_planned_has_a_time",
            ),
        ]
        indexes = [
            # the rep's day, the week calendar, the feed: a user's activities by planned time
            models.Index(fields=["owner", "status", "planned_at"], name="activity_owner_status_time_idx"),
            # the customer page and its timeline: a customer's activities, latest first
            models.Index(fields=["customer", "-done_at"], name="activity_customer_done_idx"),
            # the reminder source: planned activities coming up
            models.Index(fields=["planned_at"], condition=Q(status="planned"), name="activity_planned_time_idx"),
            # the weekly review: activities done in a period
            models.Index(fields=["owner", "done_at"], name="activity_owner_done_idx"),
            # dashboards, activity statistics: activities done in a period / planned for a period, by
            # owner and kind (read from the index only)
            models.Index(fields=["done_at"], include=["owner", "kind", "status"], name="activity_done_cov_idx"),
            models.Index(fields=["planned_at"], include=["owner", "kind", "status"], name="activity_planned_cov_idx"),
            # the admin changelist (the default ordering) and its date hierarchy: newest first
            models.Index(fields=["-created_at", "-id"], name="activity_created_idx"),
            # the API list's default order: latest first by done, else planned, else due time
            models.Index(
                Coalesce("done_at", "planned_at", "due_at").desc(), F("id").desc(), name="activity_when_idx"
            ),
            # dashboards, overdue follow-ups: planned activities by deadline (due_at, else planned_at)
            models.Index(
                Coalesce("due_at", "planned_at"), "owner", condition=Q(status="planned"), name="activity_overdue_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    def get_absolute_url(self) -> str:
        return reverse("activities:detail", args=[self.pk])

    @property
    def when(self):
        """The time that places it in a list: done time, else planned time, else the deadline."""
        return self.done_at or self.planned_at or self.due_at

    @property
    def deadline(self):
        return self.due_at or self.planned_at

    def is_overdue(self, now) -> bool:
        return self.status == ActivityStatus.PLANNED and self.deadline is not None and self.deadline < now

    @transition(field=status, source=ActivityStatus.PLANNED, target=ActivityStatus.DONE)
    def complete(self) -> None:
        """A planned activity was carried out (the service sets done_at and the outcome)."""

    @transition(field=status, source=ActivityStatus.PLANNED, target=ActivityStatus.CANCELLED)
    def cancel(self) -> None:
        """A planned activity will not happen."""

    @transition(field=status, source=ActivityStatus.CANCELLED, target=ActivityStatus.PLANNED)
    def reopen(self) -> None:
        """A cancelled activity is planned again."""


class PlanTemplate(models.Model):
    """A sequence of activities applied to a customer (e.g. onboarding: call +1 day, visit +7 days)."""

    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("plan template")
        verbose_name_plural = _("plan templates")
        ordering = ["name"]

    def __str__(self) -> str:
        if self.name_en and _english():
            return self.name_en
        return self.name


class PlanTemplateStep(models.Model):
    template = models.ForeignKey(
        PlanTemplate, verbose_name=_("template"), on_delete=models.CASCADE, related_name="steps"
    )
    kind = models.ForeignKey(ActivityKind, verbose_name=_("kind"), on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(_("subject (Chinese)"), max_length=200)
    subject_en = models.CharField(_("subject (English)"), max_length=200, blank=True)
    offset_days = models.PositiveSmallIntegerField(_("days after the start"), default=0)
    at_time = models.TimeField(_("at"), default=time(10, 0))
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("plan template step")
        verbose_name_plural = _("plan template steps")
        ordering = ["template", "offset_days", "position"]

    def __str__(self) -> str:
        return f"+{self.offset_days} · {self.localized_subject}"

    @property
    def localized_subject(self) -> str:
        if self.subject_en and _english():
            return self.subject_en
        return self.subject


class PlanStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    CANCELLED = "cancelled", _("Cancelled")


class ActivityPlan(models.Model):
    """Planned activities created together: a series (every N days) or a template applied to a customer."""

    title = models.CharField(_("title"), max_length=200)
    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="activity_plans"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="activity_plans"
    )
    template = models.ForeignKey(
        PlanTemplate, verbose_name=_("template"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    interval_days = models.PositiveSmallIntegerField(_("every (days)"), null=True, blank=True)
    occurrences = models.PositiveSmallIntegerField(_("occurrences"), null=True, blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    status = models.CharField(_("status"), max_length=16, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity plan")
        verbose_name_plural = _("activity plans")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the plan list: a user's (or a team's) plans, newest first
            models.Index(fields=["owner", "-created_at"], name="activityplan_owner_created_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("activities:plan_detail", args=[self.pk])


def _new_token() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeed(models.Model):
    """A user's personal iCalendar feed: a secret URL; resetting it revokes the old URL."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=_new_token, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self) -> str:
        return str(self.user)

    def get_absolute_url(self) -> str:
        return reverse("activities:ical_feed", args=[self.token])


class ActivityScopeTotal(models.Model):
    """How many activities each owner has on the customers of each customer owner (none: the lead pool),
    kept exact by PostgreSQL triggers (migrations 0006, 0007) on every write to the activities and to a
    customer's owner: the row count of an unfiltered activity list for any scope
    (`ActivityQuerySet.scope_count`). Nothing else writes it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="+")
    customer_owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                                       null=True, related_name="+")
    activities = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "customer_owner"], name="activity_scope_total_key",
                                    nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}/{self.customer_owner_id}: {self.activities}"
