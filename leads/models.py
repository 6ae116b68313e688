from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.scope import ScopedQuerySet, owner_scope_q, user_team_ids


class CustomerQuerySet(ScopedQuerySet):
    def scope_q(self, user) -> Q:
        """Owned records by the data-scope rule, plus the unowned pool of the user's teams."""
        owned = owner_scope_q(user, "owner")
        if not owned:  # admins: Q() already matches everything
            return owned
        team_ids = user_team_ids(user)
        if not team_ids:
            return owned
        return owned | Q(owner__isnull=True, team_id__in=sorted(team_ids))


class Customer(models.Model):
    """A company or an individual the team sells to. Unowned customers sit in their team's lead pool."""

    name = models.CharField(_("name"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
    )
    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        help_text=_("The team whose lead pool holds this customer when it has no owner."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-updated_at", "-id"]
        indexes = [
            # the list page: a user's customers, most recently updated first
            models.Index(fields=["owner", "-updated_at"], name="customer_owner_updated_idx"),
            # the lead pool: unowned customers of a team
            models.Index(fields=["team", "owner"], name="customer_team_pool_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("leads:customer_detail", args=[self.pk])
