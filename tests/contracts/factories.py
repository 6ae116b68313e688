"""Helpers of the contracts tests: contracts built through the services (so they obey the rules)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from contracts import services
from contracts.models import Contract, ContractStatus
from tests.factories import CustomerFactory

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def pdf(name: str = "scan.pdf", content: bytes = PDF_BYTES) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def line(name: str = "CRM licence 软件许可", quantity: str = "1", unit_price: str = "1000.00",
         discount: str = "0", tax: str = "0") -> dict:
    return {"name": name, "quantity": Decimal(quantity), "unit_price": Decimal(unit_price),
            "discount_percent": Decimal(discount), "tax_rate": Decimal(tax)}


def make_contract(owner, *, amount: str = "1000.00", customer=None, instalments=None, user=None,
                  opportunity=None, **kwargs) -> Contract:
    """A draft whose single tax-free line costs `amount`, with one instalment of the whole amount due
    in 30 days (or the given plan)."""
    customer = customer or CustomerFactory(owner=owner)
    if instalments is None:
        instalments = [{"due_date": timezone.localdate() + timedelta(days=30), "amount": Decimal(amount)}]
    return services.contract_create(
        user=user or owner, customer=customer, title=kwargs.pop("title", "年度服务合同 Annual service"),
        lines=kwargs.pop("lines", [line(unit_price=amount)]), instalments=instalments,
        opportunity=opportunity, **kwargs,
    )


def to_status(contract: Contract, status: str, org) -> Contract:
    """Walk a draft (owned by a rep of team A or B) through the lifecycle up to `status`."""
    manager = org.manager_a if contract.owner.team_id == org.team_a.pk else org.manager_b
    steps = {
        ContractStatus.DRAFT: [],
        ContractStatus.IN_REVIEW: ["submit"],
        ContractStatus.APPROVED: ["submit", "approve"],
        ContractStatus.SIGNED: ["submit", "approve", "sign"],
        ContractStatus.ACTIVE: ["submit", "approve", "sign", "activate"],
        ContractStatus.COMPLETED: ["submit", "approve", "sign", "activate", "complete"],
        ContractStatus.TERMINATED: ["submit", "approve", "sign", "terminate"],
    }[status]
    for step in steps:
        if step == "submit":
            contract = services.contract_submit(contract=contract, user=contract.owner)
        elif step == "approve":
            contract = services.contract_approve(contract=contract, user=manager)
            if contract.status == ContractStatus.IN_REVIEW:
                contract = services.contract_approve(contract=contract, user=org.admin)
        elif step == "sign":
            contract = services.contract_sign(
                contract=contract, user=contract.owner, signed_on=timezone.localdate(),
                our_signatory="张伟", customer_signatory="Li Ming", scan=pdf(),
            )
        elif step == "activate":
            contract = services.contract_activate(contract=contract, user=contract.owner)
        elif step == "complete":
            contract = services.contract_complete(contract=contract, user=contract.owner)
        elif step == "terminate":
            contract = services.contract_terminate(contract=contract, user=manager, reason="客户破产 bankrupt")
    assert contract.status == status
    return contract


def days(n: int) -> date:
    return timezone.localdate() + timedelta(days=n)
