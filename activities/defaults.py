"""The seeded activity kinds and plan template (also written by migration 0002, which keeps its own
frozen copy). `ensure_defaults()` puts back whatever is missing: the demo seeder and the tests call it
(a transactional test's flush empties the tables that migrations filled)."""

from __future__ import annotations

from datetime import time

# The codes are part of the API (issue 9): call, visit, meeting, email, wechat, demo, note.
KINDS = [
    # code, Chinese, English, icon, counts as a contact
    ("call", "电话", "Call", "bi-telephone", True),
    ("visit", "拜访", "Visit", "bi-geo-alt", True),
    ("meeting", "会议", "Meeting", "bi-people", True),
    ("email", "邮件", "Email", "bi-envelope", True),
    ("wechat", "微信", "WeChat message", "bi-wechat", True),
    ("demo", "产品演示", "Demo", "bi-display", True),
    ("note", "备注", "Note", "bi-journal-text", False),
]

ONBOARDING = [
    # kind, offset days, Chinese subject, English subject
    ("call", 1, "欢迎电话：确认需求与联系人", "Welcome call: confirm needs and contacts"),
    ("visit", 7, "上门拜访：实施启动", "On-site visit: kick-off"),
    ("call", 30, "满意度回访", "Satisfaction call"),
]


def ensure_defaults() -> None:
    from .models import ActivityKind, PlanTemplate, PlanTemplateStep

    kinds = {}
    for position, (code, name, name_en, icon, contact) in enumerate(KINDS):
        kinds[code], _created = ActivityKind.objects.get_or_create(
            code=code,
            defaults={"name": name, "name_en": name_en, "icon": icon, "counts_as_contact": contact,
                      "position": position},
        )
    template, created = PlanTemplate.objects.get_or_create(
        name="新客户上手", defaults={"name_en": "Onboarding", "description": "电话 +1 天，拜访 +7 天，回访 +30 天"}
    )
    if created:
        for position, (code, offset, subject, subject_en) in enumerate(ONBOARDING):
            PlanTemplateStep.objects.create(
                template=template, kind=kinds[code], offset_days=offset, subject=subject, subject_en=subject_en,
                at_time=time(10, 0), position=position,
            )
