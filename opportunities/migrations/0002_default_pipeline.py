"""Seed the default pipeline 新业务 / New business (线索 → 需求分析 → 方案制定 → 报价与谈判 → 赢单 / 输单)
and the loss reasons in every database. Idempotent: rows are found by their codes."""

from django.db import migrations


def seed(apps, schema_editor):
    from opportunities.defaults import seed_defaults

    seed_defaults(
        apps.get_model("opportunities", "Pipeline"),
        apps.get_model("opportunities", "Stage"),
        apps.get_model("opportunities", "StageChecklistItem"),
        apps.get_model("opportunities", "LossReason"),
    )


class Migration(migrations.Migration):
    dependencies = [("opportunities", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
