"""Demo after-sales data: tickets in every status (some breached), threads, survey answers, service
plans. Idempotent: a second run finds the demo tickets (by customer and subject) and adds nothing."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from leads.models import Customer

from . import services
from .models import (
    CommentVisibility,
    Priority,
    SatisfactionSurvey,
    ServicePlan,
    ServicePlanTemplate,
    Ticket,
    TicketKind,
    TicketSource,
)

FALLBACK_CUSTOMERS = [
    ("上海星辰科技有限公司 Shanghai Xingchen Tech", "rep1"),
    ("杭州蓝海贸易 Hangzhou Lanhai Trading", "rep2"),
    ("苏州园区医疗器械 Suzhou Park Medical", "rep3"),
    ("广州南方制造 Guangzhou Nanfang Manufacturing", "rep4"),
    ("深圳云启软件 Shenzhen Yunqi Software", "rep5"),
    ("成都天府物流 Chengdu Tianfu Logistics", "rep6"),
]

# subject, kind, priority, the path through the lifecycle, days ago opened
TICKETS = [
    ("打印机安装调试 Printer installation", "installation", Priority.NORMAL, ["start", "resolve", "close"], 40),
    ("新员工系统培训 Training for new staff", "training", Priority.LOW, ["start", "resolve"], 12),
    ("发票导出报错 Invoice export fails", "repair", Priority.HIGH, ["start", "wait_on_customer"], 2),
    ("服务器宕机 Server down", "repair", Priority.URGENT, ["start", "resolve"], 6),
    ("报价咨询 Question about renewal pricing", "consultation", Priority.NORMAL, [], 0),
    ("配送延误投诉 Complaint: late delivery", "complaint", Priority.HIGH, ["start"], 4),
    ("扫码枪无法连接 Scanner does not connect", "repair", Priority.NORMAL, ["start", "resolve", "reopen"], 9),
    ("数据迁移咨询 Data migration advice", "consultation", Priority.LOW, ["start", "resolve", "close"], 30),
    ("现场安装第二批设备 Install the second batch", "installation", Priority.HIGH, [], 3),
    ("账号权限问题 User permissions", "repair", Priority.NORMAL, ["start", "wait_on_customer", "resume", "resolve"], 8),
    ("售后态度投诉 Complaint about support", "complaint", Priority.URGENT, ["start", "resolve", "close"], 20),
    ("年度巡检预约 Book the yearly inspection", "consultation", Priority.LOW, [], 1),
]
COMMENTS = [
    ("已电话联系客户，约定明天上门。Called the customer, visiting tomorrow.", CommentVisibility.INTERNAL),
    ("您好，我们已收到您的问题，工程师正在处理。We received your request; an engineer is on it.", CommentVisibility.PUBLIC),
    ("请提供设备序列号。Could you send us the serial number?", CommentVisibility.PUBLIC),
]
SURVEY_COMMENTS = ["响应很快，谢谢！Quick response, thanks!", "工程师很专业。Very professional.", "", "等待时间有点长。A bit slow."]


def _customers() -> list[Customer]:
    customers = list(Customer.objects.filter(owner__isnull=False).select_related("owner").order_by("pk")[:8])
    if len(customers) >= 4:
        return customers
    users = {u.username: u for u in User.objects.filter(username__in=[name for _, name in FALLBACK_CUSTOMERS])}
    for name, username in FALLBACK_CUSTOMERS:
        owner = users.get(username)
        customer, _created = Customer.objects.get_or_create(
            name=name, defaults={"owner": owner, "team": owner.team if owner else None, "status": "customer",
                                 "email": f"service@{username}-customer.example.com"},
        )
        customers.append(customer)
    return customers


def seed(*, seed: int) -> str:
    rng = random.Random(seed)
    kinds = {k.code: k for k in TicketKind.objects.all()}
    if not kinds:
        return "no ticket kinds (migrations not applied?)"
    customers = _customers()
    now = timezone.now()
    created = 0
    for index, (subject, kind_code, priority, path, days_ago) in enumerate(TICKETS):
        customer = customers[index % len(customers)]
        if Ticket.objects.filter(customer=customer, subject=subject).exists():
            continue
        owner = customer.owner if index % 4 else None  # every fourth ticket waits in the team queue
        opened = now - timedelta(days=days_ago, hours=rng.randint(1, 6))
        ticket = services.ticket_create(
            customer=customer, kind=kinds.get(kind_code) or next(iter(kinds.values())), subject=subject,
            description=subject.split(" ", 1)[-1], priority=priority, owner=owner,
            contact=customer.contacts.first(), created_by=owner,
            source=TicketSource.PUBLIC_FORM if owner is None else TicketSource.STAFF,
            requester_name="" if owner else "王先生 Mr Wang", requester_email="" if owner else "wang@example.com",
            now=opened,
        )
        when = opened
        actor = owner or (customer.owner if customer.owner_id else None)
        for step_number, step in enumerate(path):
            when += timedelta(hours=rng.randint(1, 20) if step != "reopen" else 24)
            when = min(when, now - timedelta(minutes=10 * (len(path) - step_number)))
            if step_number == 1 and actor:
                text, visibility = COMMENTS[index % len(COMMENTS)]
                services.ticket_comment_add(ticket=ticket, author=actor, body=text, visibility=visibility, now=when)
            ticket = services.ticket_transition(ticket=ticket, transition=step, now=when,
                                                by=None if step == "reopen" else actor, by_customer=step == "reopen")
        created += 1
    answered = 0
    for survey in SatisfactionSurvey.objects.filter(answered_at__isnull=True, ticket__subject__in=[t[0] for t in TICKETS]):
        pick = random.Random(seed * 1000 + survey.ticket_id)  # the same choice on every run: idempotent
        if pick.random() < 0.8:
            try:
                services.survey_answer(survey=survey, score=pick.choice([5, 5, 4, 4, 3, 2]),
                                       comment=pick.choice(SURVEY_COMMENTS), now=min(now, survey.created_at + timedelta(days=1)))
                answered += 1
            except services.SurveyClosed:
                continue
    template = ServicePlanTemplate.objects.filter(is_active=True).first()
    plans = 0
    if template is not None:
        for customer in customers[:3]:
            if not ServicePlan.objects.filter(customer=customer, template=template).exists():
                services.service_plan_apply(template=template, customer=customer, start=timezone.localdate() - timedelta(days=10),
                                            owner=customer.owner)
                plans += 1
    # record what is already past its deadline (and notify, as the beat scan would)
    scan = services.sla_scan(now=now)
    return (f"{created} tickets, {answered} survey answers, {plans} service plans, "
            f"{scan['breached']} SLA breaches notified")
