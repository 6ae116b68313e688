from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.scope import ScopedQuerySet, owner_scope_q, user_team_ids
from crm.models import RowProgress, SingletonModel

from .normalise import name_key, normalise_email, normalise_phone, search_digits


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

    def pool(self) -> CustomerQuerySet:
        return self.filter(owner__isnull=True)


class PostgresOnlyIndex(models.Index):
    """An index created on PostgreSQL only. The `make run` demo on SQLite (no DATABASE_URL) cannot build
    some of them (NULLS LAST, pg_trgm); it skips them and runs its small data set without."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return _NoSQL()
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return _NoSQL()
        return super().remove_sql(model, schema_editor, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        return "leads.models.PostgresOnlyIndex", args, kwargs


class TrigramIndex(PostgresOnlyIndex, GinIndex):
    """A GIN trigram index (pg_trgm) for ILIKE '%...%' and similarity searches (PostgreSQL only, as
    PostgresOnlyIndex: on SQLite the search scans, which is fine for a demo data set)."""

    def __init__(self, *, fields, name):
        super().__init__(fields=fields, name=name, opclasses=["gin_trgm_ops"] * len(fields))

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        kwargs.pop("opclasses", None)
        return "leads.models.TrigramIndex", args, kwargs


class _NoSQL:
    """An empty DDL statement (what a skipped index produces on a database without pg_trgm)."""

    def references_table(self, *args, **kwargs) -> bool:
        return False

    def references_column(self, *args, **kwargs) -> bool:
        return False

    def rename_table_references(self, *args, **kwargs) -> None:
        return None

    def rename_column_references(self, *args, **kwargs) -> None:
        return None

    def __str__(self) -> str:
        return "SELECT 1"


class Tier(models.TextChoices):
    A = "A", _("Tier A")
    B = "B", _("Tier B")
    C = "C", _("Tier C")


class CustomerStatus(models.TextChoices):
    LEAD = "lead", _("Lead")
    PROSPECT = "prospect", _("Prospect")
    CUSTOMER = "customer", _("Customer")
    INACTIVE = "inactive", _("Inactive")


class CustomerType(models.TextChoices):
    COMPANY = "company", _("Company")
    INDIVIDUAL = "individual", _("Individual")


class Industry(models.TextChoices):
    MANUFACTURING = "manufacturing", _("Manufacturing")
    SOFTWARE = "software", _("Software & IT")
    FINANCE = "finance", _("Finance")
    RETAIL = "retail", _("Retail & e-commerce")
    EDUCATION = "education", _("Education")
    HEALTHCARE = "healthcare", _("Healthcare")
    LOGISTICS = "logistics", _("Logistics")
    REAL_ESTATE = "real_estate", _("Real estate & construction")
    ENERGY = "energy", _("Energy")
    GOVERNMENT = "government", _("Government & public sector")
    OTHER = "other", _("Other")


class CompanySize(models.TextChoices):
    MICRO = "1-10", _("1-10 employees")
    SMALL = "11-50", _("11-50 employees")
    MEDIUM = "51-200", _("51-200 employees")
    LARGE = "201-1000", _("201-1000 employees")
    ENTERPRISE = "1000+", _("More than 1000 employees")


class WebAssignment(models.TextChoices):
    POOL = "pool", _("Put into the team's lead pool")
    ROUND_ROBIN = "round_robin", _("Assign round-robin to the team's reps")


# The seeded channels (their names are translated when shown; names an admin adds are shown as typed).
SEEDED_CHANNEL_NAMES = {
    "website": gettext_noop("Website registration"),
    "social": gettext_noop("Social media"),
    "event": gettext_noop("Offline event"),
    "referral": gettext_noop("Referral"),
    "cold_call": gettext_noop("Cold call"),
    "advertising": gettext_noop("Advertising"),
    "other": gettext_noop("Other"),
}


def new_token() -> str:
    return secrets.token_urlsafe(24)


class SourceChannel(models.Model):
    """Where a customer came from (admin-editable). Each channel may also take leads from the public
    web-to-lead form at /customers/web/<token>/."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    web_enabled = models.BooleanField(
        _("web-to-lead form enabled"), default=False,
        help_text=_("Accept leads from the public form and JSON endpoint of this channel."),
    )
    web_token = models.CharField(
        _("web-to-lead token"), max_length=64, unique=True, default=new_token,
        help_text=_("The secret part of the public form's address. Change it to stop the old address."),
    )
    web_team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team receiving web leads"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+",
    )
    web_assignment = models.CharField(
        _("web lead assignment"), max_length=16, choices=WebAssignment.choices, default=WebAssignment.POOL
    )
    web_last_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("last round-robin assignee"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+", editable=False,
    )

    class Meta:
        verbose_name = _("source channel")
        verbose_name_plural = _("source channels")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        if SEEDED_CHANNEL_NAMES.get(self.code) == self.name:
            return gettext(self.name)
        return self.name

    def get_web_url(self) -> str:
        return reverse("leads:web_to_lead", args=[self.web_token])


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TierSource(models.TextChoices):
    RULES = "rules", _("Computed from the tier rules")
    MANUAL = "manual", _("Set by hand")


