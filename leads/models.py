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


class Tier(models.TextChoices):
    A = "A", _("Tier A")
    B = "B", _("Tier B")
    C = "C", _("Tier C")


class CustomerStatus(models.TextChoices):
    LEAD = "lead", _("Lead")
    PROSPECT = "prospect", _("Prospect")
    CUSTOMER = "customer", _("Customer")
    INACTIVE = "inactive", _("Inactive")


class Customer(models.Model):
    """A company or an individual the team sells to. Unowned customers sit in their team's lead pool."""

    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(
        _("status"), max_length=16, choices=CustomerStatus.choices, default=CustomerStatus.LEAD
    )
    tier = models.CharField(_("tier"), max_length=1, choices=Tier.choices, default=Tier.C)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    last_contacted_at = models.DateTimeField(_("last contacted at"), null=True, blank=True)
    next_follow_up_at = models.DateTimeField(_("next follow-up at"), null=True, blank=True)
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


class Contact(models.Model):
    """A person at a customer."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=100)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    wechat = models.CharField(_("WeChat ID"), max_length=64, blank=True)
    is_decision_maker = models.BooleanField(_("decision maker"), default=False)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["customer_id", "-is_decision_maker", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.customer})"
