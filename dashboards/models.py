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
