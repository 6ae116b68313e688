"""Demo pipeline: ~300 deals over the demo reps' customers with a year of stage history (won, lost,
in progress, some moved back, some stalled), so that the board and the dashboards have something to show.

Runs after the leads seeder (its customers); with no customers yet it creates a few. Idempotent: when
the demo customers already have deals, nothing is added. Rows are bulk-inserted (a second or two).
The history is written directly, like an import: these deals never went through the transitions.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import Role, User
from leads.models import Contact, Customer

from . import scoring
from .models import (
    ChecklistTick,
    LossReason,
    Opportunity,
    PriorityWeights,
    Source,
    StageChange,
    StageChecklistItem,
    StageKind,
    TransitionAction,
)
from .services import pipeline_ensure_default

COUNT = 300

FALLBACK_CUSTOMERS = [
    ("上海星辰科技有限公司", "A"), ("杭州蓝海贸易有限公司", "B"), ("苏州园区医疗器械有限公司", "A"),
    ("Guangzhou Nanfang Manufacturing Co., Ltd.", "B"), ("深圳云启软件有限公司", "C"), ("成都天府物流有限公司", "C"),
    ("Beijing Huaxin Consulting", "B"), ("南京明德教育科技", "C"), ("武汉长风汽车零部件", "A"), ("厦门青禾食品", "C"),
]
PRODUCTS = [
    ("CRM 系统实施", "CRM rollout"), ("ERP 升级", "ERP upgrade"), ("年度服务续约", "Annual service renewal"),
    ("数据中台建设", "Data platform"), ("门店收银系统", "Store POS system"), ("仓储管理系统", "Warehouse system"),
    ("员工培训项目", "Staff training"), ("设备采购", "Equipment purchase"), ("云服务器迁移", "Cloud migration"),
    ("安全审计", "Security audit"), ("移动办公套件", "Mobile office suite"), ("呼叫中心改造", "Call centre upgrade"),
]
PAIN_POINTS = [
    "手工对账耗时，月底加班严重 Manual reconciliation takes days",
    "销售数据分散在 Excel 里 Sales data scattered in spreadsheets",
    "库存不准，经常缺货 Stock levels are never right",
    "老系统不再维护 The old system is no longer supported",
    "客户投诉响应慢 Slow response to complaints",
]
DECISION_MAKERS = ["王总 CEO Wang", "李经理 IT manager Li", "陈总监 CFO Chen", "刘主任 Ops head Liu", "赵董 Chairman Zhao"]
COMPETITORS = ["", "", "纷享销客", "Salesforce", "销售易", "HubSpot", "金蝶", "用友"]
NEXT_STEPS = ["电话跟进 Follow-up call", "上门演示 On-site demo", "发送报价 Send the quote", "安排技术交流 Technical workshop",
              "合同审批 Contract approval"]
MOVE_BACK_REASONS = ["客户重新评估需求 Customer re-assessing needs", "预算被砍 Budget cut", "决策人变更 New decision maker"]


def _customers(rng: random.Random) -> list[Customer]:
    customers = list(Customer.objects.filter(owner__isnull=False, owner__is_active=True).select_related("owner")
                     .order_by("pk")[:400])
    if len(customers) >= 10:
        return customers
    reps = list(User.objects.filter(role=Role.REP, is_active=True).order_by("username")) or list(
        User.objects.filter(is_active=True).order_by("username")[:1]
    )
    if not reps:
        return customers
    for index, (name, tier) in enumerate(FALLBACK_CUSTOMERS):
        owner = reps[index % len(reps)]
        customer, _created = Customer.objects.get_or_create(
            name=name, defaults={"owner": owner, "team": owner.team, "tier": tier}
        )
        customers.append(customer)
    return customers


def _amount(rng: random.Random) -> Decimal:
    value = 10 ** rng.uniform(4.3, 6.3)  # ~20,000 to ~2,000,000
    return Decimal(int(value / 1000) * 1000)


def seed(*, seed: int) -> str:
    rng = random.Random(seed)
    now = timezone.now()
    pipeline = pipeline_ensure_default()
    customers = _customers(rng)
    if not customers:
        return "no customers and no users: nothing to seed"
    if Opportunity.objects.filter(customer__in=customers).exists():
        return f"{Opportunity.objects.count()} opportunities (already seeded)"
    stages = list(pipeline.stages.filter(kind=StageKind.OPEN, is_active=True).order_by("order", "id"))
    won = pipeline.stages.get(kind=StageKind.WON)
    lost = pipeline.stages.get(kind=StageKind.LOST)
    reasons = list(LossReason.objects.filter(is_active=True).order_by("order"))
    items_by_stage: dict[int, list[int]] = {}
    for item_id, stage_id in StageChecklistItem.objects.filter(stage__pipeline=pipeline).values_list("id", "stage_id"):
        items_by_stage.setdefault(stage_id, []).append(item_id)
    contacts: dict[int, int] = dict(
        Contact.objects.filter(customer__in=customers).order_by("customer_id", "-pk").values_list("customer_id", "pk")
    )
    weights = PriorityWeights.load()
    sources = [choice for choice, _label in Source.choices]

    deals: list[Opportunity] = []
    paths: list[list[tuple]] = []  # per deal: (action, from_stage, to_stage, at, note)
    for _n in range(COUNT):
        customer = rng.choice(customers)
        age_days = rng.uniform(3, 365)
        created = now - timedelta(days=age_days, hours=rng.randint(0, 12))
        cycle_days = rng.uniform(20, 160)
        roll = rng.random()
        if age_days > 120:
            outcome = "won" if roll < 0.42 else "lost" if roll < 0.88 else "open"
        else:
            outcome = "won" if roll < 0.12 else "lost" if roll < 0.32 else "open"
        if outcome == "won":
            reach = len(stages) - 1
        else:
            reach = min(len(stages) - 1, int(rng.triangular(0, len(stages), 0.5)))
        # the stage walk: forward to `reach`, sometimes one step back and forward again
        walk: list[tuple[str, object]] = [("advance", stages[i]) for i in range(1, reach + 1)]
        if reach >= 2 and rng.random() < 0.15:
            back_at = rng.randint(2, reach)
            walk[back_at - 1:back_at - 1] = [("move_back", stages[back_at - 2]), ("advance", stages[back_at - 1])]
        if outcome == "won":
            walk.append(("win", won))
        elif outcome == "lost":
            walk.append(("lose", lost))
        end = min(now - timedelta(hours=1), created + timedelta(days=cycle_days))
        if outcome == "open":
            end = now - timedelta(days=rng.uniform(0.5, 25 if rng.random() < 0.75 else 60))
            end = max(end, created + timedelta(hours=len(walk) + 1))
        span = max((end - created).total_seconds(), 3600.0 * (len(walk) + 1))
        cuts = sorted(rng.uniform(0.05, 1.0) for _ in walk)
        moments = [created + timedelta(seconds=span * cut) for cut in cuts]
        if walk:
            moments[-1] = min(end, now - timedelta(minutes=30))
            moments = sorted(moments)
        path = [("create", None, stages[0], created, "")]
        current = stages[0]
        for (action, target), at in zip(walk, moments, strict=True):
            note = rng.choice(MOVE_BACK_REASONS) if action == "move_back" else ""
            path.append((action, current, target, at, note))
            current = target
        final_stage = current
        lost_from = path[-2][2] if outcome == "lost" and len(path) >= 2 else None
        entered = path[-1][3]
        product_zh, product_en = rng.choice(PRODUCTS)
        deal = Opportunity(
            pipeline=pipeline,
            stage=final_stage,
            customer=customer,
            contact_id=contacts.get(customer.pk),
            title=f"{product_zh} {product_en}",
            amount=_amount(rng),
            expected_close_date=(created + timedelta(days=cycle_days)).date(),
            probability=final_stage.default_probability,
            owner=customer.owner,
            source=rng.choice(sources),
            competitors=rng.choice(COMPETITORS),
            next_step=rng.choice(NEXT_STEPS) if outcome == "open" else "",
            next_step_date=(now + timedelta(days=rng.randint(-5, 14))).date() if outcome == "open" else None,
            budget=_amount(rng) if reach >= 1 else None,
            decision_maker=rng.choice(DECISION_MAKERS) if reach >= 1 else "",
            pain_points=rng.choice(PAIN_POINTS) if reach >= 1 else "",
            loss_reason=rng.choice(reasons) if outcome == "lost" and reasons else None,
            loss_note="",
            lost_from_stage=lost_from if outcome == "lost" else None,
            stage_entered_at=entered,
            last_activity_at=entered + timedelta(days=rng.uniform(0, 10)) if outcome == "open" else entered,
            closed_at=entered if outcome != "open" else None,
            created_by=customer.owner,
            created_at=created,
        )
        if deal.last_activity_at and deal.last_activity_at > now:
            deal.last_activity_at = now
        deal.priority_score = scoring.priority_score(deal, weights, now=now)
        deals.append(deal)
        paths.append(path)

    created_deals = bulk_create_with_history(deals, Opportunity, batch_size=500, default_date=now)
    # bulk_create_with_history returns the objects with their primary keys on PostgreSQL; elsewhere
    # find them again (same order: the newest ids).
    if any(deal.pk is None for deal in created_deals):
        ids = list(Opportunity.objects.filter(customer__in=customers).order_by("pk").values_list("pk", flat=True))
        for deal, pk in zip(created_deals, ids[-len(created_deals):], strict=True):
            deal.pk = pk
    changes, ticks = [], []
    for deal, path in zip(created_deals, paths, strict=True):
        previous_at = None
        for action, from_stage, to_stage, at, note in path:
            changes.append(StageChange(
                opportunity_id=deal.pk, action=action if action != "create" else TransitionAction.CREATE,
                from_stage=from_stage, to_stage=to_stage, changed_by_id=deal.owner_id, changed_at=at, note=note,
                seconds_in_previous_stage=int((at - previous_at).total_seconds()) if previous_at else None,
            ))
            previous_at = at
            if action == "advance" and from_stage is not None:
                ticks += [ChecklistTick(opportunity_id=deal.pk, item_id=item_id, ticked_by_id=deal.owner_id,
                                        ticked_at=at) for item_id in items_by_stage.get(from_stage.pk, [])]
    StageChange.objects.bulk_create(changes, batch_size=2000)
    ChecklistTick.objects.bulk_create(ticks, batch_size=2000, ignore_conflicts=True)
    won_count = sum(1 for deal in created_deals if deal.stage_id == won.pk)
    lost_count = sum(1 for deal in created_deals if deal.stage_id == lost.pk)
    return (f"{len(created_deals)} opportunities ({won_count} won, {lost_count} lost, "
            f"{len(created_deals) - won_count - lost_count} open), {len(changes)} stage changes")
