"""Demo activities: a year of done activities for the demo customers, planned ones for the coming weeks
(a few overdue), an onboarding plan and a weekly call series. Idempotent: a second run adds nothing."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from django.utils import timezone

from leads.models import Customer
from leads.services import customer_touch
from opportunities.models import Opportunity
from opportunities.services import opportunity_record_activity

from . import services
from .defaults import ensure_defaults
from .models import Activity, ActivityKind, ActivityStatus, Outcome, PlanTemplate

SUBJECTS = {
    "call": ["电话沟通需求 Call about requirements", "报价跟进电话 Follow-up call on the quote", "回访电话 Check-in call"],
    "visit": ["上门拜访 On-site visit", "拜访采购部 Visit to purchasing", "现场调研 Site survey"],
    "meeting": ["方案评审会 Proposal review meeting", "商务谈判 Commercial negotiation", "季度业务回顾 Quarterly review"],
    "email": ["发送报价单 Quote sent", "发送产品资料 Brochure sent", "合同条款确认 Contract terms by email"],
    "wechat": ["微信沟通交付时间 WeChat about delivery", "微信发送案例 Case study on WeChat"],
    "demo": ["产品演示 Product demo", "线上演示新功能 Online demo of new features"],
    "note": ["客户内部预算已批 Budget approved internally", "关键人变动 Key contact changed"],
}
NEXT_STEPS = ["发送正式报价 Send the formal quote", "约技术交流 Book a technical session", "等待客户反馈 Wait for feedback",
              "安排试用 Arrange a trial", "准备合同草稿 Draft the contract", ""]
NOTES = ["客户对价格敏感，关注交付周期。Price-sensitive, cares about lead time.",
         "决策人下月出差，需提前预约。Decision maker travels next month.",
         "对售后服务很满意。Happy with the after-sales service.", ""]
KIND_WEIGHTS = {"call": 10, "wechat": 6, "email": 5, "visit": 4, "meeting": 3, "demo": 2, "note": 2}


def _at(day, rng: random.Random) -> datetime:
    """A working-hours time on the day (a weekend day moves to the Monday after)."""
    if day.weekday() >= 5:
        day += timedelta(days=7 - day.weekday())
    tz = timezone.get_current_timezone()
    return datetime.combine(day, time(rng.randint(9, 17), rng.choice([0, 15, 30, 45])), tzinfo=tz)


def seed(*, seed: int) -> str:
    if Activity.objects.filter(idempotency_key__startswith="demo-").exists():
        return f"{Activity.objects.count()} activities (already seeded)"
    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate(now)
    ensure_defaults()
    kinds = {kind.code: kind for kind in ActivityKind.objects.all()}
    codes = [code for code in KIND_WEIGHTS if code in kinds]
    weights = [KIND_WEIGHTS[code] for code in codes]
    customers = list(Customer.objects.filter(owner__isnull=False).select_related("owner").order_by("pk"))
    deals: dict[int, list[Opportunity]] = {}
    for deal in Opportunity.objects.filter(customer__in=customers).order_by("pk"):
        deals.setdefault(deal.customer_id, []).append(deal)
    rows: list[Activity] = []
    last_done: dict[int, datetime] = {}
    last_deal_activity: dict[int, datetime] = {}
    for customer in customers:
        customer_deals = deals.get(customer.pk, [])
        for n in range(rng.randint(2, 12)):
            code = rng.choices(codes, weights)[0]
            done_at = _at(today - timedelta(days=rng.randint(1, 365)), rng)
            deal = rng.choice(customer_deals) if customer_deals and rng.random() < 0.5 else None
            rows.append(Activity(
                kind=kinds[code], subject=rng.choice(SUBJECTS[code]), notes=rng.choice(NOTES), customer=customer,
                owner=customer.owner, opportunity=deal, done_at=done_at, status=ActivityStatus.DONE,
                planned_at=done_at if rng.random() < 0.4 else None,
                duration_minutes=rng.choice([None, 10, 15, 30, 45, 60, 90]),
                outcome=rng.choice([Outcome.POSITIVE, Outcome.POSITIVE, Outcome.NEUTRAL, Outcome.NEGATIVE, ""]),
                next_step=rng.choice(NEXT_STEPS), idempotency_key=f"demo-{customer.pk}-d{n}", created_by=customer.owner,
            ))
            if kinds[code].counts_as_contact and done_at > last_done.get(customer.pk, done_at - timedelta(days=1)):
                last_done[customer.pk] = done_at
            if deal is not None and done_at > last_deal_activity.get(deal.pk, done_at - timedelta(days=1)):
                last_deal_activity[deal.pk] = done_at
        if rng.random() < 0.6:
            for n in range(rng.randint(1, 3)):
                code = rng.choice(["call", "visit", "meeting", "demo", "wechat"])
                offset = rng.choice([-3, -1, 0, 0, 1, 2, 3, 5, 7, 10, 14, 21, 28])
                rows.append(Activity(
                    kind=kinds[code], subject=rng.choice(SUBJECTS[code]), customer=customer, owner=customer.owner,
                    opportunity=rng.choice(customer_deals) if customer_deals and rng.random() < 0.5 else None,
                    planned_at=_at(today + timedelta(days=offset), rng), status=ActivityStatus.PLANNED,
                    duration_minutes=rng.choice([30, 60]), idempotency_key=f"demo-{customer.pk}-p{n}",
                    created_by=customer.owner,
                ))
    Activity.objects.bulk_create(rows, batch_size=1000)
    by_pk = {customer.pk: customer for customer in customers}
    for customer_pk, done_at in last_done.items():
        customer_touch(customer=by_pk[customer_pk], contacted_at=done_at)
    for deal_pk, done_at in last_deal_activity.items():
        opportunity_record_activity(opportunity_id=deal_pk, at=done_at)
    plans = _plans(customers, rng, today)
    return f"{len(rows)} activities, {plans} plans"


def _plans(customers: list[Customer], rng: random.Random, today) -> int:
    template = PlanTemplate.objects.filter(is_active=True).first()
    call = ActivityKind.objects.filter(code="call").first()
    created = 0
    recent = sorted(customers, key=lambda c: c.created_at, reverse=True)
    if template is not None:
        for customer in recent[:3]:
            services.plan_template_apply(by=customer.owner, customer=customer, owner=customer.owner,
                                         template=template, start=today - timedelta(days=rng.randint(0, 5)))
            created += 1
    tier_a = [c for c in customers if c.tier == "A"][:3]
    if call is not None:
        for customer in tier_a:
            services.plan_series_create(
                by=customer.owner, customer=customer, owner=customer.owner, kind=call,
                subject="每周电话跟进 Weekly call", first_at=_at(today + timedelta(days=1), rng), interval_days=7,
                occurrences=8,
            )
            created += 1
    return created
