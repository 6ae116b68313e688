# Inserted activities are counted per statement (a transition table): an import's chunk of thousands is
# one grouped upsert per (owner, customer owner) instead of one per row. Updates and deletes stay per row.
from django.db import migrations

FORWARD_SQL = """
CREATE OR REPLACE FUNCTION activities_scope_total_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO activities_activityscopetotal AS t (owner_id, customer_owner_id, activities)
    SELECT n.owner_id, c.owner_id, count(*) FROM new_rows n JOIN leads_customer c ON c.id = n.customer_id
    GROUP BY 1, 2
    ON CONFLICT (owner_id, customer_owner_id) DO UPDATE SET activities = t.activities + EXCLUDED.activities;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS activities_scope_total_trg ON activities_activity;
CREATE TRIGGER activities_scope_total_trg AFTER UPDATE OR DELETE ON activities_activity
    FOR EACH ROW EXECUTE FUNCTION activities_scope_total_roll();
DROP TRIGGER IF EXISTS activities_scope_total_ins ON activities_activity;
CREATE TRIGGER activities_scope_total_ins AFTER INSERT ON activities_activity
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activities_scope_total_inserted();
"""

BACKWARD_SQL = """
DROP TRIGGER IF EXISTS activities_scope_total_ins ON activities_activity;
DROP FUNCTION IF EXISTS activities_scope_total_inserted();
DROP TRIGGER IF EXISTS activities_scope_total_trg ON activities_activity;
CREATE TRIGGER activities_scope_total_trg AFTER INSERT OR UPDATE OR DELETE ON activities_activity
    FOR EACH ROW EXECUTE FUNCTION activities_scope_total_roll();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD_SQL)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ("activities", "0006_scope_totals"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