class Customer(models.Model):
    """A company or an individual the team sells to. Unowned customers sit in their team's lead pool."""

    name = models.CharField(_("name"), max_length=200)
    customer_type = models.CharField(
        _("type"), max_length=16, choices=CustomerType.choices, default=CustomerType.COMPANY
    )
    status = models.CharField(
        _("status"), max_length=16, choices=CustomerStatus.choices, default=CustomerStatus.LEAD
    )
    tier = models.CharField(_("tier"), max_length=1, choices=Tier.choices, default=Tier.C)
    industry = models.CharField(_("industry"), max_length=32, choices=Industry.choices, blank=True)
    region = models.CharField(_("region"), max_length=100, blank=True, help_text=_("e.g. 华东 · 上海"))
    address = models.CharField(_("address"), max_length=255, blank=True)
    size = models.CharField(_("company size"), max_length=16, choices=CompanySize.choices, blank=True)
    website = models.URLField(_("website"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("email"), blank=True)
    source = models.ForeignKey(
        SourceChannel, verbose_name=_("source channel"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="customers",
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="customers")
    needs = models.TextField(_("needs and pain points"), blank=True)
    requirements = models.TextField(_("personalised requirements"), blank=True)
    last_contacted_at = models.DateTimeField(_("last contacted at"), null=True, blank=True)
    next_follow_up_at = models.DateTimeField(_("next follow-up at"), null=True, blank=True)
    profile_reviewed_at = models.DateTimeField(_("profile reviewed at"), null=True, blank=True)
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
    assigned_at = models.DateTimeField(_("owner since"), null=True, blank=True)
    # tiers: computed from the rules unless a person set it by hand (with a reason)
    tier_source = models.CharField(
        _("tier set by"), max_length=8, choices=TierSource.choices, default=TierSource.RULES
    )
    tier_reason = models.CharField(_("reason for the tier"), max_length=500, blank=True)
    tier_explanation = models.JSONField(_("why this tier"), default=list, blank=True, editable=False)
    tier_computed_at = models.DateTimeField(_("tier computed at"), null=True, blank=True, editable=False)
    # bookkeeping
    external_id = models.CharField(
        _("external id"), max_length=100, null=True, blank=True, unique=True,
        help_text=_("The key of this customer in another system or import file; re-imports update it."),
    )
    name_key = models.CharField(max_length=200, blank=True, editable=False, db_index=True)
    search_text = models.TextField(blank=True, editable=False)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CustomerQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["search_text", "name_key", "updated_at"])

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-updated_at", "-id"]
        indexes = [
            # the list page: a user's customers, most recently updated first
            models.Index(fields=["owner", "-updated_at"], name="customer_owner_updated_idx"),
            # the lead pool: unowned customers of a team
            models.Index(fields=["team", "owner"], name="customer_team_pool_idx"),
            # the list search box: ILIKE '%term%' over name, phones, emails and contact names
            TrigramIndex(fields=["search_text"], name="customer_search_trgm"),
            # duplicate warnings: similar company names (trigram similarity of the normalised name)
            TrigramIndex(fields=["name_key"], name="customer_name_key_trgm"),
            # duplicate warnings: same phone / email
            models.Index(fields=["phone"], name="customer_phone_idx"),
            models.Index(fields=["email"], name="customer_email_idx"),
            # "overdue follow-up" filter and the follow-up sort (NULLS LAST is the ascending default)
            models.Index(fields=["next_follow_up_at", "id"], name="customer_follow_up_idx"),
            # the default sort of the list for admins and managers: most recently updated first
            models.Index(fields=["-updated_at", "-id"], name="customer_updated_idx"),
            # auto-return to the pool: owned leads by last contact
            models.Index(fields=["status", "owner", "last_contacted_at"], name="customer_pool_return_idx"),
            # sort by last contact, most recent first, never-contacted last
            PostgresOnlyIndex(F("last_contacted_at").desc(nulls_last=True), F("id").desc(), name="customer_contacted_idx"),
            # sort by name
            models.Index(fields=["name", "id"], name="customer_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.phone = normalise_phone(self.phone)
        self.email = normalise_email(self.email)
        self.name_key = name_key(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or {"name", "phone", "email"} & set(update_fields):
            self.search_text = self.build_search_text()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "search_text", "name_key"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("leads:customer_detail", args=[self.pk])

    def build_search_text(self, contacts: list | None = None) -> str:
        """What the list's search box matches: names, phones (also digits only), emails, contacts."""
        if contacts is None:
            contacts = list(self.contacts.values_list("name", "phone", "email")) if self.pk else []
        parts = [self.name, self.phone, search_digits(self.phone), self.email]
        for name, phone, email in contacts:
            parts += [name, phone, search_digits(phone), email]
        return " | ".join(p for p in parts if p).lower()

    @property
    def in_pool(self) -> bool:
        return self.owner_id is None


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
    external_id = models.CharField(
        _("external id"), max_length=100, null=True, blank=True, unique=True,
        help_text=_("The key of this record in another system or import file; re-imports update it."),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["customer_id", "-is_decision_maker", "name"]
        indexes = [models.Index(fields=["phone"], name="contact_phone_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.customer})"

    def save(self, *args, **kwargs):
        self.phone = normalise_phone(self.phone)
        self.email = normalise_email(self.email)
        super().save(*args, **kwargs)
        refresh_search_text(self.customer_id)

    def delete(self, *args, **kwargs):
        customer_id = self.customer_id
        result = super().delete(*args, **kwargs)
        refresh_search_text(customer_id)
        return result


def refresh_search_text(customer_id: int) -> None:
    """Recompute a customer's search text after its contacts changed (two small queries)."""
    customer = Customer.objects.filter(pk=customer_id).only("name", "phone", "email").first()
    if customer is not None:
        Customer.objects.filter(pk=customer_id).update(search_text=customer.build_search_text())


# --- admin-editable rules and settings ------------------------------------------------------------
class FollowUpCadence(models.Model):
    """How often a customer of a tier should be contacted: logging an activity sets the next
    follow-up date this many days later."""

    tier = models.CharField(_("tier"), max_length=1, choices=Tier.choices, unique=True)
    days = models.PositiveSmallIntegerField(
        _("follow up every (days)"), validators=[MinValueValidator(1), MaxValueValidator(365)]
    )

    class Meta:
        verbose_name = _("follow-up cadence")
        verbose_name_plural = _("follow-up cadences")
        ordering = ["tier"]

    def __str__(self) -> str:
        return gettext("%(tier)s: every %(days)s days") % {"tier": self.get_tier_display(), "days": self.days}


class TierRule(models.Model):
    """A customer gets the best tier (A before B) one of whose active rules it meets; otherwise C.
    A rule: the metric (e.g. won revenue in the last 12 months) is at least the threshold."""

    tier = models.CharField(
        _("tier"), max_length=1, choices=[(Tier.A, Tier.A.label), (Tier.B, Tier.B.label)]
    )
    metric = models.CharField(
        _("metric"), max_length=64,
        help_text=_("What is measured; the apps that provide metrics are listed in the admin form."),
    )
    threshold = models.DecimalField(_("at least"), max_digits=16, decimal_places=2)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("tier rule")
        verbose_name_plural = _("tier rules")
        ordering = ["tier", "metric", "-threshold"]

    def __str__(self) -> str:
        from .tiering import metric_label

        return f"{self.get_tier_display()}: {metric_label(self.metric)} ≥ {self.threshold.normalize():f}"


class LeadSettings(SingletonModel):
    """The customer settings (one row, edited in the admin)."""

    freshness_days = models.PositiveSmallIntegerField(
        _("profile needs an update after (days)"), default=90, validators=[MinValueValidator(1)],
        help_text=_("A customer whose profile was not reviewed for this long is flagged \"needs update\"."),
    )
    pool_return_days = models.PositiveSmallIntegerField(
        _("return leads to the pool after (days without contact)"), default=30,
        validators=[MinValueValidator(1)],
        help_text=_("An owned lead nobody contacted for this long goes back to its team's lead pool."),
    )
    pool_return_enabled = models.BooleanField(_("return untouched leads to the pool"), default=True)
    export_managers_only = models.BooleanField(
        _("only managers and admins may export"), default=False
    )
    web_limit_per_hour = models.PositiveSmallIntegerField(
        _("web-to-lead submissions per hour and IP"), default=10, validators=[MinValueValidator(1)]
    )

    class Meta:
        verbose_name = _("customer settings")
        verbose_name_plural = _("customer settings")

    def __str__(self) -> str:
        return str(_("Customer settings"))



# --- what happened ---------------------------------------------------------------------------------
class OwnershipKind(models.TextChoices):
    CREATED = "created", _("Created")
    CLAIMED = "claimed", _("Claimed from the pool")
    ASSIGNED = "assigned", _("Assigned")
    RELEASED = "released", _("Released to the pool")
    RETURNED = "returned", _("Returned to the pool automatically")
    MERGED = "merged", _("Merged")


class OwnershipChange(models.Model):
    """Every change of a customer's owner: claims, assignments, releases and automatic returns."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="ownership_changes"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=OwnershipKind.choices)
    from_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("previous owner"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+",
    )
    to_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("new owner"), on_delete=models.SET_NULL, null=True,
        blank=True, related_name="+",
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ownership change")
        verbose_name_plural = _("ownership changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "-at"], name="ownership_customer_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.get_kind_display()}"


class CustomerMerge(models.Model):
    """A merge: `merged_name` (#merged_id) was folded into `survivor`. `snapshot` keeps the removed
    customer's fields and any row that could not move (a one-to-one the survivor already had)."""

    survivor = models.ForeignKey(
        Customer, verbose_name=_("kept customer"), on_delete=models.SET_NULL, null=True,
        related_name="merges",
    )
    merged_id = models.BigIntegerField(_("merged customer id"))
    merged_name = models.CharField(_("merged customer"), max_length=200)
    snapshot = models.JSONField(_("snapshot"), default=dict)
    moved = models.JSONField(_("moved rows"), default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("merged by"), on_delete=models.SET_NULL, null=True,
        related_name="+",
    )
    merged_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.merged_name} → {self.survivor}"


class ImportStatus(models.TextChoices):
    PREVIEW = "preview", _("Preview")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class DuplicatePolicy(models.TextChoices):
    SKIP = "skip", _("Skip rows that look like existing customers")
    CREATE = "create", _("Import them anyway")


class CustomerImport(RowProgress, models.Model):
    """An uploaded CSV/XLSX file: parsed rows, their errors and likely duplicates, and the progress of
    the Celery task that imports them. Each row has a key (its external id, or one derived from its
    name, phone and email), so a re-run or a resumed run never creates the same customer twice."""

    file_name = models.CharField(_("file"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.PREVIEW)
    rows = models.JSONField(_("rows"), default=list, editable=False)
    errors = models.JSONField(_("errors"), default=dict, editable=False)
    duplicates = models.JSONField(_("likely duplicates"), default=dict, editable=False)
    duplicate_policy = models.CharField(
        _("likely duplicates"), max_length=8, choices=DuplicatePolicy.choices, default=DuplicatePolicy.SKIP
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner of new customers"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+",
    )
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed rows"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    failure = models.TextField(_("failure"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer import")
        verbose_name_plural = _("customer imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("leads:import_detail", args=[self.pk])

    @property
    def valid_rows(self) -> int:
        return self.total_rows - len(self.errors)
