"""A small, fixed CRM for the export and round-trip tests: customers from several sources (one in the
lead pool), contacts, deals won, lost and open with their stage history and dates, activities by
several reps, a signed contract with its payment plan and a payment, a ticket.

Dates are fixed in March-April 2026 (local time); some times carry microseconds, some text cells start
with formula characters, so both survive the export and the import exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from activities.defaults import ensure_defaults
from activities.models import Activity, ActivityKind, ActivityStatus
from aftersales.models import Ticket, TicketKind
from contracts.models import Contract, ContractLine, ContractStatus, PaymentInstalment, PaymentReceipt
from leads.models import Contact, Customer, SourceChannel, Tag
from opportunities.models import LossReason, Opportunity, Stage, StageChange, StageKind, TransitionAction
from opportunities.services import pipeline_ensure_default

FORMULA_NAME = "=SUM(A1)"
DISCOUNT_NEEDS = "-5% discount"


def at(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A local time of 2026 in the configured time zone."""
    return datetime(2026, month, day, hour, minute, second, micro, tzinfo=timezone.get_current_timezone())


def channel(code: str, name: str) -> SourceChannel:
    return SourceChannel.objects.get_or_create(code=code, defaults={"name": name})[0]


@dataclass
class SmallCrm:
    customers: dict[str, Customer] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    deals: dict[str, Opportunity] = field(default_factory=dict)
    activities: list[Activity] = field(default_factory=list)
    contract: Contract | None = None
    ticket: Ticket | None = None


def _customer(key: str, *, created: datetime, **fields) -> Customer:
    customer = Customer.objects.create(**fields)
    Customer.objects.filter(pk=customer.pk).update(created_at=created)
    customer.refresh_from_db()
    return customer


def _deal(crm: SmallCrm, key: str, *, path: list[Stage], times: list[datetime], owner, customer, **fields) -> Opportunity:
    """A deal that went through `path` (its first stage at times[0] = creation), with its StageChange rows."""
    final = path[-1]
    closed_at = times[-1] if not final.is_open else None
    deal = Opportunity.objects.create(
        pipeline=final.pipeline, stage=final, owner=owner, customer=customer, created_at=times[0],
        stage_entered_at=times[-1], closed_at=closed_at,
        lost_from_stage=path[-2] if final.kind == StageKind.LOST else None, **fields,
    )
    previous = None
    for index, (stage, when) in enumerate(zip(path, times, strict=True)):
        if previous is None:
            action = TransitionAction.CREATE
        elif stage.kind == StageKind.WON:
            action = TransitionAction.WIN
        elif stage.kind == StageKind.LOST:
            action = TransitionAction.LOSE
        else:
            action = TransitionAction.ADVANCE
        StageChange.objects.create(
            opportunity=deal, action=action, from_stage=previous, to_stage=stage, changed_by=owner, changed_at=when,
            seconds_in_previous_stage=int((when - times[index - 1]).total_seconds()) if previous else None,
        )
        previous = stage
    crm.deals[key] = deal
    return deal


