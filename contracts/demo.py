"""Demo contracts and payments (回款) for the demo's deals (the opportunities seeder runs first).

- every won deal gets a signed contract (approved through the real review services, then signed on
  the day the deal closed) with a payment plan; older ones are active or completed, most instalments
  that fell due are paid, some partly, a few are left overdue;
- a few deals in their last open stage get a draft or a contract waiting in the review queue.
Idempotent: a deal that already has a contract is skipped.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import Role, User

from . import rules, services
from .models import Contract, ContractLine, ContractStatus, PaymentMethod, currency_round

PRODUCTS = [
    ("CRM 软件许可（年） CRM licence (annual)", Decimal("13")),
    ("实施与培训服务 Implementation and training", Decimal("6")),
    ("数据迁移服务 Data migration", Decimal("6")),
    ("年度运维支持 Annual support", Decimal("6")),
    ("服务器硬件 Server hardware", Decimal("13")),
]
TERMS = (
    "1. 乙方按附件所列范围交付产品与服务。 Party B delivers the products and services listed above.\n"
    "2. 甲方按回款计划付款，逾期按日万分之五计违约金。 Party A pays per the payment plan; late payment "
    "bears 0.05% per day.\n"
    "3. 本合同一式两份，双方各执一份，自双方签字盖章之日起生效。 Two originals, effective when signed and "
    "sealed by both parties."
)
SIGNATORIES = ["李明 Li Ming", "王芳 Wang Fang", "刘洋 Liu Yang", "陈静 Chen Jing", "杨帆 Yang Fan", "赵磊 Zhao Lei"]
# A tiny valid PDF: the "signed scan" of the demo contracts.
DEMO_SCAN = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _approver(contract: Contract) -> User | None:
    """Someone allowed to give the pending approval (the owner's manager chain, else an admin)."""
    level = rules.pending_level(contract)
    candidates = []
    if level == "manager":
        candidates = list(User.objects.filter(pk__in=rules.owner_manager_ids(contract.owner), is_active=True))
    candidates += list(User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk"))
    for user in candidates:
        if rules.can_review(contract, user):
            return user
    return None


def _review(contract: Contract) -> Contract:
    contract = services.contract_submit(contract=contract, user=contract.owner)
    while contract.status == ContractStatus.IN_REVIEW:
        approver = _approver(contract)
        if approver is None:
            break
        contract = services.contract_approve(contract=contract, user=approver, comment="同意 Approved")
    return contract


def _lines(rng: random.Random, amount: Decimal, currency: str) -> list[dict]:
    """Two or three lines whose tax-inclusive total is close to the deal amount."""
    picks = rng.sample(PRODUCTS, rng.randint(2, 3))
    shares = [Decimal(rng.randint(2, 6)) for _ in picks]
    rows = []
    for (name, tax), share in zip(picks, shares, strict=True):
        net = amount * share / sum(shares) / (1 + tax / 100)
        rows.append({"name": name, "quantity": Decimal("1"), "unit_price": currency_round(net, currency),
                     "discount_percent": Decimal("0"), "tax_rate": tax})
    return rows


def _plan(total: Decimal, signed_on: date, currency: str) -> list[dict]:
    """30 % on signing, 40 % after 60 days, the rest after 120 days."""
    first = currency_round(total * Decimal("0.3"), currency)
    second = currency_round(total * Decimal("0.4"), currency)
    return [
        {"due_date": signed_on + timedelta(days=7), "amount": first, "note": "预付款 Down payment"},
        {"due_date": signed_on + timedelta(days=60), "amount": second, "note": "验收款 On acceptance"},
        {"due_date": signed_on + timedelta(days=120), "amount": total - first - second, "note": "尾款 Final"},
    ]


def _sign_won(contract: Contract, signed_on: date, rng: random.Random) -> Contract:
    """Record the signing of a contract whose deal the demo already closed as won (the real service
    would win the deal itself, which is done)."""
    contract = Contract.objects.get(pk=contract.pk)
    contract.sign()
    contract.signed_on = signed_on
    contract.our_signatory = contract.owner.display_name
    contract.customer_signatory = rng.choice(SIGNATORIES)
    contract._history_user = contract.owner
    contract.save()
    services._attachment_store(  # noqa: SLF001 - the demo writes the scan the signing service would
        contract, contract.owner, SimpleUploadedFile("signed-scan.pdf", DEMO_SCAN), "signed_scan",
        "application/pdf",
    )
    return contract


def seed(*, seed: int) -> str:
    from opportunities.models import Opportunity

    today = timezone.localdate()
    created = 0
    receipts = 0
    with_contract = set(Contract.objects.exclude(opportunity=None).values_list("opportunity_id", flat=True))
    deals = (
        Opportunity.objects.select_related("customer", "owner", "stage", "contact")
        .exclude(pk__in=with_contract)
        .filter(amount__gt=0)
        .order_by("pk")
    )
    for deal in deals:
        rng = random.Random(f"{seed}-contracts-{deal.pk}")  # per deal: a re-run decides the same way
        stage = deal.current_stage()
        if stage.is_won:
            signed_on = timezone.localdate(deal.closed_at) if deal.closed_at else today - timedelta(days=30)
            signed_on = min(signed_on, today)
        elif stage.is_open and deal.is_in_last_open_stage() and rng.random() < 0.5:
            signed_on = None
        else:
            continue
        lines = _lines(rng, deal.amount, deal.currency)
        total = sum((ContractLine(**row).amounts(deal.currency)[2] for row in lines), Decimal("0"))
        start = signed_on or today + timedelta(days=14)
        contract = services.contract_create(
            user=deal.owner, customer=deal.customer, contact=deal.contact,
            # a won deal is closed: the real flow drafted its contract before; link it afterwards
            opportunity=None if signed_on else deal,
            title=deal.title, currency=deal.currency, lines=lines,
            instalments=_plan(total, start, deal.currency), start_date=start,
            end_date=start + timedelta(days=365), payment_terms="30% / 40% / 30%", terms=TERMS,
        )
        if signed_on:
            Contract.objects.filter(pk=contract.pk).update(opportunity=deal)
        created += 1
        if signed_on is None:
            if rng.random() < 0.6:
                _review_only_submit(contract)
            continue
        contract = _review(contract)
        if contract.status != ContractStatus.APPROVED:
            continue
        contract = _sign_won(contract, signed_on, rng)
        age = (today - signed_on).days
        if age > 3:
            contract = services.contract_activate(contract=contract, user=contract.owner,
                                                  on=signed_on + timedelta(days=3))
        for instalment in contract.instalments.order_by("due_date"):
            if instalment.due_date > today:
                break
            roll = rng.random()
            if roll < 0.15:
                continue  # left overdue
            amount = instalment.amount if roll > 0.3 else currency_round(instalment.amount / 2, contract.currency)
            services.payment_receipt_record(
                contract=contract, instalment=instalment, user=contract.owner,
                received_on=min(today, instalment.due_date + timedelta(days=rng.randint(0, 10))),
                amount=amount, method=rng.choice([PaymentMethod.BANK_TRANSFER, PaymentMethod.BANK_TRANSFER,
                                                  PaymentMethod.ACCEPTANCE_BILL, PaymentMethod.ALIPAY]),
                reference=f"DEMO-{contract.pk:04d}-{instalment.position + 1}",
            )
            receipts += 1
        contract.refresh_from_db()
        if contract.status == ContractStatus.ACTIVE and all(i.is_paid for i in contract.instalments.all()):
            services.contract_complete(contract=contract, user=contract.owner, on=today)
    return f"{created} contracts, {receipts} receipts"


def _review_only_submit(contract: Contract) -> None:
    services.contract_submit(contract=contract, user=contract.owner)
