"""Seed the admin-editable lists: source channels, follow-up cadence per tier, tier rules, settings."""

import secrets

from django.db import migrations

CHANNELS = [
    ("website", "Website registration"),
    ("social", "Social media"),
    ("event", "Offline event"),
    ("referral", "Referral"),
    ("cold_call", "Cold call"),
    ("advertising", "Advertising"),
    ("other", "Other"),
]
CADENCE = {"A": 7, "B": 14, "C": 30}
RULES = [
    ("A", "won_revenue_12m", 500000),
    ("A", "open_weighted_pipeline", 1000000),
    ("B", "won_revenue_12m", 100000),
    ("B", "open_weighted_pipeline", 200000),
    ("B", "activities_90d", 5),
]


def seed(apps, schema_editor):
    SourceChannel = apps.get_model("leads", "SourceChannel")
    FollowUpCadence = apps.get_model("leads", "FollowUpCadence")
    TierRule = apps.get_model("leads", "TierRule")
    LeadSettings = apps.get_model("leads", "LeadSettings")
    for order, (code, name) in enumerate(CHANNELS):
        SourceChannel.objects.get_or_create(
            code=code, defaults={"name": name, "order": order, "web_token": secrets.token_urlsafe(24)}
        )
    for tier, days in CADENCE.items():
        FollowUpCadence.objects.get_or_create(tier=tier, defaults={"days": days})
    if not TierRule.objects.exists():
        for tier, metric, threshold in RULES:
            TierRule.objects.create(tier=tier, metric=metric, threshold=threshold)
    LeadSettings.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("leads", "0002_customer_profile")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
