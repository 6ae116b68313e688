"""Every write to contracts: numbering, drafting and editing, review, signing (which wins the deal),
the later lifecycle, attachments and receipts (回款).

Each service runs in one transaction, locks the contract it changes, checks the rules of
`contracts.rules`, writes the approval trail, and raises `ValidationError` (translated message) when a
rule refuses; a refused call changes nothing. Every change moves the contract's `version` on (the API's
ETag / If-Match).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, ProtectedError, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import TransitionNotAllowed

from accounts.scope import is_manager_or_admin

from . import rules
from .models import (
    RECEIVABLE_STATUSES,
    ApprovalAction,
    ApprovalLevel,
    AttachmentKind,
    Contract,
    ContractApproval,
    ContractAttachment,
    ContractLine,
    ContractNumberCounter,
    ContractSettings,
    ContractStatus,
    PaymentInstalment,
    PaymentReceipt,
    currency_round,
)
from .signals import contract_signed

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

    from accounts.models import User
    from leads.models import Contact, Customer

logger = logging.getLogger(__name__)

ZERO = Decimal("0")

LINE_FIELDS = ("name", "quantity", "unit_price", "discount_percent", "tax_rate")
INSTALMENT_FIELDS = ("due_date", "amount", "note")
EDITABLE_FIELDS = ("title", "contact", "currency", "start_date", "end_date", "payment_terms", "terms")


# --- numbering ------------------------------------------------------------------------------------
def contract_number_next(*, on: date) -> str:
    """The next number of `on`'s year from the admin's pattern (default HT-{year}-{seq:06d}).

    Must run inside the transaction that creates the contract: the year's counter row stays locked
    (SELECT ... FOR UPDATE) until it commits, so concurrent drafts get consecutive, unique numbers, and a
    rolled-back draft gives its number back."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("contract_number_next must run inside a transaction")
    # Create the year's row if missing without failing when another transaction does it first.
    ContractNumberCounter.objects.bulk_create([ContractNumberCounter(year=on.year)], ignore_conflicts=True)
    counter = ContractNumberCounter.objects.select_for_update().get(year=on.year)
    counter.last_seq += 1
    counter.save(update_fields=["last_seq"])
    pattern = ContractSettings.load().number_pattern
    return pattern.format(year=on.year, seq=counter.last_seq)


# --- helpers --------------------------------------------------------------------------------------
def _lock(contract: Contract | int, user: User | None) -> Contract:
    """The contract, locked; for a user, only if they may see it (else PermissionDenied)."""
    pk = contract.pk if isinstance(contract, Contract) else contract
    qs = Contract.objects.select_for_update(of=("self",)).select_related("owner")
    if user is not None:
        qs = qs.visible_to(user)
    try:
        locked = qs.get(pk=pk)
    except Contract.DoesNotExist as exc:
        raise PermissionDenied(_("You cannot change this contract.")) from exc
    if user is not None:
        locked._history_user = user
    return locked


def _transition(contract: Contract, name: str) -> None:
    try:
        getattr(contract, name)()
    except TransitionNotAllowed as exc:
        raise ValidationError(
            _("This is not possible while the contract is %(status)s."),
            params={"status": contract.get_status_display()},
            code="transition_not_allowed",
        ) from exc


def _require_draft(contract: Contract) -> None:
    if contract.status != ContractStatus.DRAFT:
        raise ValidationError(_("Only a draft can be edited."), code="not_draft")


def _sync_children(model, contract: Contract, rows: Iterable[dict], fields: tuple[str, ...]) -> list[Any]:
    """Make the contract's lines/instalments match `rows` (dicts, optionally with the `id` of an
    existing row): update what changed, create the new, delete the missing."""
    existing = {obj.pk: obj for obj in model.objects.filter(contract=contract)}
    kept: list[Any] = []
    for position, row in enumerate(rows):
        obj = existing.pop(row["id"], None) if row.get("id") else None
        if obj is None:
            obj = model(contract=contract)
        changed = obj.pk is None or obj.position != position
        obj.position = position
        for field in fields:
            if field in row and getattr(obj, field) != row[field]:
                setattr(obj, field, row[field])
                changed = True
        obj.full_clean(exclude=["contract"])
        if changed:
            obj.save()
        kept.append(obj)
    for obj in existing.values():
        obj.delete()
    return kept


