"""Targets (绩效考核) per rep per month, and the dashboard settings an admin edits.

Progress against a target is computed by `dashboards.selectors.target_progress`, never stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.models import SingletonModel

ZERO = Decimal("0")


class DashboardSettings(SingletonModel):
    """One row: the probability from which an open deal counts as "commit" in the forecast."""

    commit_probability = models.PositiveSmallIntegerField(
        _("commit from probability (%)"),
        default=70,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Open deals with at least this win probability count as commit in the forecast."),
    )

    class Meta:
        verbose_name = _("dashboard settings")
        verbose_name_plural = _("dashboard settings")

    def __str__(self) -> str:
        return str(_("Dashboard settings"))

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1  # a singleton
        super().save(*args, **kwargs)



class Target(models.Model):
    """What one rep should reach in one month. `month` is the first day of the month."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("sales rep"), on_delete=models.CASCADE, related_name="targets"
    )
    month = models.DateField(_("month"))
    signed_revenue = models.DecimalField(
        _("signed revenue"), max_digits=16, decimal_places=2, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    collected = models.DecimalField(
        _("collected payments"), max_digits=16, decimal_places=2, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    new_customers = models.PositiveIntegerField(_("new customers"), default=0)
    won_deals = models.PositiveIntegerField(_("won deals"), default=0)
    calls = models.PositiveIntegerField(_("calls"), default=0)
    visits = models.PositiveIntegerField(_("visits"), default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("updated by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["-month", "user_id"]
        constraints = [
            # one target per rep and month; also the index of "a team's targets of a month"
            models.UniqueConstraint(fields=["month", "user"], name="target_one_per_rep_month"),
            models.CheckConstraint(condition=models.Q(month__day=1), name="target_month_first_day"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.month:%Y-%m}"

    def clean(self) -> None:
        if self.month and self.month.day != 1:
            raise ValidationError({"month": _("Use the first day of the month.")})


# --- summary tables (the dashboard's rollups) ------------------------------------------------------------
# Kept exact by PostgreSQL row triggers on the activities, deals and stage changes (dashboards/rollups.py):
# every insert, update and delete, whichever front end or import made it, moves the counts in the same
# transaction. Days are local dates in settings.TIME_ZONE. The dashboard reads a few thousand of these rows
# instead of a period's hundreds of thousands of source rows. Nothing writes them but the triggers and
# `rollups.rebuild`. The columns point at their rows without database constraints (a rollup row never
# blocks a delete) and without indexes of their own: each table's unique key is the index its reads use.
def _ref(model: str) -> models.ForeignKey:
    return models.ForeignKey(model, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")


class SummaryRow(models.Model):
    class Meta:
        abstract = True

    def __str__(self) -> str:
        return " ".join(f"{f.attname}={getattr(self, f.attname)}" for f in self._meta.concrete_fields if f.name != "id")


class ActivityDay(SummaryRow):
    """Per local day, owner and activity kind: activities planned that day (planned_at; not cancelled)
    and activities done that day (done_at; status done)."""

    day = models.DateField()
    owner = _ref(settings.AUTH_USER_MODEL)
    kind = _ref("activities.ActivityKind")
    planned = models.IntegerField(default=0)
    done = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "owner", "kind"], name="rollup_activityday_key")]


class ActivityDueDay(SummaryRow):
    """Per local day and owner: planned activities whose deadline (due_at, else planned_at) is that day."""

    day = models.DateField()
    owner = _ref(settings.AUTH_USER_MODEL)
    planned = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "owner"], name="rollup_activitydueday_key")]


class DealCohortDay(SummaryRow):
    """Per local creation day, pipeline, owner and source: deals created, and of them those now won / lost."""

    day = models.DateField()
    pipeline = _ref("opportunities.Pipeline")
    owner = _ref(settings.AUTH_USER_MODEL)
    source = models.CharField(max_length=16, blank=True)
    created = models.IntegerField(default=0)
    won = models.IntegerField(default=0)
    lost = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "pipeline", "owner", "source"], name="rollup_dealcohortday_key")
        ]


class ReachRow(SummaryRow):
    """Deals of a creation cohort (pipeline, owner, source) that ever entered a stage (a StageChange into it),
    each counted once."""

    pipeline = _ref("opportunities.Pipeline")
    owner = _ref(settings.AUTH_USER_MODEL)
    source = models.CharField(max_length=16, blank=True)
    stage = _ref("opportunities.Stage")
    reached = models.IntegerField(default=0)

    class Meta:
        abstract = True


