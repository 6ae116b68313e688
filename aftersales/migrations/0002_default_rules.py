"""The default, admin-editable rules: ticket kinds, an SLA policy per priority, the settings row and
a standard service plan template."""

from django.db import migrations

KINDS = [
    ("installation", "安装", "Installation"),
    ("training", "培训", "Training"),
    ("consultation", "咨询", "Consultation"),
    ("repair", "维修", "Repair"),
    ("complaint", "投诉", "Complaint"),
]
# priority: (response, resolution, warning) minutes, business hours only
POLICIES = {
    "urgent": (60, 8 * 60, 30, False),
    "high": (4 * 60, 2 * 9 * 60, 60, True),
    "normal": (8 * 60, 5 * 9 * 60, 120, True),
    "low": (2 * 9 * 60, 10 * 9 * 60, 240, True),
}
TEMPLATE_ITEMS = [
    ("开通回访电话 Onboarding call", "consultation", 3),
    ("产品培训 Product training", "training", 14),
    ("季度回访 Review visit", "consultation", 90),
]


def forwards(apps, schema_editor):
    TicketKind = apps.get_model("aftersales", "TicketKind")
    SlaPolicy = apps.get_model("aftersales", "SlaPolicy")
    ServiceSettings = apps.get_model("aftersales", "ServiceSettings")
    Template = apps.get_model("aftersales", "ServicePlanTemplate")
    TemplateItem = apps.get_model("aftersales", "ServicePlanTemplateItem")
    kinds = {}
    for position, (code, name, name_en) in enumerate(KINDS):
        kinds[code], _ = TicketKind.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en, "position": position}
        )
    for priority, (response, resolution, warning, business) in POLICIES.items():
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults={"response_minutes": response, "resolution_minutes": resolution,
                      "warning_minutes": warning, "business_hours_only": business},
        )
    ServiceSettings.objects.get_or_create(pk=1)
    template, created = Template.objects.get_or_create(name="标准售后服务 Standard after-sales")
    if created:
        for title, code, days in TEMPLATE_ITEMS:
            TemplateItem.objects.create(template=template, title=title, kind=kinds[code], offset_days=days)


class Migration(migrations.Migration):
    dependencies = [("aftersales", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
