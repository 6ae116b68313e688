"""After-sales service: tickets with SLAs and a status history, satisfaction surveys, service plans.

Admin-editable business rules live in the database: ticket kinds, the SLA policy per priority, the
service settings (business hours, reopen window, survey validity, public form rate limit) and the
service plan templates applied when a contract is signed.
"""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from accounts.scope import ScopedQuerySet, owner_scope_q, user_team_ids
from crm.models import SingletonModel

from .sla import BusinessCalendar


def new_token() -> str:
    """An unguessable URL token (256 bits)."""
    return secrets.token_urlsafe(32)


class PoolScopedQuerySet(ScopedQuerySet):
    """Owner-based scope plus the unassigned records of the user's teams (as leads' customer pool)."""

    team_field = "team"

    def scope_q(self, user) -> Q:
        owned = owner_scope_q(user, self.owner_field)
        if not owned:  # admins: Q() already matches everything
            return owned
        team_ids = user_team_ids(user)
        if not team_ids:
            return owned
        return owned | Q(**{f"{self.owner_field}__isnull": True, f"{self.team_field}_id__in": sorted(team_ids)})


# --- admin-editable settings ----------------------------------------------------------------------
class ServiceSettings(SingletonModel):
    """The after-sales settings (one row, edited in the admin)."""

    reopen_window_days = models.PositiveSmallIntegerField(
        _("reopen window (days)"),
        default=7,
        help_text=_("A resolved ticket can be reopened for this many days; after that it is closed."),
    )
    survey_valid_days = models.PositiveSmallIntegerField(
        _("survey valid for (days)"), default=14, validators=[MinValueValidator(1)]
    )
    business_day_start = models.TimeField(_("business day starts"), default=time(9, 0))
    business_day_end = models.TimeField(_("business day ends"), default=time(18, 0))
    business_weekdays = models.CharField(
        _("business weekdays"),
        max_length=20,
        default="1,2,3,4,5",
        validators=[RegexValidator(r"^[1-7](,[1-7])*$", _("Comma-separated ISO weekdays, 1 = Monday."))],
        help_text=_("Comma-separated ISO weekdays, 1 = Monday ... 7 = Sunday."),
    )
    service_team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("service team"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The team whose queue receives unassigned tickets. Empty: the customer's team."),
    )
    public_form_limit_per_hour = models.PositiveSmallIntegerField(
        _("public form submissions per hour and IP"), default=5, validators=[MinValueValidator(1)]
    )

    class Meta:
        verbose_name = _("service settings")
        verbose_name_plural = _("service settings")

    def __str__(self) -> str:
        return str(_("Service settings"))

    def clean(self) -> None:
        if self.business_day_start >= self.business_day_end:
            raise ValidationError({"business_day_end": _("The business day must end after it starts.")})

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            tz=ZoneInfo(settings.TIME_ZONE),
            start=self.business_day_start,
            end=self.business_day_end,
            weekdays=frozenset(int(d) for d in self.business_weekdays.split(",") if d),
        )