class DealReachMonth(ReachRow):
    """ReachRow per local creation month (the whole months of a period)."""

    month = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "pipeline", "owner", "source", "stage"], name="rollup_dealreachmonth_key")
        ]


class DealReachDay(ReachRow):
    """ReachRow per local creation day (the days of a period outside its whole months)."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "pipeline", "owner", "source", "stage"], name="rollup_dealreachday_key")
        ]


class DealWonDay(SummaryRow):
    """Per local day of closing and owner: deals now won that closed that day, and their amount."""

    day = models.DateField()
    owner = _ref(settings.AUTH_USER_MODEL)
    won = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "owner"], name="rollup_dealwonday_key")]


class DealOpenCloseDay(SummaryRow):
    """Per expected close date, owner and probability: open deals (closed_at empty) and their amount."""

    day = models.DateField()
    owner = _ref(settings.AUTH_USER_MODEL)
    probability = models.SmallIntegerField()
    deals = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "owner", "probability"], name="rollup_dealopencloseday_key")
        ]


class CycleMonth(SummaryRow):
    """Per local month of closing, owner and duration bucket: won deals' days from creation to won (the
    sales cycle), as a histogram: how many, and the sum of their seconds."""

    month = models.DateField()
    owner = _ref(settings.AUTH_USER_MODEL)
    bucket = models.SmallIntegerField()
    deals = models.IntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "owner", "bucket"], name="rollup_cyclemonth_key")]


class ExitRow(SummaryRow):
    """Moves out of a stage (StageChange rows with a from_stage and seconds_in_previous_stage) of the deals
    of an owner, as a histogram: per duration bucket, how many and the sum of their seconds in the stage."""

    owner = _ref(settings.AUTH_USER_MODEL)
    stage = _ref("opportunities.Stage")
    bucket = models.SmallIntegerField()
    moves = models.IntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class StageExitMonth(ExitRow):
    """ExitRow per local month of the move (the whole months of a period)."""

    month = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "owner", "stage", "bucket"], name="rollup_stageexitmonth_key")
        ]


class RevenueDay(SummaryRow):
    """Per local day and owner: Σ total of contracts signed that day (signed_on) and Σ payment receipts
    received that day (received_on) on the owner's contracts."""

    day = models.DateField()
    owner = _ref(settings.AUTH_USER_MODEL)
    signed = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)
    collected = models.DecimalField(max_digits=20, decimal_places=2, default=ZERO)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "owner"], name="rollup_revenueday_key")]


class CustomerDay(SummaryRow):
    """Per local creation day and owner (none: the lead pool): customers created that day."""

    day = models.DateField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False, related_name="+", null=True)
    created = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "owner"], name="rollup_customerday_key", nulls_distinct=False)
        ]


class CustomerTierTotal(SummaryRow):
    """Per owner (none: the lead pool) and tier: customers now."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False, related_name="+", null=True)
    tier = models.CharField(max_length=1)
    customers = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "tier"], name="rollup_customertiertotal_key", nulls_distinct=False)
        ]


class CustomerTierChange(SummaryRow):
    """Every change of a customer's tier, from the customer's history rows (django-simple-history): the
    history row's time, the tier of the customer's previous history row (none: created) and the new tier."""

    customer = _ref("leads.Customer")
    changed_at = models.DateTimeField()
    from_tier = models.CharField(max_length=1, null=True)
    to_tier = models.CharField(max_length=1)

    class Meta:
        indexes = [
            # tier movement: the changes of a period; a customer's changes (recomputed by the trigger)
            models.Index(fields=["changed_at"], include=["customer", "from_tier", "to_tier"], name="tierchange_time_idx"),
            models.Index(fields=["customer"], name="tierchange_customer_idx"),
        ]


class CustomerPurchase(SummaryRow):
    """Per customer with a signed contract: its owner now and the dates of its first and second signed
    contracts (the repurchase rate)."""

    customer = models.OneToOneField("leads.Customer", on_delete=models.DO_NOTHING, db_constraint=False,
                                    primary_key=True, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False, related_name="+", null=True)
    first_on = models.DateField()
    second_on = models.DateField(null=True)

    class Meta:
        # the repurchase rate of a scope up to a day
        indexes = [models.Index(fields=["owner", "first_on"], include=["second_on"], name="purchase_owner_first_idx")]


class StageExitDay(ExitRow):
    """ExitRow per local day of the move (the days of a period outside its whole months)."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "owner", "stage", "bucket"], name="rollup_stageexitday_key")
        ]
