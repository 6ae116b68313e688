"""Reads: scoped contract lists, the review queue, detail fetches, and the money still to collect
(outstanding and overdue per contract, per customer, per rep), aggregated in SQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import (
    DecimalField,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from accounts.scope import get_visible_or_404, sees_everything

from . import rules
from .models import (
    COLLECTABLE_STATUSES,
    Contract,
    ContractApproval,
    ContractAttachment,
    ContractStatus,
    PaymentInstalment,
    PaymentReceipt,
)

if TYPE_CHECKING:
    from accounts.models import User

MONEY = DecimalField(max_digits=18, decimal_places=2)
ZERO = Value(Decimal("0"), output_field=MONEY)


def _overdue_q(today: date, prefix: str = "") -> Q:
    return Q(**{f"{prefix}due_date__lt": today}) & Q(**{f"{prefix}paid_amount__lt": F(f"{prefix}amount")})


def with_money(qs: QuerySet[Contract], *, today: date) -> QuerySet[Contract]:
    """Annotate `received`, `outstanding` and `overdue` (0 for contracts that are not collectable)."""
    collectable = Q(status__in=COLLECTABLE_STATUSES)
    received = Coalesce(Sum("instalments__paid_amount"), ZERO)
    overdue = Coalesce(
        Sum(F("instalments__amount") - F("instalments__paid_amount"),
            filter=_overdue_q(today, "instalments__") & collectable),
        ZERO,
    )
    return qs.annotate(received=received, overdue=overdue).annotate(
        outstanding=Coalesce(
            Sum(F("instalments__amount") - F("instalments__paid_amount"), filter=collectable), ZERO
        ),
    )


def contract_list(
    *,
    user: User,
    today: date,
    status: str = "",
    owner_id: int | None = None,
    customer_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    overdue_only: bool = False,
) -> QuerySet[Contract]:
    """Contracts `user` may see, with their money annotations; the page's filters applied.

    The date range applies to the signing date of signed contracts and to the creation date of the
    others (a contract's "date")."""
    qs = Contract.objects.visible_to(user).select_related("customer", "owner")
    if status:
        qs = qs.filter(status=status)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if date_from:
        qs = qs.filter(Q(signed_on__gte=date_from) | Q(signed_on__isnull=True, created_at__date__gte=date_from))
    if date_to:
        qs = qs.filter(Q(signed_on__lte=date_to) | Q(signed_on__isnull=True, created_at__date__lte=date_to))
    if overdue_only:
        qs = qs.filter(
            status__in=COLLECTABLE_STATUSES,
            pk__in=PaymentInstalment.objects.filter(_overdue_q(today)).values("contract_id"),
        )
    return with_money(qs, today=today).order_by("-created_at", "-id")


def contract_get_for_user(*, user: User, pk: int) -> Contract:
    """Fetch-and-authorize: a contract outside the scope is a 404."""
    return get_visible_or_404(
        Contract.objects.select_related("customer", "contact", "owner", "manager_approved_by",
                                        "admin_approved_by", "created_by"),
        user,
        pk=pk,
    )


def contract_detail_data(*, contract: Contract, today: date) -> dict[str, Any]:
    """What the detail page shows besides the contract: lines, plan with receipts, trail, files."""
    instalments = list(
        PaymentInstalment.objects.filter(contract=contract).prefetch_related(
            Prefetch("receipts", queryset=PaymentReceipt.objects.select_related("recorded_by"))
        )
    )
    collectable = contract.status in COLLECTABLE_STATUSES
    received = sum((i.paid_amount for i in instalments), Decimal("0.00"))
    outstanding = sum((i.outstanding for i in instalments), Decimal("0.00")) if collectable else Decimal("0.00")
    overdue = (sum((i.outstanding for i in instalments if i.is_overdue(today)), Decimal("0.00"))
               if collectable else Decimal("0.00"))
    return {
        "lines": list(contract.lines.all()),
        "instalments": instalments,
        "approvals": list(ContractApproval.objects.filter(contract=contract).select_related("actor")),
        "attachments": list(ContractAttachment.objects.filter(contract=contract).select_related("uploaded_by")),
        "received": received,
        "outstanding": outstanding,
        "overdue": overdue,
        "collectable": collectable,
    }


def contract_last_rejection(contract: Contract) -> ContractApproval | None:
    """The reviewer's comment a draft came back with (shown until it is submitted again)."""
    if contract.status != ContractStatus.DRAFT or contract.review_round == 0:
        return None
    return (
        ContractApproval.objects.filter(contract=contract, review_round=contract.review_round, action="rejected")
        .select_related("actor")
        .order_by("-created_at")
        .first()
    )


def review_queue(*, user: User) -> list[Contract]:
    """Contracts in review that wait for `user`'s decision: managers see those of their teams below
    them at the manager level; administrators see all of them (the second approval is theirs)."""
    qs = (
        Contract.objects.visible_to(user)
        .filter(status=ContractStatus.IN_REVIEW)
        .exclude(owner=user)
        .select_related("customer", "owner", "owner__team", "manager_approved_by")
        .order_by("submitted_at", "id")
    )
    if not sees_everything(user):
        qs = qs.filter(manager_approved_by__isnull=True)
    team_rows = rules.team_rows()
    return [contract for contract in qs if rules.review_refusal(contract, user, team_rows=team_rows) is None]


def review_queue_count(*, user: User) -> int:
    return len(review_queue(user=user))


def attachment_get_for_user(*, user: User, contract_pk: int, pk: int) -> ContractAttachment:
    """An attachment of a contract the user may see (404 otherwise)."""
    contract = contract_get_for_user(user=user, pk=contract_pk)
    try:
        return ContractAttachment.objects.get(contract=contract, pk=pk)
    except ContractAttachment.DoesNotExist as exc:
        from django.http import Http404

        raise Http404 from exc


# --- money to collect ------------------------------------------------------------------------------
def instalments_overdue(*, today: date, user: User | None = None) -> QuerySet[PaymentInstalment]:
    """Unpaid instalments past their due date, on collectable contracts (the user's scope if given)."""
    qs = PaymentInstalment.objects.filter(_overdue_q(today), contract__status__in=COLLECTABLE_STATUSES)
    if user is not None:
        qs = qs.filter(contract__in=Contract.objects.visible_to(user))
    return qs.select_related("contract", "contract__customer", "contract__owner").order_by("due_date", "id")


def _money_by(group: str, *, user: User | None, today: date) -> QuerySet:
    qs = PaymentInstalment.objects.filter(contract__status__in=COLLECTABLE_STATUSES)
    if user is not None:
        qs = qs.filter(contract__in=Contract.objects.visible_to(user))
    return (
        qs.values(group)
        .annotate(
            total=Coalesce(Sum("amount"), ZERO),
            received=Coalesce(Sum("paid_amount"), ZERO),
            outstanding=Coalesce(Sum(F("amount") - F("paid_amount")), ZERO),
            overdue=Coalesce(Sum(F("amount") - F("paid_amount"), filter=_overdue_q(today)), ZERO),
        )
        .order_by("-overdue", "-outstanding")
    )


def money_by_customer(*, today: date, user: User | None = None) -> QuerySet:
    """Per customer: total planned, received, outstanding and overdue (collectable contracts)."""
    return _money_by("contract__customer_id", user=user, today=today).annotate(
        customer_name=F("contract__customer__name")
    )


def money_by_rep(*, today: date, user: User | None = None) -> QuerySet:
    """Per contract owner (rep): total planned, received, outstanding and overdue."""
    return _money_by("contract__owner_id", user=user, today=today).annotate(
        owner_username=F("contract__owner__username")
    )


def money_for_customer(*, customer_id: int, today: date, user: User | None = None) -> dict[str, Decimal]:
    row = _money_by("contract__customer_id", user=user, today=today).filter(contract__customer_id=customer_id).first()
    return _row_or_zero(row)


def money_for_rep(*, owner_id: int, today: date, user: User | None = None) -> dict[str, Decimal]:
    row = _money_by("contract__owner_id", user=user, today=today).filter(contract__owner_id=owner_id).first()
    return _row_or_zero(row)


def _row_or_zero(row: dict | None) -> dict[str, Decimal]:
    keys = ("total", "received", "outstanding", "overdue")
    return {key: (row or {}).get(key, Decimal("0")) for key in keys}


def contracts_for_customer(*, user: User, customer_id: int) -> QuerySet[Contract]:
    return (
        Contract.objects.visible_to(user)
        .filter(customer_id=customer_id)
        .select_related("owner")
        .order_by("-created_at", "-id")
    )


def has_signed_contract(opportunity_id: int) -> bool:
    """The opportunities app's win condition: the deal has a signed (or later, not terminated) contract."""
    return Contract.objects.filter(
        opportunity_id=opportunity_id,
        status__in=(ContractStatus.SIGNED, ContractStatus.ACTIVE, ContractStatus.COMPLETED),
    ).exists()



def contracts_for_opportunity(*, user: User, opportunity_id: int) -> QuerySet[Contract]:
    return (
        Contract.objects.visible_to(user)
        .filter(opportunity_id=opportunity_id)
        .select_related("owner")
        .order_by("-created_at", "-id")
    )
