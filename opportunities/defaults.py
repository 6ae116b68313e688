"""The default pipeline (新业务 / New business) and loss reasons.

The data migration 0002 seeds a frozen copy of this data in every database; `ensure_default_pipeline`
recreates whatever is missing at run time (after a test flushed the tables, or when an administrator
deleted the default). Both are idempotent: rows are found by their codes and never duplicated.
"""

from __future__ import annotations

DEFAULT_PIPELINE = {"code": "new_business", "name_zh": "新业务", "name_en": "New business"}

DEFAULT_STAGES = [
    {
        "code": "lead", "name_zh": "线索", "name_en": "Lead", "order": 10, "kind": "open",
        "default_probability": 10, "stall_days": 14, "exit_fields": ["contact", "source"],
        "checklist": [("确认客户有真实需求", "Confirmed a real need")],
        "playbook_zh": "24 小时内首次联系；确认联系人、来源和大致需求。\n话术：“您好，看到您对我们的方案感兴趣，想了解一下您目前的情况……”",
        "playbook_en": "Call within 24 hours; confirm the contact, the source and the rough need.\n"
                       "Talk track: \"Hello, I saw you were interested in our solution; may I ask how you work today...\"",
    },
    {
        "code": "needs_analysis", "name_zh": "需求分析", "name_en": "Needs analysis", "order": 20, "kind": "open",
        "default_probability": 25, "stall_days": 21, "exit_fields": ["budget", "decision_maker", "pain_points"],
        "checklist": [("完成需求调研会议", "Held the discovery meeting")],
        "playbook_zh": "与决策人会面，挖掘痛点、预算和时间表（BANT）。记录竞争对手情况。",
        "playbook_en": "Meet the decision maker; uncover pain points, budget and timeline (BANT). Note the competitors.",
    },
    {
        "code": "proposal", "name_zh": "方案制定", "name_en": "Proposal", "order": 30, "kind": "open",
        "default_probability": 50, "stall_days": 21, "exit_fields": ["amount", "expected_close_date"],
        "checklist": [("方案已发送并讲解", "Proposal sent and presented")],
        "playbook_zh": "针对痛点定制方案并当面讲解；确认报价金额和预计成交日期。",
        "playbook_en": "Tailor the proposal to the pain points and present it; agree the quoted amount and the expected close date.",
    },
    {
        "code": "negotiation", "name_zh": "报价与谈判", "name_en": "Quote & negotiation", "order": 40, "kind": "open",
        "default_probability": 75, "stall_days": 30, "exit_fields": [],
        "checklist": [],
        "playbook_zh": "发送正式报价，处理异议，推动合同审批与签署。签署合同后商机自动赢单。",
        "playbook_en": "Send the formal quote, handle objections, push the contract through approval and signing. "
                       "Signing the contract wins the deal.",
    },
    {
        "code": "won", "name_zh": "赢单", "name_en": "Won", "order": 90, "kind": "won",
        "default_probability": 100, "stall_days": None, "exit_fields": [], "checklist": [],
        "playbook_zh": "交接给实施与售后团队，跟进回款。", "playbook_en": "Hand over to delivery and after-sales; follow the payments.",
    },
    {
        "code": "lost", "name_zh": "输单", "name_en": "Lost", "order": 91, "kind": "lost",
        "default_probability": 0, "stall_days": None, "exit_fields": [], "checklist": [],
        "playbook_zh": "记录输单原因，三个月后再次回访。", "playbook_en": "Record why the deal was lost; call again in three months.",
    },
]

DEFAULT_LOSS_REASONS = [
    ("价格过高", "Price too high"),
    ("输给竞争对手", "Lost to a competitor"),
    ("没有预算", "No budget"),
    ("需求变化", "Requirements changed"),
    ("无决策 / 项目搁置", "No decision / project shelved"),
    ("其他", "Other"),
]


def seed_defaults(Pipeline, Stage, StageChecklistItem, LossReason) -> None:  # noqa: N803 - model classes
    """Create the default pipeline, its stages and the loss reasons where missing (idempotent).

    Takes the model classes so that the data migration can pass its historical models."""
    pipeline = Pipeline.objects.filter(code=DEFAULT_PIPELINE["code"]).first()
    if pipeline is None:
        has_default = Pipeline.objects.filter(is_default=True).exists()
        pipeline = Pipeline.objects.create(
            code=DEFAULT_PIPELINE["code"], name_zh=DEFAULT_PIPELINE["name_zh"],
            name_en=DEFAULT_PIPELINE["name_en"], is_default=not has_default,
        )
    existing = {stage.code: stage for stage in Stage.objects.filter(pipeline=pipeline)}
    existing_kinds = {stage.kind for stage in existing.values()}
    for spec in DEFAULT_STAGES:
        if spec["code"] in existing or (spec["kind"] != "open" and spec["kind"] in existing_kinds):
            continue
        if spec["kind"] == "open" and existing:
            continue  # a customised pipeline: do not add back open stages an administrator removed
        stage = Stage.objects.create(
            pipeline=pipeline,
            **{key: value for key, value in spec.items() if key != "checklist"},
        )
        for index, (text_zh, text_en) in enumerate(spec["checklist"]):
            StageChecklistItem.objects.create(stage=stage, text_zh=text_zh, text_en=text_en, order=index)
    if not LossReason.objects.exists():
        for index, (name_zh, name_en) in enumerate(DEFAULT_LOSS_REASONS):
            LossReason.objects.create(name_zh=name_zh, name_en=name_en, order=index)
