"""Pipelines, stages, opportunities (deals) and their stage history.

Models hold data and pure rules. The stage of an opportunity is a django-fsm field (`StageField`,
protected): assigning it raises; only the `@transition` methods below move it, and only the services in
`opportunities.services` call those (inside a transaction, with the row locked, writing a
`StageChange` row and sending the signals on commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from accounts.scope import ScopedQuerySet, is_manager_or_admin
from crm.models import SingletonModel
from leads.models import PostgresOnlyIndex

from .fields import StageField

ZERO = Decimal("0")


def _is_chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


class BilingualNameMixin(models.Model):
    """`name_zh` and `name_en`; `name` is the one of the active language (falling back to the other)."""

    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)

    class Meta:
        abstract = True

    @property
    def name(self) -> str:
        if _is_chinese():
            return self.name_zh or self.name_en
        return self.name_en or self.name_zh


# --- pipelines and stages ---------------------------------------------------------------------------
class Pipeline(BilingualNameMixin):
    """A sales process: an ordered list of open stages, then won and lost."""

    code = models.SlugField(
        _("code"), max_length=50, unique=True, help_text=_("A stable identifier, e.g. new_business.")
    )
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("New opportunities go here unless another pipeline is chosen.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="pipeline_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("opportunities:board_pipeline", args=[self.pk])


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


# Opportunity fields an admin can require before a stage is left (the exit criteria), with their labels.
EXIT_FIELDS: dict[str, Any] = {
    "amount": _("Amount"),
    "expected_close_date": _("Expected close date"),
    "contact": _("Contact"),
    "budget": _("Budget"),
    "decision_maker": _("Decision maker"),
    "pain_points": _("Pain points"),
    "competitors": _("Competitors"),
    "next_step": _("Next step"),
    "next_step_date": _("Next step date"),
    "source": _("Source"),
}


def validate_exit_fields(value: Any) -> None:
    if not isinstance(value, list) or any(item not in EXIT_FIELDS for item in value):
        raise ValidationError(
            _("Choose exit criteria from: %(fields)s."), params={"fields": ", ".join(EXIT_FIELDS)}
        )


class StageQuerySet(models.QuerySet):
    def active(self) -> StageQuerySet:
        return self.filter(is_active=True)

    def open(self) -> StageQuerySet:
        return self.filter(kind=StageKind.OPEN)


class Stage(BilingualNameMixin):
    """One step of a pipeline. Open stages are ordered by `order`; won and lost close the deal."""

    pipeline = models.ForeignKey(
        Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT, related_name="stages"
    )
    code = models.SlugField(_("code"), max_length=50, blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    kind = models.CharField(_("kind"), max_length=8, choices=StageKind.choices, default=StageKind.OPEN)
    default_probability = models.PositiveSmallIntegerField(
        _("default win probability (%)"), default=10, validators=[MaxValueValidator(100)]
    )
    stall_days = models.PositiveSmallIntegerField(
        _("stalled after (days)"),
        null=True,
        blank=True,
        help_text=_("A deal that stays longer than this in the stage is flagged as stalled. Empty: never."),
    )
    exit_fields = models.JSONField(
        _("required fields to leave the stage"),
        default=list,
        blank=True,
        validators=[validate_exit_fields],
    )
    playbook_zh = models.TextField(_("playbook (Chinese)"), blank=True)
    playbook_en = models.TextField(_("playbook (English)"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    objects = StageQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline_id", "order", "id"]
        constraints = [
            # one won and one lost stage per pipeline
            models.UniqueConstraint(
                fields=["pipeline", "kind"], condition=~Q(kind="open"), name="stage_one_won_one_lost"
            ),
            models.UniqueConstraint(
                fields=["pipeline", "code"], condition=~Q(code=""), name="stage_code_unique_in_pipeline"
            ),
            models.CheckConstraint(
                condition=Q(kind="open") | Q(is_active=True), name="stage_closed_always_active"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.kind == StageKind.OPEN

    @property
    def is_won(self) -> bool:
        return self.kind == StageKind.WON

    @property
    def is_lost(self) -> bool:
        return self.kind == StageKind.LOST

    @property
    def playbook(self) -> str:
        if _is_chinese():
            return self.playbook_zh or self.playbook_en
        return self.playbook_en or self.playbook_zh

    def exit_field_labels(self) -> list[str]:
        return [str(EXIT_FIELDS[name]) for name in self.exit_fields if name in EXIT_FIELDS]


class StageChecklistItem(models.Model):
    """A free checklist item of a stage's exit criteria (e.g. "NDA signed"), ticked per opportunity."""

    stage = models.ForeignKey(
        Stage, verbose_name=_("stage"), on_delete=models.CASCADE, related_name="checklist_items"
    )
    text_zh = models.CharField(_("text (Chinese)"), max_length=200)
    text_en = models.CharField(_("text (English)"), max_length=200, blank=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("checklist item")
        verbose_name_plural = _("checklist items")
        ordering = ["stage_id", "order", "id"]

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        if _is_chinese():
            return self.text_zh or self.text_en
        return self.text_en or self.text_zh


class LossReason(BilingualNameMixin):
    """Why deals are lost (admin-editable list)."""

    order = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("loss reason")
        verbose_name_plural = _("loss reasons")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.name


class PriorityWeights(SingletonModel):
    """How the priority score weighs its four parts (one row, edited by admins).

    score = 100 × Σ(weight × part) / Σ(weight), each part between 0 and 1:
    amount (amount / full-marks amount, at most 1), customer tier (A/B/C marks / 100),
    probability (% / 100), recent activity (1 − days since the last activity / fading days, at least 0).
    """

    weight_amount = models.PositiveSmallIntegerField(_("weight of the amount"), default=35)
    weight_tier = models.PositiveSmallIntegerField(_("weight of the customer tier"), default=20)
    weight_probability = models.PositiveSmallIntegerField(_("weight of the probability"), default=30)
    weight_recency = models.PositiveSmallIntegerField(_("weight of recent activity"), default=15)
    amount_full_marks = models.DecimalField(
        _("amount for full marks"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("1000000.00"),
        validators=[MinValueValidator(Decimal("1.00"))],
        help_text=_("Deals of this amount or more get the full amount part."),
    )
    tier_a_marks = models.PositiveSmallIntegerField(_("tier A marks"), default=100, validators=[MaxValueValidator(100)])
    tier_b_marks = models.PositiveSmallIntegerField(_("tier B marks"), default=60, validators=[MaxValueValidator(100)])
    tier_c_marks = models.PositiveSmallIntegerField(_("tier C marks"), default=30, validators=[MaxValueValidator(100)])
    recency_days = models.PositiveSmallIntegerField(
        _("activity fades after (days)"),
        default=30,
        validators=[MinValueValidator(1)],
        help_text=_("The recent-activity part falls from full to zero over this many days without activity."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("priority weights")
        verbose_name_plural = _("priority weights")

    def __str__(self) -> str:
        return str(_("Priority weights"))

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1  # a singleton
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not (self.weight_amount + self.weight_tier + self.weight_probability + self.weight_recency):
            raise ValidationError(_("At least one weight must be above zero."))



# --- opportunities ----------------------------------------------------------------------------------
class Currency(models.TextChoices):
    CNY = "CNY", _("Chinese yuan (CNY)")
    USD = "USD", _("US dollar (USD)")
    EUR = "EUR", _("Euro (EUR)")
    HKD = "HKD", _("Hong Kong dollar (HKD)")
    JPY = "JPY", _("Japanese yen (JPY)")


class Source(models.TextChoices):
    WEBSITE = "website", _("Website")
    REFERRAL = "referral", _("Referral")
    EXHIBITION = "exhibition", _("Trade show")
    COLD_CALL = "cold_call", _("Cold call")
    PARTNER = "partner", _("Partner")
    EXISTING = "existing", _("Existing customer")
    ADVERTISING = "advertising", _("Advertising")
    OTHER = "other", _("Other")


class TransitionAction(models.TextChoices):
    CREATE = "create", _("Created")
    ADVANCE = "advance", _("Advanced")
    MOVE_BACK = "move_back", _("Moved back")
    WIN = "win", _("Won")
    LOSE = "lose", _("Lost")
    REOPEN = "reopen", _("Reopened")
    REASSIGN = "reassign", _("Moved by an administrator")
    IMPORT = "import", _("Imported")


@dataclass(frozen=True)
class Unmet:
    """One reason a move is refused: an exit criterion not met, or a rule (code, translated label)."""

    code: str
    label: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": str(self.label), "field": self.field}


class OpportunityQuerySet(ScopedQuerySet):
    """Scoped by the owner (accounts.scope)."""

    def open(self) -> OpportunityQuerySet:
        return self.filter(stage__kind=StageKind.OPEN)


class UpperTrigramIndex(PostgresOnlyIndex, GinIndex):
    """A GIN trigram index (pg_trgm) on UPPER(field): what Django's `__icontains` compiles to on
    PostgreSQL (`UPPER(col) LIKE UPPER('%term%')`), which an index on the bare column cannot serve.
    PostgreSQL only, as PostgresOnlyIndex."""

    def __init__(self, *, field: str, name: str):
        self.field = field
        super().__init__(OpClass(Upper(field), name="gin_trgm_ops"), name=name)

    def deconstruct(self):
        return "opportunities.models.UpperTrigramIndex", (), {"field": self.field, "name": self.name}


def _can_reopen(instance: Opportunity, user: Any) -> bool:
    return is_manager_or_admin(user)


class Opportunity(FSMModelMixin, models.Model):
    """A deal with a customer, moving through the stages of its pipeline."""

    pipeline = models.ForeignKey(
        Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT, related_name="opportunities"
    )
    # stage, customer and owner: no single-column index, the composite indexes below start with them
    stage = StageField(
        Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="opportunities", protected=True,
        db_index=False,
    )
    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="opportunities",
        db_index=False,
    )
    contact = models.ForeignKey(
        "leads.Contact",
        verbose_name=_("contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opportunities",
    )
    title = models.CharField(_("title"), max_length=200)
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.CNY)
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    probability = models.PositiveSmallIntegerField(
        _("probability (%)"), default=10, validators=[MaxValueValidator(100)]
    )
    priority_score = models.PositiveSmallIntegerField(_("priority"), default=0, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="opportunities",
        db_index=False,
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, blank=True)
    competitors = models.CharField(_("competitors"), max_length=200, blank=True)
    next_step = models.CharField(_("next step"), max_length=200, blank=True)
    next_step_date = models.DateField(_("next step date"), null=True, blank=True)
    budget = models.DecimalField(
        _("budget"), max_digits=14, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(ZERO)]
    )
    decision_maker = models.CharField(_("decision maker"), max_length=100, blank=True)
    pain_points = models.TextField(_("pain points"), blank=True)
    loss_reason = models.ForeignKey(
        LossReason, verbose_name=_("loss reason"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="opportunities",
    )
    loss_note = models.TextField(_("loss note"), blank=True)
    lost_from_stage = models.ForeignKey(
        Stage, verbose_name=_("lost from stage"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    stage_entered_at = models.DateTimeField(_("in this stage since"), default=timezone.now)
    stalled_since = models.DateTimeField(
        _("stalled since"), null=True, blank=True,
        help_text=_("Set by the stall scan when the deal passed its stage's time limit; cleared by a move."),
    )
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    # set exactly while the deal is won or lost (the list's "open" filter and the won/lost columns rely on it)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    external_id = models.CharField(
        _("external id"), max_length=100, null=True, blank=True, unique=True,
        help_text=_("The key of this record in another system or import file; re-imports update it."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = OpportunityQuerySet.as_manager()
    history = HistoricalRecords(excluded_field_kwargs={"stage": {"protected"}})

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-priority_score", "-id"]
        indexes = [
            # the list's search box: title ILIKE '%term%' (opportunity_list; the customer-name side of the
            # search uses the customers' customer_search_trgm)
            UpperTrigramIndex(field="title", name="opp_title_upper_trgm"),
            # board column (admin, or a manager whose team holds most deals): a stage's cards, best first
            models.Index(fields=["stage", "-priority_score", "-id"], name="opp_stage_priority_idx"),
            # board column of a rep (a team: one index range per owner): own cards in a stage, best first
            models.Index(fields=["owner", "stage", "-priority_score", "-id"], name="opp_owner_stage_prio_idx"),
            # the list sorted by priority (its default), all pipelines and statuses: admins and managers
            # walk the first, a rep the second
            models.Index(fields=["-priority_score", "-id"], name="opp_priority_idx"),
            models.Index(fields=["owner", "-priority_score", "-id"], name="opp_owner_priority_idx"),
            # won/lost columns and dashboards: deals closed in a period (totals read the index only)
            models.Index(
                fields=["stage", "-closed_at"], include=["owner", "amount", "probability"], name="opp_stage_closed_cov_idx"
            ),
            # dashboards, sales cycle and its 12-month trend: won deals closed in a period with their
            # creation time (closed_at - created_at read from the index only)
            models.Index(
                fields=["closed_at"], include=["stage", "owner", "created_at"], condition=Q(closed_at__isnull=False),
                name="opp_closed_cycle_cov_idx",
            ),
            # dashboards, conversion funnel: the cohort of a pipeline's deals created in a period, by owner
            # and source (read from the index only)
            models.Index(
                fields=["pipeline", "created_at"], include=["owner", "source", "stage"], name="opp_pipeline_created_cov_idx"
            ),
            # list sorted by expected close date / filtered by a close-date range
            models.Index(fields=["owner", "expected_close_date"], name="opp_owner_close_idx"),
            # the customer page: a customer's deals
            models.Index(fields=["customer", "-created_at"], name="opp_customer_created_idx"),
            # the stall scan and the list's "stalled" filter: deals of a stage by time in the stage
            models.Index(fields=["stage", "stage_entered_at"], name="opp_stage_entered_idx"),
            # the stalled-deal reminders (activities.reminders): deals flagged in the last weeks
            models.Index(
                fields=["stalled_since"], condition=Q(stalled_since__isnull=False), name="opp_stalled_since_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(probability__lte=100), name="opp_probability_max_100"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="opp_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("opportunities:detail", args=[self.pk])

    # --- what the rules need to know (loaded once per instance) ----------------------------------
    def pipeline_stages(self) -> list[Stage]:
        """Every stage of the pipeline, in order (one query, cached on the instance)."""
        cached = getattr(self, "_pipeline_stages", None)
        if cached is None:
            cached = list(Stage.objects.filter(pipeline_id=self.pipeline_id).order_by("order", "id"))
            self._pipeline_stages = cached
        return cached

    def active_open_stages(self) -> list[Stage]:
        return [s for s in self.pipeline_stages() if s.is_open and s.is_active]

    def terminal_stage(self, kind: str) -> Stage | None:
        return next((s for s in self.pipeline_stages() if s.kind == kind), None)

    def current_stage(self) -> Stage:
        """The Stage row (cached by select_related or by the last transition; else one of the
        pipeline's stages, already loaded for the rules)."""
        field = type(self)._meta.get_field("stage")
        if not field.is_cached(self):
            stage = next((s for s in self.pipeline_stages() if s.pk == self.stage_id), None)
            if stage is not None:
                field.set_cached_value(self, stage)
        return self.stage

    def next_open_stage(self) -> Stage | None:
        current = self.current_stage()
        later = [s for s in self.active_open_stages() if (s.order, s.pk) > (current.order, current.pk)]
        return later[0] if later else None

    def earlier_open_stages(self) -> list[Stage]:
        current = self.current_stage()
        return [s for s in self.active_open_stages() if (s.order, s.pk) < (current.order, current.pk)]

    def is_in_last_open_stage(self) -> bool:
        stages = self.active_open_stages()
        return bool(stages) and stages[-1].pk == self.stage_id

    def checklist_items(self) -> list[StageChecklistItem]:
        """The checklist items of the current stage with `ticked` set (two queries, cached)."""
        cached = getattr(self, "_checklist_items", None)
        if cached is None:
            cached = list(StageChecklistItem.objects.filter(stage_id=self.stage_id).order_by("order", "id"))
            ticked = set(
                ChecklistTick.objects.filter(opportunity_id=self.pk, item__stage_id=self.stage_id)
                .values_list("item_id", flat=True)
            ) if self.pk else set()
            for item in cached:
                item.ticked = item.pk in ticked
            self._checklist_items = cached
        return cached

    def forget_rule_caches(self) -> None:
        for attr in ("_pipeline_stages", "_checklist_items", "_signed_contract"):
            self.__dict__.pop(attr, None)

    # --- pure rules -----------------------------------------------------------------------------
    def field_is_filled(self, name: str) -> bool:
        if name == "amount":
            return self.amount is not None and self.amount > ZERO
        if name == "contact":
            return self.contact_id is not None
        value = getattr(self, name)
        if isinstance(value, str):
            return bool(value.strip())
        return value is not None

    def exit_criteria_unmet(self) -> list[Unmet]:
        """The current stage's exit criteria not met yet: empty required fields, unticked items."""
        stage = self.current_stage()
        unmet = [
            Unmet(code=f"field:{name}", label=str(EXIT_FIELDS[name]), field=name)
            for name in stage.exit_fields
            if name in EXIT_FIELDS and not self.field_is_filled(name)
        ]
        unmet += [
            Unmet(code=f"checklist:{item.pk}", label=item.text)
            for item in self.checklist_items()
            if not item.ticked
        ]
        return unmet

    def _closed_unmet(self) -> list[Unmet]:
        stage = self.current_stage()
        if stage.is_won:
            return [Unmet("closed_won", _("The deal is won: it cannot move any more."))]
        if stage.is_lost:
            return [Unmet("closed_lost", _("The deal is lost: reopen it first."))]
        return []

    def advance_unmet(self) -> list[Unmet]:
        closed = self._closed_unmet()
        if closed:
            return closed
        if self.next_open_stage() is None:
            return [Unmet("last_open_stage", _("This is the last open stage: the deal is won by signing its contract."))]
        return self.exit_criteria_unmet()

    def move_back_unmet(self, to_stage: Stage | None = None) -> list[Unmet]:
        closed = self._closed_unmet()
        if closed:
            return closed
        earlier = self.earlier_open_stages()
        if not earlier:
            return [Unmet("first_open_stage", _("This is the first stage: there is nothing to move back to."))]
        if to_stage is not None and to_stage.pk not in {s.pk for s in earlier}:
            return [Unmet("not_an_earlier_stage", _("A deal can only move back to an earlier active stage."))]
        return []

    def win_unmet(self) -> list[Unmet]:
        closed = self._closed_unmet()
        if closed:
            return closed
        unmet = []
        if not self.is_in_last_open_stage():
            unmet.append(Unmet("not_last_open_stage", _("A deal is won only from the last open stage.")))
        if not self.has_signed_contract():
            unmet.append(Unmet("no_signed_contract", _("The deal has no signed contract.")))
        return unmet

    def lose_unmet(self) -> list[Unmet]:
        return self._closed_unmet()

    def reopen_unmet(self) -> list[Unmet]:
        if not self.current_stage().is_lost:
            return [Unmet("not_lost", _("Only a lost deal can be reopened."))]
        if self.reopen_target() is None:
            return [Unmet("no_open_stage", _("The pipeline has no active open stage to reopen into."))]
        return []

    def has_signed_contract(self) -> bool:
        """Asks the checks registered in `opportunities.rules` (the contracts app registers one)."""
        cached = getattr(self, "_signed_contract", None)
        if cached is None:
            from .rules import has_signed_contract

            cached = has_signed_contract(self)
            self._signed_contract = cached
        return cached

    def reopen_target(self) -> Stage | None:
        """The stage the deal was lost from; if that stage has been deactivated since, the next active
        open stage after it (or the last one)."""
        stages = self.active_open_stages()
        if not stages:
            return None
        lost_from = next((s for s in self.pipeline_stages() if s.pk == self.lost_from_stage_id), None)
        if lost_from is None:
            return stages[0]
        if lost_from.is_active and lost_from.is_open:
            return lost_from
        later = [s for s in stages if (s.order, s.pk) > (lost_from.order, lost_from.pk)]
        return later[0] if later else stages[-1]

    # --- the transitions (called only by opportunities.services) ---------------------------------
    @transition(field=stage, source="*", target=RETURN_VALUE(), conditions=[lambda o: not o.advance_unmet()])
    def advance(self) -> Stage:
        return self.next_open_stage()

    @transition(
        field=stage, source="*", target=RETURN_VALUE(), conditions=[lambda o: not o.move_back_unmet()]
    )
    def move_back(self, to_stage: Stage) -> Stage:
        if self.move_back_unmet(to_stage):
            raise ValidationError(_("A deal can only move back to an earlier active stage."))
        return to_stage

    @transition(field=stage, source="*", target=RETURN_VALUE(), conditions=[lambda o: not o.win_unmet()])
    def win(self) -> Stage:
        return self.terminal_stage(StageKind.WON)

    @transition(field=stage, source="*", target=RETURN_VALUE(), conditions=[lambda o: not o.lose_unmet()])
    def lose(self, reason: LossReason, note: str = "") -> Stage:
        self.lost_from_stage_id = self.stage_id
        self.loss_reason = reason
        self.loss_note = note
        return self.terminal_stage(StageKind.LOST)

    @transition(
        field=stage, source="*", target=RETURN_VALUE(), conditions=[lambda o: not o.reopen_unmet()],
        permission=_can_reopen,
    )
    def reopen(self) -> Stage:
        target = self.reopen_target()
        self.loss_reason = None
        self.loss_note = ""
        self.lost_from_stage = None
        return target

    # --- derived values for the pages -----------------------------------------------------------
    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount or ZERO) * Decimal(self.probability) / Decimal(100)

    def days_in_stage(self, now: datetime | None = None) -> int:
        return max(0, ((now or timezone.now()) - self.stage_entered_at).days)

    def stall_deadline(self) -> datetime | None:
        stage = self.current_stage()
        if not stage.is_open or stage.stall_days is None:
            return None
        return self.stage_entered_at + timedelta(days=stage.stall_days)

    def is_stalled(self, now: datetime | None = None) -> bool:
        deadline = self.stall_deadline()
        return deadline is not None and (now or timezone.now()) > deadline

    @property
    def is_closed(self) -> bool:
        return not self.current_stage().is_open


class StageOwnerTotal(models.Model):
    """Board column totals per stage and owner: how many deals, their amount and weighted amount.

    Maintained on PostgreSQL by a trigger on the opportunity table (migration 0003), so every write
    path (services, bulk updates, imports, raw SQL) keeps it exact, in the writing transaction; the
    board sums a handful of these rows instead of scanning the open deals. Never written by Python
    code except `services.board_totals_rebuild` (a full recount). Not used on SQLite (development),
    where the board aggregates the opportunities directly.
    """

    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="+", db_index=False
    )
    opportunity_count = models.BigIntegerField(_("opportunities"), default=0)
    amount_sum = models.DecimalField(_("total amount"), max_digits=20, decimal_places=2, default=ZERO)
    weighted_sum = models.DecimalField(_("weighted amount"), max_digits=24, decimal_places=4, default=ZERO)

    class Meta:
        verbose_name = _("stage total")
        verbose_name_plural = _("stage totals")
        constraints = [models.UniqueConstraint(fields=["stage", "owner"], name="stage_owner_total_unique")]

    def __str__(self) -> str:
        return f"{self.stage_id}/{self.owner_id}: {self.opportunity_count}"


class ChecklistTick(models.Model):
    """A checklist item done for one opportunity."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.CASCADE, related_name="checklist_ticks"
    )
    item = models.ForeignKey(
        StageChecklistItem, verbose_name=_("checklist item"), on_delete=models.CASCADE, related_name="ticks"
    )
    ticked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("ticked by"), on_delete=models.SET_NULL, null=True,
        related_name="+",
    )
    ticked_at = models.DateTimeField(_("ticked at"), default=timezone.now)

    class Meta:
        verbose_name = _("checklist tick")
        verbose_name_plural = _("checklist ticks")
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "item"], name="checklist_tick_once"),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity_id}: {self.item_id}"


class StageChangeQuerySet(ScopedQuerySet):
    owner_field = "opportunity__owner"


class StageChange(models.Model):
    """One move of an opportunity between stages: the history analytics query."""

    opportunity = models.ForeignKey(
        Opportunity, verbose_name=_("opportunity"), on_delete=models.CASCADE, related_name="stage_changes"
    )
    action = models.CharField(_("action"), max_length=16, choices=TransitionAction.choices)
    from_stage = models.ForeignKey(
        Stage, verbose_name=_("from stage"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, verbose_name=_("to stage"), on_delete=models.PROTECT, related_name="+")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("changed by"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+",
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    note = models.TextField(_("note"), blank=True)
    seconds_in_previous_stage = models.PositiveBigIntegerField(_("seconds in the previous stage"), null=True, blank=True)
    imported = models.BooleanField(_("imported"), default=False)

    objects = StageChangeQuerySet.as_manager()

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["changed_at", "id"]
        indexes = [
            # the detail page's history of one deal
            models.Index(fields=["opportunity", "changed_at"], name="stagechange_opp_time_idx"),
            # analytics: moves into / out of a stage in a period (funnel, time in stage)
            models.Index(fields=["to_stage", "changed_at"], name="stagechange_to_time_idx"),
            models.Index(fields=["from_stage", "changed_at"], name="stagechange_from_time_idx"),
            # dashboards, conversion funnel: the stages the deals of a cohort reached (index only)
            models.Index(fields=["opportunity"], include=["to_stage"], name="stagechange_reached_cov_idx"),
            # dashboards, time in stage: moves out of a stage in a period with their duration (index only)
            models.Index(
                fields=["changed_at"], include=["from_stage", "seconds_in_previous_stage", "opportunity"],
                name="stagechange_time_cov_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity_id}: {self.from_stage_id} → {self.to_stage_id}"

    @property
    def duration(self) -> timedelta | None:
        if self.seconds_in_previous_stage is None:
            return None
        return timedelta(seconds=self.seconds_in_previous_stage)