class TicketKind(models.Model):
    """What a ticket is about (installation, training, consultation, repair, complaint, ...)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("ticket kind")
        verbose_name_plural = _("ticket kinds")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class SlaPolicy(models.Model):
    """Response and resolution targets for one priority. A ticket copies them when it is opened."""

    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, unique=True)
    response_minutes = models.PositiveIntegerField(
        _("response target (minutes)"), help_text=_("Working minutes until the first response.")
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution target (minutes)"), help_text=_("Working minutes until the ticket is resolved.")
    )
    warning_minutes = models.PositiveIntegerField(
        _("warn before (minutes)"),
        default=60,
        help_text=_("The owner and their manager are warned this long before a deadline."),
    )
    business_hours_only = models.BooleanField(
        _("business hours only"),
        default=True,
        help_text=_("Count only business hours (see the service settings); otherwise the clock runs 24x7."),
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["priority"]

    def __str__(self) -> str:
        return str(self.get_priority_display())


# --- tickets ------------------------------------------------------------------------------------
class TicketStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    WAITING = "waiting_on_customer", _("Waiting on customer")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Reopened")


# The SLA clock runs in these statuses ...
ACTIVE_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.REOPENED)
# ... and stops in these (the resolution clock of a reopened ticket skips the time it sat resolved).
PAUSED_STATUSES = (TicketStatus.WAITING, TicketStatus.RESOLVED)
DONE_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class TicketSource(models.TextChoices):
    STAFF = "staff", _("Staff")
    PUBLIC_FORM = "public_form", _("Public form")
    API = "api", _("API")
    SERVICE_PLAN = "service_plan", _("Service plan")


class SlaState(models.TextChoices):
    ON_TRACK = "on_track", _("On track")
    AT_RISK = "at_risk", _("At risk")
    BREACHED = "breached", _("Breached")
    PAUSED = "paused", _("Paused")
    MET = "met", _("Met")


class TicketQuerySet(PoolScopedQuerySet):
    pass


class Ticket(FSMModelMixin, models.Model):
    """A customer's service request, with SLA deadlines and a django-fsm lifecycle."""

    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="tickets"
    )
    contact = models.ForeignKey(
        "leads.Contact",
        verbose_name=_("contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
    )
    contract = models.ForeignKey(
        "contracts.Contract",
        verbose_name=_("contract"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
    )
    kind = models.ForeignKey(TicketKind, verbose_name=_("kind"), on_delete=models.PROTECT, related_name="+")
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    subject = models.CharField(_("subject"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    status = FSMField(_("status"), max_length=24, choices=TicketStatus.choices, default=TicketStatus.OPEN,
                      protected=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_tickets",
        help_text=_("The service rep in charge. Empty: the ticket waits in its team's queue."),
    )
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_tickets",
        help_text=_("The team whose queue holds the ticket while it has no owner."),
    )
    source = models.CharField(_("source"), max_length=16, choices=TicketSource.choices, default=TicketSource.STAFF)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # who asked, when the ticket came from outside (the public form) without a known contact
    requester_name = models.CharField(_("requester name"), max_length=100, blank=True)
    requester_email = models.EmailField(_("requester email"), blank=True)
    requester_phone = models.CharField(_("requester phone"), max_length=32, blank=True)
    public_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)

    # SLA: the targets copied from the policy when the ticket was opened (later policy edits do not
    # move existing deadlines), and the deadlines computed from them (recomputed when the clock resumes).
    sla_response_minutes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    sla_resolution_minutes = models.PositiveIntegerField(null=True, blank=True, editable=False)
    sla_warning_minutes = models.PositiveIntegerField(default=0, editable=False)
    sla_business_hours = models.BooleanField(default=False, editable=False)
    response_due_at = models.DateTimeField(_("response due"), null=True, blank=True, editable=False)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True, editable=False)
    response_warn_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolution_warn_at = models.DateTimeField(null=True, blank=True, editable=False)
    response_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolution_warned_at = models.DateTimeField(null=True, blank=True, editable=False)

    first_responded_at = models.DateTimeField(_("first response"), null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True, editable=False)
    reopen_until = models.DateTimeField(_("can be reopened until"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the queue: a rep's tickets by status, newest first
            models.Index(fields=["owner", "status", "-created_at"], name="ticket_owner_status_idx"),
            # the team queue of unassigned tickets
            models.Index(fields=["team", "owner", "status"], name="ticket_team_pool_idx"),
            # the customer page and the per-customer selectors
            models.Index(fields=["customer", "status"], name="ticket_customer_status_idx"),
            # the SLA scan: active tickets whose deadline or warning time has passed
            models.Index(fields=["status", "resolution_due_at"], name="ticket_sla_scan_idx"),
            # per-rep evaluation: tickets resolved in a period
            models.Index(fields=["owner", "resolved_at"], name="ticket_owner_resolved_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    def get_absolute_url(self) -> str:
        return reverse("aftersales:ticket_detail", args=[self.pk])

    @property
    def reference(self) -> str:
        return f"T-{self.pk:06d}" if self.pk else "T-new"

    @property
    def is_paused(self) -> bool:
        return self.status in PAUSED_STATUSES

    @property
    def response_pending(self) -> bool:
        return self.first_responded_at is None and self.status in ACTIVE_STATUSES

    def sla_state_at(self, now: datetime) -> str:
        """The SLA state shown on the page (the queue computes the same in SQL, see selectors)."""
        if self.status == TicketStatus.WAITING:
            return SlaState.PAUSED
        if getattr(self, "has_breach", False):
            return SlaState.BREACHED
        if self.status in DONE_STATUSES:
            return SlaState.MET
        due = [d for d in (self.resolution_due_at, self.response_due_at if self.response_pending else None) if d]
        warn = [w for w in (self.resolution_warn_at, self.response_warn_at if self.response_pending else None) if w]
        if any(d <= now for d in due):
            return SlaState.BREACHED
        if any(w <= now for w in warn):
            return SlaState.AT_RISK
        return SlaState.ON_TRACK

    # --- lifecycle (pure: the services lock, record the history and send what follows) -----------
    @transition(field=status, source=[TicketStatus.OPEN, TicketStatus.REOPENED], target=TicketStatus.IN_PROGRESS)
    def start(self, *, at: datetime) -> None:
        if self.first_responded_at is None:
            self.first_responded_at = at

    @transition(field=status, source=TicketStatus.IN_PROGRESS, target=TicketStatus.WAITING)
    def wait_on_customer(self, *, at: datetime) -> None:
        pass

    @transition(field=status, source=TicketStatus.WAITING, target=TicketStatus.IN_PROGRESS)
    def resume(self, *, at: datetime) -> None:
        pass

    @transition(field=status, source=TicketStatus.IN_PROGRESS, target=TicketStatus.RESOLVED)
    def resolve(self, *, at: datetime, reopen_window_days: int = 7) -> None:
        self.resolved_at = at
        self.reopen_until = at + timedelta(days=reopen_window_days)

    @transition(field=status, source=TicketStatus.RESOLVED, target=TicketStatus.CLOSED)
    def close(self, *, at: datetime) -> None:
        self.closed_at = at

    def transition_clock(self) -> datetime:
        """The moment the conditions are judged at: the services set `_transition_at`, pages use now."""
        return getattr(self, "_transition_at", None) or timezone.now()

    def can_reopen_at(self, at: datetime) -> bool:
        return self.reopen_until is not None and at <= self.reopen_until

    @transition(
        field=status,
        source=TicketStatus.RESOLVED,
        target=TicketStatus.REOPENED,
        conditions=[lambda t: t.can_reopen_at(t.transition_clock())],
    )
    def reopen(self, *, at: datetime) -> None:
        self.resolved_at = None
        self.reopen_until = None


class TicketStatusChange(models.Model):
    """One move of a ticket's lifecycle (or its opening, from ""): who, when, why."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(_("from"), max_length=24, choices=TicketStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=24, choices=TicketStatus.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty: the customer (public link) or the system."),
    )
    by_customer = models.BooleanField(_("by the customer"), default=False)
    at = models.DateTimeField(_("at"), default=timezone.now)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("ticket status change")
        verbose_name_plural = _("ticket status changes")
        ordering = ["at", "id"]
        # the detail page and the pause computation read one ticket's history in order
        indexes = [models.Index(fields=["ticket", "at"], name="ticket_change_ticket_at_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.from_status or '-'} → {self.to_status}"


class CommentVisibility(models.TextChoices):
    INTERNAL = "internal", _("Internal note")
    PUBLIC = "public", _("Reply to the customer")


class TicketCommentQuerySet(models.QuerySet):
    def customer_visible(self):
        return self.filter(visibility=CommentVisibility.PUBLIC)


class TicketComment(models.Model):
    """The thread of a ticket: internal notes for the team, replies the customer sees on the status link."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    by_customer = models.BooleanField(_("by the customer"), default=False)
    visibility = models.CharField(
        _("visibility"), max_length=10, choices=CommentVisibility.choices, default=CommentVisibility.INTERNAL
    )
    body = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = TicketCommentQuerySet.as_manager()

    class Meta:
        verbose_name = _("ticket comment")
        verbose_name_plural = _("ticket comments")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_comment_thread_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.body[:40]}"

    @property
    def is_internal(self) -> bool:
        return self.visibility == CommentVisibility.INTERNAL


def attachment_path(instance: TicketAttachment, filename: str) -> str:
    # a random name: the original one is kept in the row, never used as a path
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"aftersales/tickets/{timezone.now():%Y/%m}/{secrets.token_hex(16)}.{suffix}"


class TicketAttachment(models.Model):
    """A file on a ticket, served only through the scoped download view (never from MEDIA_URL)."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=200)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    by_customer = models.BooleanField(_("by the customer"), default=False)
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta:
        verbose_name = _("ticket attachment")
        verbose_name_plural = _("ticket attachments")
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return self.original_name


class SlaKind(models.TextChoices):
    RESPONSE = "response", _("Response")
    RESOLUTION = "resolution", _("Resolution")


class SlaBreach(models.Model):
    """A missed SLA deadline, recorded once per ticket and kind for reporting."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="breaches")
    kind = models.CharField(_("kind"), max_length=12, choices=SlaKind.choices)
    due_at = models.DateTimeField(_("was due"))
    detected_at = models.DateTimeField(_("detected at"), default=timezone.now)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner at the time"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)

    class Meta:
        verbose_name = _("SLA breach")
        verbose_name_plural = _("SLA breaches")
        ordering = ["-detected_at"]
        constraints = [models.UniqueConstraint(fields=["ticket", "kind"], name="sla_breach_once_per_kind")]
        # reporting: breaches per owner over a period
        indexes = [models.Index(fields=["owner", "detected_at"], name="sla_breach_owner_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"


class SatisfactionSurvey(models.Model):
    """The satisfaction survey sent when a ticket is resolved: one per ticket, answered once."""

    ticket = models.OneToOneField(Ticket, verbose_name=_("ticket"), on_delete=models.CASCADE, related_name="survey")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    sent_to = models.EmailField(_("sent to"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    score = models.PositiveSmallIntegerField(
        _("score"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        verbose_name = _("satisfaction survey")
        verbose_name_plural = _("satisfaction surveys")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5), name="survey_score_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True) | Q(score__isnull=False), name="survey_answer_has_score"
            ),
        ]
        # CSAT over a period
        indexes = [models.Index(fields=["answered_at"], name="survey_answered_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}: {self.score or '-'}"

    def get_absolute_url(self) -> str:
        return reverse("aftersales:survey", args=[self.token])

    def is_open_at(self, at: datetime) -> bool:
        return self.answered_at is None and at < self.expires_at


class CustomerPortal(models.Model):
    """The per-customer token of the public ticket form."""

    customer = models.OneToOneField(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="service_portal"
    )
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer service portal")
        verbose_name_plural = _("customer service portals")

    def __str__(self) -> str:
        return str(self.customer)

    def get_absolute_url(self) -> str:
        return reverse("aftersales:public_ticket_new", args=[self.token])


# --- service plans ------------------------------------------------------------------------------
class PlanOwnerSource(models.TextChoices):
    CONTRACT_OWNER = "contract_owner", _("The contract owner")
    SERVICE_TEAM = "service_team", _("The service team's queue")


class ServicePlanTemplate(models.Model):
    """A template of planned service steps (e.g. onboarding call +3 days, training +14 days)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_active = models.BooleanField(
        _("apply to signed contracts"), default=True, help_text=_("Applied to every contract when it is signed.")
    )
    owner_source = models.CharField(
        _("items are owned by"), max_length=16, choices=PlanOwnerSource.choices, default=PlanOwnerSource.CONTRACT_OWNER
    )
    service_team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("service team"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("For items owned by a service team: its queue (its manager assigns them)."),
    )

    class Meta:
        verbose_name = _("service plan template")
        verbose_name_plural = _("service plan templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ServicePlanTemplateItem(models.Model):
    template = models.ForeignKey(
        ServicePlanTemplate, verbose_name=_("template"), on_delete=models.CASCADE, related_name="items"
    )
    title = models.CharField(_("title"), max_length=200)
    kind = models.ForeignKey(TicketKind, verbose_name=_("kind"), on_delete=models.PROTECT, related_name="+")
    offset_days = models.PositiveSmallIntegerField(_("days after signing"))
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("service plan template item")
        verbose_name_plural = _("service plan template items")
        ordering = ["offset_days", "id"]

    def __str__(self) -> str:
        return f"{self.title} (+{self.offset_days})"


class ServicePlan(models.Model):
    """The planned service of one customer (from a template when a contract is signed, or by hand)."""

    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="service_plans"
    )
    template = models.ForeignKey(
        ServicePlanTemplate,
        verbose_name=_("template"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="plans",
    )
    contract = models.ForeignKey(
        "contracts.Contract",
        verbose_name=_("contract"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="service_plans",
    )
    name = models.CharField(_("name"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("service plan")
        verbose_name_plural = _("service plans")
        ordering = ["-created_at", "-id"]
        constraints = [
            # a template is applied once per signed contract, even if the signal arrives twice
            models.UniqueConstraint(
                fields=["template", "contract"],
                condition=Q(contract__isnull=False, template__isnull=False),
                name="service_plan_once_per_contract",
            )
        ]

    def __str__(self) -> str:
        return self.name


class PlanItemStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class ServicePlanItemQuerySet(PoolScopedQuerySet):
    pass


class ServicePlanItem(models.Model):
    """One planned service step (an onboarding call, a training, a review visit) with an owner and a date."""

    plan = models.ForeignKey(ServicePlan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="service_plan_items"
    )
    title = models.CharField(_("title"), max_length=200)
    kind = models.ForeignKey(TicketKind, verbose_name=_("kind"), on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField(_("due date"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_plan_items",
    )
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_plan_items",
    )
    status = models.CharField(_("status"), max_length=10, choices=PlanItemStatus.choices, default=PlanItemStatus.PLANNED)
    notes = models.TextField(_("notes"), blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    ticket = models.ForeignKey(
        Ticket,
        verbose_name=_("ticket"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="plan_items",
    )

    objects = ServicePlanItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("planned service item")
        verbose_name_plural = _("planned service items")
        ordering = ["due_date", "id"]
        indexes = [
            # "my planned service": a rep's planned items by date
            models.Index(fields=["owner", "status", "due_date"], name="plan_item_owner_due_idx"),
            # the reminder scan: planned items due, not yet reminded
            models.Index(fields=["status", "due_date"], name="plan_item_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.due_date})"