def _recompute_totals(contract: Contract, lines: list[ContractLine]) -> None:
    subtotal = tax = ZERO
    for line in lines:
        net, line_tax, _total = line.amounts(contract.currency)
        subtotal += net
        tax += line_tax
    contract.subtotal = currency_round(subtotal, contract.currency)
    contract.tax_amount = currency_round(tax, contract.currency)
    contract.total_amount = contract.subtotal + contract.tax_amount


def payment_plan_validate(*, total: Decimal, currency: str, amounts: Iterable[Decimal]) -> None:
    """The instalments must be positive, in the currency's unit, and add up exactly to the total."""
    amounts = list(amounts)
    for amount in amounts:
        if amount is None or amount <= 0:
            raise ValidationError(_("Every instalment needs a positive amount."), code="instalment_amount")
        if currency_round(amount, currency) != amount:
            raise ValidationError(
                _("Instalment amounts must be whole units of %(currency)s."), params={"currency": currency},
                code="instalment_rounding",
            )
    planned = sum(amounts, ZERO)
    if amounts and planned != total:
        raise ValidationError(
            _("The instalments add up to %(planned)s but the contract total is %(total)s."),
            params={"planned": currency_round(planned, currency), "total": currency_round(total, currency)},
            code="plan_total_mismatch",
        )