def build_small_crm(org) -> SmallCrm:
    ensure_defaults()
    pipeline = pipeline_ensure_default()
    stages = list(pipeline.stages.filter(kind=StageKind.OPEN, is_active=True).order_by("order", "id"))
    won = pipeline.stages.get(kind=StageKind.WON)
    lost = pipeline.stages.get(kind=StageKind.LOST)
    reason = LossReason.objects.filter(is_active=True).order_by("order", "id").first()
    web, referral, event = channel("website", "Website registration"), channel("referral", "Referral"), channel(
        "event", "Offline event")
    vip, factory_tag = Tag.objects.get_or_create(name="VIP")[0], Tag.objects.get_or_create(name="制造业")[0]

    crm = SmallCrm()
    c1 = _customer(
        "c1", created=at(3, 2, 9, 15, 30, 123456), name="华东精密制造 East China Precision", external_id="OLD-C1",
        status="customer", tier="A", industry="manufacturing", region="华东 · 上海", address="上海市浦东新区 1 号",
        size="201-1000", website="https://east.example.com", phone="+86 138 0013 8000", email="info@east.example.com",
        source=web, needs="ERP 对账 reconciliation", owner=org.rep_a, team=org.team_a,
    )
    c1.tags.set([vip, factory_tag])
    c2 = _customer(
        "c2", created=at(3, 4, 14, 0), name=FORMULA_NAME, status="prospect", tier="B", source=referral,
        needs=DISCOUNT_NEEDS, requirements="+1 onsite engineer", owner=org.rep_a2, team=org.team_a,
        customer_type="individual",
    )
    c3 = _customer(
        "c3", created=at(3, 6, 11, 30), name="Beta Software 贝塔软件", status="lead", tier="C", source=event,
        industry="software", requirements="@mention in reports", owner=org.rep_b, team=org.team_b,
    )
    c4 = _customer("c4", created=at(3, 8, 8, 45), name="Pool Lead 公海线索", source=web, owner=None, team=org.team_b)
    crm.customers = {"c1": c1, "c2": c2, "c3": c3, "c4": c4}

    wang = Contact.objects.create(customer=c1, name="王总 Wang", title="CFO 财务总监", phone="13900001111",
                                  email="wang@east.example.com", wechat="wang_cfo", is_decision_maker=True,
                                  notes="Prefers 上午 calls", external_id="OLD-P1")
    li = Contact.objects.create(customer=c2, name="Li Ming 李明", notes="'=quoted already", phone="+86 21 5555 0000")
    zhao = Contact.objects.create(customer=c3, name="赵工 Zhao", title="CTO")
    crm.contacts = {"wang": wang, "li": li, "zhao": zhao}

    s1, s2, s3 = stages[0], stages[1], stages[2]
    _deal(crm, "won_big", path=[s1, s2, s3, stages[-1], won],
          times=[at(3, 5, 10, 0, 0, 250000), at(3, 12, 9), at(3, 20, 15, 30), at(4, 1, 11), at(4, 10, 16, 30, 5)],
          owner=org.rep_a, customer=c1, contact=wang, title="ERP 升级 ERP upgrade", amount=Decimal("120000.50"),
          source="referral", probability=100, external_id="OLD-D1")
    _deal(crm, "won_fast", path=[s1, stages[-1], won], times=[at(3, 20, 9), at(3, 24, 9), at(3, 28, 17)],
          owner=org.rep_a, customer=c1, title="Support renewal 维保续约", amount=Decimal("30000.00"),
          source="website", probability=100)
    _deal(crm, "lost", path=[s1, s2, lost], times=[at(3, 10, 13), at(3, 15, 10), at(3, 25, 18)],
          owner=org.rep_a2, customer=c2, contact=li, title="=HYPERLINK(\"http://evil/\")", amount=Decimal("45000.00"),
          source="referral", probability=0, loss_reason=reason, loss_note="-价格太高 price too high")
    _deal(crm, "open", path=[s1, s2], times=[at(3, 18, 10), at(4, 2, 10)], owner=org.rep_b, customer=c3,
          contact=zhao, title="CRM rollout", amount=Decimal("88000.00"), source="website", probability=40,
          expected_close_date=date(2026, 4, 28))
    _deal(crm, "open_nosource", path=[s1], times=[at(4, 3, 16)], owner=org.rep_b, customer=c3,
          title="Training 培训", amount=Decimal("5000.00"), probability=10, expected_close_date=date(2026, 6, 30))

    kinds = {k.code: k for k in ActivityKind.objects.all()}
    plan = [
        dict(kind="call", owner=org.rep_a, customer=c1, contact=wang, opportunity=crm.deals["won_big"],
             status=ActivityStatus.DONE, done_at=at(3, 6, 10, 5), outcome="positive", duration_minutes=30,
             subject="首次电话 First call", notes="Budget ≈ 12万\nNext: demo", next_step="=demo next week",
             external_id="OLD-A1"),
        dict(kind="visit", owner=org.rep_a, customer=c1, status=ActivityStatus.DONE, done_at=at(3, 21, 15),
             outcome="neutral", subject="拜访 Visit"),
        dict(kind="call", owner=org.rep_a2, customer=c2, contact=li, opportunity=crm.deals["lost"],
             status=ActivityStatus.DONE, done_at=at(3, 11, 9, 30), outcome="negative", subject="-5% ask"),
        dict(kind="meeting", owner=org.rep_b, customer=c3, status=ActivityStatus.DONE, done_at=at(3, 19, 14),
             subject="Kick-off 启动会", duration_minutes=90),
        dict(kind="call", owner=org.rep_b, customer=c3, status=ActivityStatus.PLANNED, planned_at=at(4, 15, 10),
             subject="Follow-up"),
        dict(kind="visit", owner=org.rep_b, customer=c3, status=ActivityStatus.CANCELLED, planned_at=at(3, 30, 10),
             subject="Cancelled visit"),
    ]
    for item in plan:
        item["kind"] = kinds[item["kind"]]
        crm.activities.append(Activity.objects.create(**item))

    contract = Contract.objects.create(
        number="HT-2026-000001", title="ERP 合同 ERP contract", customer=c1, contact=wang,
        opportunity=crm.deals["won_big"], owner=org.rep_a, status=ContractStatus.SIGNED, subtotal=Decimal("120000.50"),
        total_amount=Decimal("120000.50"), signed_on=date(2026, 4, 10), our_signatory="张伟", customer_signatory="王总",
        payment_terms="=50% upfront",
    )
    ContractLine.objects.create(contract=contract, name="ERP licence 软件许可", quantity=Decimal("1"),
                                unit_price=Decimal("120000.50"), tax_rate=Decimal("0"))
    first = PaymentInstalment.objects.create(contract=contract, position=1, due_date=date(2026, 4, 20),
                                             amount=Decimal("60000.25"), paid_amount=Decimal("60000.25"))
    PaymentInstalment.objects.create(contract=contract, position=2, due_date=date(2026, 6, 20),
                                     amount=Decimal("60000.25"))
    PaymentReceipt.objects.create(instalment=first, contract=contract, received_on=date(2026, 4, 18),
                                  amount=Decimal("60000.25"), recorded_by=org.rep_a, reference="BANK-001")
    crm.contract = contract
    kind = TicketKind.objects.get_or_create(code="repair", defaults={"name": "维修", "name_en": "Repair"})[0]
    crm.ticket = Ticket.objects.create(customer=c1, contact=wang, contract=contract, kind=kind, subject="+ sign bug",
                                       owner=org.rep_a, created_at=at(4, 12, 9))
    return crm
