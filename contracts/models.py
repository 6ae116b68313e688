"""Contracts: numbering, line items, the review/approval lifecycle, attachments, payment plans and
receipts (回款).

Models hold data and pure rules (totals, the FSM transitions and their pure conditions); every write
that matters goes through `contracts.services`, which locks, validates against the database and writes
the approval trail.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from accounts.scope import ScopedQuerySet
from crm.models import SingletonModel

from .storage import private_storage

ZERO = Decimal("0")
HUNDRED = Decimal("100")

DEFAULT_NUMBER_PATTERN = "HT-{year}-{seq:06d}"


class Currency(models.TextChoices):
    CNY = "CNY", _("Chinese yuan (CNY)")
    USD = "USD", _("US dollar (USD)")
    EUR = "EUR", _("Euro (EUR)")
    HKD = "HKD", _("Hong Kong dollar (HKD)")
    JPY = "JPY", _("Japanese yen (JPY)")


# Minor units per currency (ISO 4217); anything not listed has two.
CURRENCY_DECIMALS = {"JPY": 0}


def currency_round(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor unit (cents; whole yen)."""
    places = CURRENCY_DECIMALS.get(currency, 2)
    return Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def validate_number_pattern(pattern: str) -> None:
    """The pattern must contain {year} and {seq...} (the counter is per year) and format cleanly."""
    if "{year" not in pattern or "{seq" not in pattern:
        raise ValidationError(_("The pattern must contain {year} and {seq}, e.g. HT-{year}-{seq:06d}."))
    try:
        first = pattern.format(year=2026, seq=1)
        second = pattern.format(year=2026, seq=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValidationError(
            _("The pattern cannot be formatted: %(error)s"), params={"error": exc}
        ) from exc
    if first == second or len(first) > 40:
        raise ValidationError(_("The pattern must produce distinct numbers of at most 40 characters."))


class ContractSettings(SingletonModel):
    """The contract rules an administrator edits (one row)."""

    number_pattern = models.CharField(
        _("number pattern"),
        max_length=60,
        default=DEFAULT_NUMBER_PATTERN,
        validators=[validate_number_pattern],
        help_text=_("Python format with {year} and {seq}; e.g. HT-{year}-{seq:06d} gives HT-2026-000001."),
    )
    second_approval_threshold = models.DecimalField(
        _("second approval above"),
        max_digits=16,
        decimal_places=2,
        default=Decimal("500000.00"),
        validators=[MinValueValidator(ZERO)],
        help_text=_("Contracts whose total exceeds this amount also need an administrator's approval."),
    )
    max_attachment_mb = models.PositiveSmallIntegerField(
        _("largest attachment (MB)"), default=10, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )

    class Meta:
        verbose_name = _("contract settings")
        verbose_name_plural = _("contract settings")

    def __str__(self) -> str:
        return str(_("Contract settings"))

    def save(self, *args, **kwargs) -> None:
        self.pk = 1  # a singleton
        super().save(*args, **kwargs)



class ContractNumberCounter(models.Model):
    """The last sequence number handed out in a year; locked (SELECT ... FOR UPDATE) while numbering."""

    year = models.PositiveSmallIntegerField(_("year"), primary_key=True)
    last_seq = models.PositiveIntegerField(_("last sequence number"), default=0)

    class Meta:
        verbose_name = _("contract number counter")
        verbose_name_plural = _("contract number counters")

    def __str__(self) -> str:
        return f"{self.year}: {self.last_seq}"


class ContractStatus(models.TextChoices):
    DRAFT = "draft", pgettext_lazy("contract status", "Draft")
    IN_REVIEW = "in_review", pgettext_lazy("contract status", "In review")
    APPROVED = "approved", pgettext_lazy("contract status", "Approved")
    SIGNED = "signed", pgettext_lazy("contract status", "Signed")
    ACTIVE = "active", pgettext_lazy("contract status", "In force")
    COMPLETED = "completed", pgettext_lazy("contract status", "Completed")
    TERMINATED = "terminated", pgettext_lazy("contract status", "Terminated")


# Contracts whose instalments are collectable: outstanding and overdue amounts count only for these.
COLLECTABLE_STATUSES = (ContractStatus.SIGNED, ContractStatus.ACTIVE, ContractStatus.COMPLETED)
# Receipts can be recorded while the contract runs.
RECEIVABLE_STATUSES = (ContractStatus.SIGNED, ContractStatus.ACTIVE)


class ContractQuerySet(ScopedQuerySet):
    """Scoped by the owner (accounts.scope)."""

    def collectable(self) -> ContractQuerySet:
        return self.filter(status__in=COLLECTABLE_STATUSES)


class Contract(FSMModelMixin, models.Model):
    """A sales contract with a customer, optionally drafted from an opportunity."""

    number = models.CharField(_("number"), max_length=40, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    customer = models.ForeignKey(
        "leads.Customer", verbose_name=_("customer"), on_delete=models.PROTECT, related_name="contracts"
    )
    contact = models.ForeignKey(
        "leads.Contact",
        verbose_name=_("customer contact"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contracts",
    )
    opportunity = models.ForeignKey(
        "opportunities.Opportunity",
        verbose_name=_("opportunity"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
        help_text=_("Signing the contract wins this opportunity."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="contracts"
    )
    status = FSMField(
        _("status"), max_length=16, choices=ContractStatus.choices, default=ContractStatus.DRAFT, protected=True
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.CNY)
    subtotal = models.DecimalField(_("subtotal"), max_digits=16, decimal_places=2, default=ZERO, editable=False)
    tax_amount = models.DecimalField(_("tax"), max_digits=16, decimal_places=2, default=ZERO, editable=False)
    total_amount = models.DecimalField(_("total"), max_digits=16, decimal_places=2, default=ZERO, editable=False)
    start_date = models.DateField(_("start date"), null=True, blank=True)
    end_date = models.DateField(_("end date"), null=True, blank=True)
    payment_terms = models.TextField(_("payment terms"), blank=True)
    terms = models.TextField(_("terms and conditions"), blank=True)

    # review
    review_round = models.PositiveSmallIntegerField(_("review round"), default=0, editable=False)
    needs_admin_approval = models.BooleanField(
        _("needs an administrator's approval"), default=False, editable=False
    )
    manager_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by (manager)"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    admin_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by (administrator)"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True, editable=False)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True, editable=False)

    # signing and afterwards
    signed_on = models.DateField(_("signed on"), null=True, blank=True, editable=False)
    our_signatory = models.CharField(_("our signatory"), max_length=100, blank=True, editable=False)
    customer_signatory = models.CharField(_("customer's signatory"), max_length=100, blank=True, editable=False)
    activated_on = models.DateField(_("active since"), null=True, blank=True, editable=False)
    completed_on = models.DateField(_("completed on"), null=True, blank=True, editable=False)
    terminated_on = models.DateField(_("terminated on"), null=True, blank=True, editable=False)
    termination_reason = models.TextField(_("termination reason"), blank=True, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = ContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(start_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="contract_end_after_start",
            ),
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="contract_total_not_negative"),
        ]
        indexes = [
            # the list page: a user's contracts, newest first, filtered by status
            models.Index(fields=["owner", "status", "-created_at"], name="contract_owner_status_idx"),
            # the API list and the admin changelist (the default order, all statuses): newest first
            models.Index(fields=["-created_at", "-id"], name="contract_created_idx"),
            # the review queue: contracts in review
            models.Index(fields=["status", "submitted_at"], name="contract_status_submitted_idx"),
            # the win condition and the opportunity panel: an opportunity's contracts by status
            models.Index(fields=["opportunity", "status"], name="contract_opportunity_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("contracts:detail", args=[self.pk])

    # --- pure rules -------------------------------------------------------------------------------
    @property
    def is_editable(self) -> bool:
        return self.status == ContractStatus.DRAFT

    @property
    def signed_at(self):
        """The signing date (read by after-sales when it starts the customer's service plans)."""
        return self.signed_on

    def has_amount(self) -> bool:
        return self.total_amount > 0

    def is_fully_approved(self) -> bool:
        if self.manager_approved_by_id is None:
            return False
        return not self.needs_admin_approval or self.admin_approved_by_id is not None

    # --- lifecycle (django-fsm); called only by contracts.services -------------------------------
    @transition(field=status, source=ContractStatus.DRAFT, target=ContractStatus.IN_REVIEW, conditions=[has_amount])
    def submit(self) -> None:
        """Send the draft to review (a new round: earlier approvals no longer count)."""
        self.review_round += 1
        self.manager_approved_by = None
        self.admin_approved_by = None

    @transition(field=status, source=ContractStatus.IN_REVIEW, target=ContractStatus.APPROVED,
                conditions=[is_fully_approved])
    def approve(self) -> None:
        """Every required approval of the round is given."""

    @transition(field=status, source=ContractStatus.IN_REVIEW, target=ContractStatus.DRAFT)
    def reject(self) -> None:
        """Back to draft; the reviewer's comment is in the approval trail."""
        self.manager_approved_by = None
        self.admin_approved_by = None

    @transition(field=status, source=ContractStatus.APPROVED, target=ContractStatus.SIGNED)
    def sign(self) -> None:
        """Both sides signed; the service records the date, signatories and scan."""

    @transition(field=status, source=ContractStatus.SIGNED, target=ContractStatus.ACTIVE)
    def activate(self) -> None:
        """Performance started."""

    @transition(field=status, source=ContractStatus.ACTIVE, target=ContractStatus.COMPLETED)
    def complete(self) -> None:
        """Fulfilled."""

    @transition(field=status, source=[ContractStatus.SIGNED, ContractStatus.ACTIVE],
                target=ContractStatus.TERMINATED)
    def terminate(self) -> None:
        """Ended early; the service requires and records the reason."""


class ContractLine(models.Model):
    """A product or service on the contract. Amounts are computed, rounded to the currency's unit."""

    contract = models.ForeignKey(Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    name = models.CharField(_("product or service"), max_length=200)
    quantity = models.DecimalField(
        _("quantity"), max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    unit_price = models.DecimalField(
        _("unit price"), max_digits=14, decimal_places=2, validators=[MinValueValidator(ZERO)]
    )
    discount_percent = models.DecimalField(
        _("discount %"),
        max_digits=5,
        decimal_places=2,
        default=ZERO,
        validators=[MinValueValidator(ZERO), MaxValueValidator(HUNDRED)],
    )
    tax_rate = models.DecimalField(
        _("tax rate %"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("13.00"),
        validators=[MinValueValidator(ZERO), MaxValueValidator(HUNDRED)],
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("line item")
        verbose_name_plural = _("line items")
        ordering = ["contract_id", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="contract_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100), name="contract_line_discount_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def amounts(self, currency: str) -> tuple[Decimal, Decimal, Decimal]:
        """(net, tax, total) of the line: net = quantity × unit price × (1 − discount), each rounded."""
        gross = Decimal(self.quantity) * Decimal(self.unit_price)
        net = currency_round(gross * (HUNDRED - Decimal(self.discount_percent)) / HUNDRED, currency)
        tax = currency_round(net * Decimal(self.tax_rate) / HUNDRED, currency)
        return net, tax, net + tax

    @property
    def net_amount(self) -> Decimal:
        return self.amounts(self.contract.currency)[0]

    @property
    def tax_amount(self) -> Decimal:
        return self.amounts(self.contract.currency)[1]

    @property
    def total_amount(self) -> Decimal:
        return self.amounts(self.contract.currency)[2]


class ApprovalLevel(models.TextChoices):
    MANAGER = "manager", _("Manager")
    ADMIN = "admin", _("Administrator")


class ApprovalAction(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted for review")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class ContractApproval(models.Model):
    """One entry of the approval trail: a submission or a reviewer's decision (who, when, comment)."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="approvals"
    )
    review_round = models.PositiveSmallIntegerField(_("review round"))
    action = models.CharField(_("action"), max_length=16, choices=ApprovalAction.choices)
    level = models.CharField(_("level"), max_length=16, choices=ApprovalLevel.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("approval decision")
        verbose_name_plural = _("approval trail")
        ordering = ["contract_id", "created_at", "id"]
        constraints = [
            # one decision per level and round
            models.UniqueConstraint(
                fields=["contract", "review_round", "level"],
                condition=Q(action="approved"),
                name="contract_approval_once_per_level",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} #{self.review_round} {self.action} {self.level}"


class AttachmentKind(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SIGNED_SCAN = "signed_scan", _("Signed scan")
    OTHER = "other", _("Other")


def attachment_upload_to(instance: ContractAttachment, filename: str) -> str:
    """A random name: the uploader's file name is kept in `original_name` only."""
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(instance.content_type, "bin")
    return f"contracts/{instance.contract_id}/{uuid.uuid4().hex}.{extension}"


class ContractAttachment(models.Model):
    """A file of the contract (the draft, the signed scan). Stored in the private storage and served
    only through the download view, which applies the scope rule."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=AttachmentKind.choices, default=AttachmentKind.DRAFT)
    file = models.FileField(_("file"), upload_to=attachment_upload_to, storage=private_storage, max_length=200)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["contract_id", "-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse("contracts:attachment", args=[self.contract_id, self.pk])


class PaymentInstalment(models.Model):
    """One instalment of the payment plan. `paid_amount` is kept by the receipt service (under a lock)."""

    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.CASCADE, related_name="instalments"
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    due_date = models.DateField(_("due date"))
    amount = models.DecimalField(
        _("amount"), max_digits=16, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    paid_amount = models.DecimalField(_("received"), max_digits=16, decimal_places=2, default=ZERO, editable=False)
    note = models.CharField(_("note"), max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("instalment")
        verbose_name_plural = _("payment plan")
        ordering = ["contract_id", "due_date", "position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="instalment_amount_positive"),
            models.CheckConstraint(
                condition=Q(paid_amount__gte=0) & Q(paid_amount__lte=F("amount")), name="instalment_paid_within_amount"
            ),
        ]
        indexes = [
            # overdue detection: unpaid instalments by due date
            models.Index(fields=["due_date"], name="instalment_due_idx", condition=Q(paid_amount__lt=F("amount"))),
        ]

    def __str__(self) -> str:
        return f"{self.due_date} {self.amount}"

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.paid_amount

    @property
    def is_paid(self) -> bool:
        return self.paid_amount >= self.amount

    def is_overdue(self, today) -> bool:
        return not self.is_paid and self.due_date < today


class PaymentMethod(models.TextChoices):
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    ACCEPTANCE_BILL = "acceptance_bill", _("Bank acceptance bill")
    CHEQUE = "cheque", _("Cheque")
    CASH = "cash", _("Cash")
    ALIPAY = "alipay", _("Alipay")
    WECHAT = "wechat", _("WeChat Pay")
    OTHER = "other", _("Other")


class PaymentReceipt(models.Model):
    """Money received against an instalment (partial payments allowed, never more than outstanding)."""

    instalment = models.ForeignKey(
        PaymentInstalment, verbose_name=_("instalment"), on_delete=models.PROTECT, related_name="receipts"
    )
    contract = models.ForeignKey(
        Contract, verbose_name=_("contract"), on_delete=models.PROTECT, related_name="receipts"
    )
    received_on = models.DateField(_("received on"))
    amount = models.DecimalField(
        _("amount"), max_digits=16, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices,
                              default=PaymentMethod.BANK_TRANSFER)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recorded by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["contract_id", "received_on", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="receipt_amount_positive")]

    def __str__(self) -> str:
        return f"{self.received_on} {self.amount}"