def _validate_dates(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise ValidationError({"end_date": _("The end date cannot be before the start date.")})


# --- drafting and editing -------------------------------------------------------------------------
@transaction.atomic
def contract_create(
    *,
    user: User,
    customer: Customer,
    title: str,
    lines: Iterable[dict],
    instalments: Iterable[dict] = (),
    currency: str = "CNY",
    contact: Contact | None = None,
    opportunity: Any = None,
    owner: User | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    payment_terms: str = "",
    terms: str = "",
) -> Contract:
    """Draft a contract (numbered now), with its line items and payment plan."""
    if contact is not None and contact.customer_id != customer.pk:
        raise ValidationError({"contact": _("The contact does not belong to this customer.")})
    if opportunity is not None:
        from .integration import opportunity_can_draft

        if opportunity.customer_id != customer.pk:
            raise ValidationError(_("The opportunity belongs to another customer."))
        if not opportunity_can_draft(opportunity):
            raise ValidationError(
                _("A contract can be drafted only from an opportunity in its last open stage."),
                code="opportunity_not_in_last_stage",
            )
    _validate_dates(start_date, end_date)
    contract = Contract(
        number=contract_number_next(on=timezone.localdate()),
        title=title,
        customer=customer,
        contact=contact,
        owner=owner or getattr(opportunity, "owner", None) or user,
        currency=currency,
        start_date=start_date,
        end_date=end_date,
        payment_terms=payment_terms,
        terms=terms,
        opportunity=opportunity,
        created_by=user,
    )
    contract._history_user = user
    contract.full_clean(exclude=["number", "status"])
    contract.save()
    saved_lines = _sync_children(ContractLine, contract, lines, LINE_FIELDS)
    _recompute_totals(contract, saved_lines)
    contract.save(update_fields=["subtotal", "tax_amount", "total_amount", "updated_at"])
    instalments = list(instalments)
    payment_plan_validate(total=contract.total_amount, currency=contract.currency,
                          amounts=[row.get("amount") for row in instalments])
    _sync_children(PaymentInstalment, contract, instalments, INSTALMENT_FIELDS)
    return contract


@transaction.atomic
def contract_update(
    *,
    contract: Contract,
    user: User,
    fields: dict | None = None,
    lines: Iterable[dict] | None = None,
    instalments: Iterable[dict] | None = None,
) -> Contract:
    """Edit a draft: its fields, line items (totals recomputed) and payment plan (must still add up)."""
    locked = _lock(contract, user)
    _require_draft(locked)
    for name, value in (fields or {}).items():
        if name not in EDITABLE_FIELDS:
            raise ValidationError(_("The field %(field)s cannot be edited."), params={"field": name})
        setattr(locked, name, value)
    if locked.contact_id and locked.contact.customer_id != locked.customer_id:
        raise ValidationError({"contact": _("The contact does not belong to this customer.")})
    _validate_dates(locked.start_date, locked.end_date)
    locked.full_clean(exclude=["number", "status"])
    saved_lines = (
        _sync_children(ContractLine, locked, lines, LINE_FIELDS) if lines is not None
        else list(locked.lines.all())
    )
    _recompute_totals(locked, saved_lines)
    locked.version += 1
    locked.save()
    if instalments is not None:
        instalments = list(instalments)
        payment_plan_validate(total=locked.total_amount, currency=locked.currency,
                              amounts=[row.get("amount") for row in instalments])
        _sync_children(PaymentInstalment, locked, instalments, INSTALMENT_FIELDS)
    else:
        payment_plan_validate(total=locked.total_amount, currency=locked.currency,
                              amounts=locked.instalments.values_list("amount", flat=True))
    return locked


@transaction.atomic
def contract_delete(*, contract: Contract, user: User) -> None:
    """Delete a draft that was never sent to review (no approval trail), by its owner or a manager or
    administrator who sees it. Anything further along is kept: reject, terminate or let it complete."""
    locked = _lock(contract, user)
    if locked.status != ContractStatus.DRAFT or locked.approvals.exists():
        raise ValidationError(_("Only a draft that was never submitted can be deleted."), code="not_deletable")
    if locked.owner_id != user.pk and not is_manager_or_admin(user):
        raise PermissionDenied(_("You cannot change this contract."))
    try:
        with transaction.atomic():
            locked.delete()
    except ProtectedError as exc:
        raise ValidationError(_("Other records refer to this contract: it cannot be deleted."),
                              code="not_deletable") from exc


# --- review ---------------------------------------------------------------------------------------
def _trail(contract: Contract, user: User, action: str, level: str = "", comment: str = "") -> ContractApproval:
    return ContractApproval.objects.create(
        contract=contract, review_round=contract.review_round, action=action, level=level, actor=user,
        comment=comment,
    )


@transaction.atomic
def contract_submit(*, contract: Contract, user: User, comment: str = "") -> Contract:
    """Send a draft to review. It needs line items and a payment plan adding up to the total; above
    the admin's threshold it will need a second approval by an administrator."""
    locked = _lock(contract, user)
    _require_draft(locked)
    if not locked.lines.exists() or locked.total_amount <= 0:
        raise ValidationError(_("Add at least one line item with an amount before submitting."),
                              code="no_lines")
    amounts = list(locked.instalments.values_list("amount", flat=True))
    if not amounts:
        raise ValidationError(_("Add a payment plan before submitting."), code="no_plan")
    payment_plan_validate(total=locked.total_amount, currency=locked.currency, amounts=amounts)
    _transition(locked, "submit")
    locked.needs_admin_approval = locked.total_amount > ContractSettings.load().second_approval_threshold
    locked.submitted_at = timezone.now()
    locked.approved_at = None
    locked.version += 1
    locked.save()
    _trail(locked, user, ApprovalAction.SUBMITTED, comment=comment)
    return locked


@transaction.atomic
def contract_approve(*, contract: Contract, user: User, comment: str = "") -> Contract:
    """Give the approval the contract waits for (manager first, then an administrator above the
    threshold). The last required approval moves it to approved."""
    locked = _lock(contract, user)
    refusal = rules.review_refusal(locked, user)
    if refusal:
        raise ValidationError(refusal, code="cannot_review")
    level = rules.pending_level(locked)
    if level == ApprovalLevel.MANAGER:
        locked.manager_approved_by = user
    else:
        locked.admin_approved_by = user
    _trail(locked, user, ApprovalAction.APPROVED, level=level, comment=comment)
    if locked.is_fully_approved():
        _transition(locked, "approve")
        locked.approved_at = timezone.now()
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def contract_reject(*, contract: Contract, user: User, comment: str) -> Contract:
    """Send the contract back to draft with the reviewer's comments (required)."""
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": _("Say what must change: a rejection needs a comment.")})
    locked = _lock(contract, user)
    refusal = rules.review_refusal(locked, user)
    if refusal:
        raise ValidationError(refusal, code="cannot_review")
    level = rules.pending_level(locked)
    _trail(locked, user, ApprovalAction.REJECTED, level=level, comment=comment)
    _transition(locked, "reject")
    locked.version += 1
    locked.save()
    return locked


# --- signing and afterwards -----------------------------------------------------------------------
@transaction.atomic
def contract_sign(
    *,
    contract: Contract,
    user: User,
    signed_on: date,
    our_signatory: str,
    customer_signatory: str,
    scan: UploadedFile,
) -> Contract:
    """Record the signing (date, both signatories, the signed scan) and, in the same transaction, win
    the linked opportunity through its own rule. If the deal cannot be won, nothing changes."""
    locked = _lock(contract, user)
    errors: dict[str, str] = {}
    if not (our_signatory or "").strip():
        errors["our_signatory"] = _("Who signed for us?")
    if not (customer_signatory or "").strip():
        errors["customer_signatory"] = _("Who signed for the customer?")
    if signed_on is None:
        errors["signed_on"] = _("Enter the signing date.")
    elif signed_on > timezone.localdate():
        errors["signed_on"] = _("The signing date cannot be in the future.")
    if scan is None:
        errors["scan"] = _("Upload the signed scan.")
    if errors:
        raise ValidationError(errors)
    content_type = attachment_validate(file=scan)
    _transition(locked, "sign")
    locked.signed_on = signed_on
    locked.our_signatory = our_signatory.strip()
    locked.customer_signatory = customer_signatory.strip()
    locked.version += 1
    locked.save()
    if locked.opportunity_id:
        _win_opportunity(locked, user)
    # The file goes to storage last: every rule has passed by now.
    _attachment_store(locked, user, scan, AttachmentKind.SIGNED_SCAN, content_type)
    transaction.on_commit(lambda: _send_signed(locked.pk))
    return locked


def _win_opportunity(contract: Contract, user: User) -> None:
    """Move the linked opportunity to won through the opportunities app's service (its FSM rule and
    win conditions, including ours: "has a signed contract"). Its refusal becomes ours."""
    from opportunities import services as opportunity_services

    try:
        opportunity_services.opportunity_win(opportunity=contract.opportunity, user=user)
    except ValidationError as exc:
        reasons = " ".join(exc.messages)
        raise ValidationError(
            _("The contract cannot be signed because its opportunity cannot be won: %(reason)s"),
            params={"reason": reasons},
            code="opportunity_not_winnable",
        ) from exc
    except (TransitionNotAllowed, PermissionDenied) as exc:
        unmet = [str(item.label) for item in getattr(exc, "unmet", [])]
        raise ValidationError(
            _("The contract cannot be signed because its opportunity cannot be won: %(reason)s"),
            params={"reason": " ".join(unmet) if unmet else (str(exc) or _("it is not in its last open stage."))},
            code="opportunity_not_winnable",
        ) from exc


def _send_signed(contract_id: int) -> None:
    contract = Contract.objects.select_related("customer", "owner").get(pk=contract_id)
    for receiver, response in contract_signed.send_robust(sender=Contract, contract=contract):
        if isinstance(response, Exception):
            logger.error("contract_signed receiver %r failed for contract %s", receiver, contract_id,
                         exc_info=response)


@transaction.atomic
def contract_activate(*, contract: Contract, user: User, on: date | None = None) -> Contract:
    """Performance has started."""
    locked = _lock(contract, user)
    _transition(locked, "activate")
    locked.activated_on = on or timezone.localdate()
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def contract_complete(*, contract: Contract, user: User, on: date | None = None) -> Contract:
    """The contract is fulfilled."""
    locked = _lock(contract, user)
    _transition(locked, "complete")
    locked.completed_on = on or timezone.localdate()
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def contract_terminate(*, contract: Contract, user: User, reason: str, on: date | None = None) -> Contract:
    """End a signed or active contract early; a manager or administrator decides, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("A termination needs a reason.")})
    locked = _lock(contract, user)
    if not rules.can_terminate(locked, user):
        raise ValidationError(_("Only a manager or an administrator can terminate a contract."),
                              code="cannot_terminate")
    _transition(locked, "terminate")
    locked.terminated_on = on or timezone.localdate()
    locked.termination_reason = reason
    locked.version += 1
    locked.save()
    return locked


# --- attachments ----------------------------------------------------------------------------------
# content type -> magic prefixes (the first bytes of the file; the uploader's name and type are ignored)
ATTACHMENT_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


def attachment_sniff(head: bytes) -> str | None:
    """The content type the file's first bytes prove, among the accepted ones, or None."""
    for content_type, prefixes in ATTACHMENT_TYPES.items():
        if head.startswith(prefixes):
            return content_type
    return None


def attachment_validate(*, file: UploadedFile) -> str:
    """Accept a PDF, PNG or JPEG (judged by its content) within the admin's size limit; return its type."""
    limit_mb = ContractSettings.load().max_attachment_mb
    if file.size is None or file.size == 0:
        raise ValidationError({"file": _("The file is empty.")})
    if file.size > limit_mb * 1024 * 1024:
        raise ValidationError(
            {"file": _("The file is larger than %(limit)s MB.") % {"limit": limit_mb}}, code="too_large"
        )
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    content_type = attachment_sniff(head)
    if content_type is None:
        raise ValidationError({"file": _("Only PDF, PNG and JPEG files are accepted.")}, code="bad_type")
    return content_type


def _attachment_store(contract: Contract, user: User, file: UploadedFile, kind: str,
                      content_type: str) -> ContractAttachment:
    """Write the file to the private storage and its row. Callers do this last, once every rule has
    passed, so that a refused call leaves no file behind."""
    attachment = ContractAttachment(
        contract=contract, kind=kind, original_name=(file.name or "file").replace("\\", "/").rsplit("/", 1)[-1][-200:],
        content_type=content_type, size=file.size, uploaded_by=user,
    )
    attachment.file.save("upload", file, save=False)
    try:
        attachment.save()
    except Exception:
        attachment.file.storage.delete(attachment.file.name)
        raise
    return attachment


@transaction.atomic
def contract_attachment_add(*, contract: Contract, user: User, file: UploadedFile,
                            kind: str = AttachmentKind.DRAFT) -> ContractAttachment:
    """Attach a draft (while the contract is a draft) or another document (until it ends). The signed
    scan comes with the signing."""
    locked = _lock(contract, user)
    if kind == AttachmentKind.SIGNED_SCAN:
        raise ValidationError(_("The signed scan is uploaded when the contract is signed."))
    if kind == AttachmentKind.DRAFT:
        _require_draft(locked)
    elif locked.status in (ContractStatus.COMPLETED, ContractStatus.TERMINATED):
        raise ValidationError(_("The contract has ended: no more attachments."))
    content_type = attachment_validate(file=file)
    return _attachment_store(locked, user, file, kind, content_type)


@transaction.atomic
def contract_attachment_delete(*, attachment: ContractAttachment, user: User) -> None:
    """Remove a draft attachment of a draft contract (the file goes once the deletion commits)."""
    locked = _lock(attachment.contract_id, user)
    _require_draft(locked)
    if attachment.kind == AttachmentKind.SIGNED_SCAN:
        raise ValidationError(_("The signed scan cannot be removed."))
    storage, name = attachment.file.storage, attachment.file.name
    attachment.delete()
    transaction.on_commit(lambda: storage.delete(name))


# --- payments (回款) -------------------------------------------------------------------------------
@transaction.atomic
def payment_receipt_record(
    *,
    contract: Contract,
    instalment: PaymentInstalment | int,
    user: User,
    received_on: date,
    amount: Decimal,
    method: str,
    reference: str = "",
) -> PaymentReceipt:
    """Record money received against an instalment of a signed or active contract. Partial payments
    are fine; more than the instalment's outstanding amount is refused."""
    locked = _lock(contract, user)
    if locked.status not in RECEIVABLE_STATUSES:
        raise ValidationError(_("Payments are recorded on signed or active contracts only."),
                              code="not_receivable")
    instalment_pk = instalment.pk if isinstance(instalment, PaymentInstalment) else instalment
    try:
        row = PaymentInstalment.objects.select_for_update().get(pk=instalment_pk, contract=locked)
    except PaymentInstalment.DoesNotExist as exc:
        raise ValidationError({"instalment": _("Choose an instalment of this contract.")}) from exc
    if amount is None or amount <= 0:
        raise ValidationError({"amount": _("Enter a positive amount.")})
    if currency_round(amount, locked.currency) != amount:
        raise ValidationError({"amount": _("Amounts must be whole units of %(currency)s.")
                               % {"currency": locked.currency}})
    if amount > row.outstanding:
        raise ValidationError({"amount": _("This is more than the %(outstanding)s still due on the instalment.")
                               % {"outstanding": row.outstanding}}, code="overpayment")
    if received_on is None or received_on > timezone.localdate():
        raise ValidationError({"received_on": _("The receipt date cannot be in the future.")})
    receipt = PaymentReceipt.objects.create(
        instalment=row, contract=locked, received_on=received_on, amount=amount, method=method,
        reference=(reference or "").strip(), recorded_by=user,
    )
    row.paid_amount = PaymentReceipt.objects.filter(instalment=row).aggregate(s=Sum("amount"))["s"] or ZERO
    row._history_user = user
    row.save(update_fields=["paid_amount"])
    Contract.objects.filter(pk=locked.pk).update(version=F("version") + 1, updated_at=timezone.now())
    return receipt
