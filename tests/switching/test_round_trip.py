"""Round trip: export → an empty CRM (the business tables wiped; users, teams, pipeline, kinds and
channels kept, as in a fresh instance set up with the same users) → import the zip's four files through
the import's services and its Celery task → the same records, field by field on every exported column,
and the same dashboard figures; a second export of the new data writes the same four files again.

What the four files do not carry (see docs/switching.md, "Export everything"): the intermediate stages a
deal went through (the import writes "created in the first stage, then moved to the current one") and so
the funnel's intermediate steps and the time in stage; contracts, payments and tickets (exported, not
imported). The figures below are every dashboard figure the imported rows do carry.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from activities.models import Activity
from aftersales.models import Ticket
from contracts.models import Contract, ContractLine, PaymentInstalment, PaymentReceipt
from dashboards import selectors as s
from leads.models import Contact, Customer
from opportunities.models import Opportunity, StageChange, StageKind
from switching import importing
from switching.export_tasks import export_run
from switching.models import Export, ExportStatus, ImportStatus
from switching.tasks import import_followup, import_run
from tests.switching.export_data import build_small_crm

IMPORT_ORDER = [("customers", "customers.csv"), ("contacts", "contacts.csv"),
                ("opportunities", "opportunities.csv"), ("activities", "activities.csv")]
SPRING = s.Period(date(2026, 3, 1), date(2026, 5, 1))
MARCH = s.Period(date(2026, 3, 1), date(2026, 4, 1))
APRIL = s.Period(date(2026, 4, 1), date(2026, 5, 1))
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=timezone.get_current_timezone())


# --- the records, as the exported columns describe them ------------------------------------------------
def key(external_id: str | None, pk: int | None) -> str | None:
    """The id a record travels under: its external id, else the generated crm-<pk>."""
    if pk is None:
        return None
    return external_id or f"crm-{pk}"


def customers() -> dict[str, dict]:
    result = {}
    for c in Customer.objects.select_related("source", "owner").prefetch_related("tags"):
        result[key(c.external_id, c.pk)] = {
            "name": c.name, "customer_type": c.customer_type, "status": c.status, "tier": c.tier,
            "industry": c.industry, "region": c.region, "address": c.address, "size": c.size, "website": c.website,
            "phone": c.phone, "email": c.email, "source": c.source.code if c.source else None,
            "tags": sorted(t.name for t in c.tags.all()), "needs": c.needs, "requirements": c.requirements,
            "owner": c.owner.username if c.owner else None, "created_at": c.created_at,
        }
    return result


def contacts() -> dict[str, dict]:
    return {
        key(c.external_id, c.pk): {
            "customer": key(c.customer.external_id, c.customer_id), "name": c.name, "title": c.title,
            "phone": c.phone, "email": c.email, "wechat": c.wechat, "is_decision_maker": c.is_decision_maker,
            "notes": c.notes,
        }
        for c in Contact.objects.select_related("customer")
    }


def opportunities() -> dict[str, dict]:
    result = {}
    for o in Opportunity.objects.select_related("customer", "stage", "owner", "contact"):
        closed = o.stage.kind != StageKind.OPEN
        result[key(o.external_id, o.pk)] = {
            "customer": key(o.customer.external_id, o.customer_id), "title": o.title, "stage": o.stage_id,
            "pipeline": o.pipeline_id, "amount": o.amount, "currency": o.currency, "created_at": o.created_at,
            "close": o.closed_at if closed else o.expected_close_date, "closed_at": o.closed_at,
            "outcome": o.stage.kind, "owner": o.owner.username, "source": o.source, "probability": o.probability,
            "contact": key(o.contact.external_id, o.contact_id) if o.contact_id else None,
            "loss_reason": o.loss_reason_id, "loss_note": o.loss_note,
        }
    return result


def activities() -> dict[str, dict]:
    return {
        key(a.external_id, a.pk): {
            "customer": key(a.customer.external_id, a.customer_id),
            "opportunity": key(a.opportunity.external_id, a.opportunity_id) if a.opportunity_id else None,
            "contact": key(a.contact.external_id, a.contact_id) if a.contact_id else None,
            "kind": a.kind.code, "status": a.status, "done_at": a.done_at, "planned_at": a.planned_at,
            "subject": a.subject, "outcome": a.outcome, "owner": a.owner.username,
            "duration_minutes": a.duration_minutes, "notes": a.notes, "next_step": a.next_step,
        }
        for a in Activity.objects.select_related("customer", "opportunity", "contact", "kind", "owner")
    }


# --- the dashboard figures the four files carry --------------------------------------------------------
def _funnel(f: s.Funnel, stage_ids: set[int]) -> tuple:
    return (f.key, f.created, f.won, f.lost, f.win_rate,
            tuple((step.stage.pk, step.reached) for step in f.steps if step.stage.pk in stage_ids))


def figures(user) -> dict:
    scope = s.dashboard_scope(user=user)
    pipeline = s.default_pipeline()
    stages = s._stages(pipeline)
    # the first open stage (every deal is created there) and the won stage: the funnel steps the import keeps
    carried = {next(st.pk for st in stages if st.is_open), next(st.pk for st in stages if st.is_won)}
    actuals = {
        owner: {m: v for m, v in values.items() if m not in ("signed_revenue", "collected")}  # contracts: not imported
        for owner, values in s.rep_actuals(scope=scope, period=SPRING).items()
    }
    return {
        "closed": [s.closed_deals(scope=scope, period=p) for p in (SPRING, MARCH, APRIL)],
        "cycle": [s.sales_cycle(scope=scope, period=p) for p in (SPRING, MARCH, APRIL)],
        "cycle_trend": s.sales_cycle_trend(scope=scope, until=date(2026, 4, 30), months=3),
        "forecast": [s.forecast(scope=scope, period=p) for p in (SPRING, APRIL, s.Period(date(2026, 6, 1), date(2026, 7, 1)))],
        "pipeline": [(r.stage.pk, r.count, r.amount, r.weighted) for r in s.pipeline_by_stage(scope=scope, pipeline=pipeline)],
        "funnel": _funnel(s.conversion_funnel(scope=scope, period=SPRING, pipeline=pipeline), carried),
        "by_source": [_funnel(f, carried) for f in s.conversion_by_source(scope=scope, period=SPRING, pipeline=pipeline)],
        "by_rep": [_funnel(f, carried) for f in s.conversion_by_rep(scope=scope, period=SPRING, pipeline=pipeline)],
        "activities": [
            (r["owner_id"], r["kind__code"], r["planned"], r["done"])
            for r in s.activity_stats(scope=scope, period=SPRING)
        ],
        "activities_april": [
            (r["owner_id"], r["kind__code"], r["planned"], r["done"])
            for r in s.activity_stats(scope=scope, period=APRIL)
        ],
        "overdue": s.overdue_follow_ups(scope=scope, now=NOW),
        "actuals": actuals,
        "tiers": s.tier_distribution(scope=scope),
    }


# --- the steps -----------------------------------------------------------------------------------------
def export_zip(user) -> zipfile.ZipFile:
    export = Export.objects.create(requested_by=user)
    assert export_run.apply(args=[export.pk]).get()["status"] == ExportStatus.DONE
    export.refresh_from_db()
    with export.file.open("rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


def wipe_business_tables() -> None:
    """What a fresh instance lacks: every business row (users, teams, pipeline, kinds, channels stay)."""
    PaymentReceipt.objects.all().delete()
    PaymentInstalment.objects.all().delete()
    ContractLine.objects.all().delete()
    Ticket.objects.all().delete()
    Contract.objects.all().delete()
    Activity.objects.all().delete()
    StageChange.objects.all().delete()
    Opportunity.objects.all().delete()
    Contact.objects.all().delete()
    Customer.objects.all().delete()


def import_file(user, kind: str, name: str, data: bytes) -> None:
    """Through the import's services and its Celery task, as the wizard does: upload, (nothing to map),
    preview, confirm, run, follow-up."""
    job = importing.import_upload(by=user, kind=kind, file_name=name, data=io.BytesIO(data))
    job = importing.import_set_mapping(job=job, by=user)
    assert job.status == ImportStatus.PREVIEWED, (importing.mapping_problems(job), importing.unmapped_values(job))
    assert (job.error_count, job.unknown_ref_count) == (0, 0), job.errors
    importing.import_confirm(job=job, by=user)
    import_run.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created_rows == job.total_rows, (job.status, job.failure, job.errors)
    import_followup.apply(args=[job.pk]).get()


@pytest.mark.django_db
class TestRoundTrip:
    def test_export_then_import_gives_the_same_records_and_figures(self, org):
        build_small_crm(org)
        before = {"customers": customers(), "contacts": contacts(), "opportunities": opportunities(),
                  "activities": activities()}
        figures_before = figures(org.admin)
        # the fixture is not trivial: every figure has something to compare
        assert figures_before["closed"][0] == {"won": 2, "lost": 1, "win_rate": 2 / 3}
        assert figures_before["cycle"][0]["count"] == 2 and figures_before["forecast"][1]["won"] == Decimal("120000.50")
        assert len(figures_before["by_source"]) == 3 and len(figures_before["activities"]) >= 4
        assert figures_before["overdue"] and figures_before["actuals"]

        archive = export_zip(org.admin)
        files = {name: archive.read(name) for _kind, name in IMPORT_ORDER}
        wipe_business_tables()
        assert not Customer.objects.exists() and figures(org.admin) != figures_before

        for kind, name in IMPORT_ORDER:
            import_file(org.admin, kind, name, files[name])

        after = {"customers": customers(), "contacts": contacts(), "opportunities": opportunities(),
                 "activities": activities()}
        for kind in before:
            assert set(after[kind]) == set(before[kind]), kind
            for record_key, values in before[kind].items():
                assert after[kind][record_key] == values, (kind, record_key)
        assert figures(org.admin) == figures_before

        again = export_zip(org.admin)
        for _kind, name in IMPORT_ORDER:
            assert again.read(name) == files[name], name

    def test_formula_text_comes_back_exactly(self, org):
        """`=SUM(A1)`, `-5% discount` and an already quoted `'=…` survive export and import unchanged."""
        crm = build_small_crm(org)
        archive = export_zip(org.admin)
        files = {name: archive.read(name) for _kind, name in IMPORT_ORDER}
        assert b"'=SUM(A1)" in files["customers.csv"] and b"'-5% discount" in files["customers.csv"]
        wipe_business_tables()
        for kind, name in IMPORT_ORDER:
            import_file(org.admin, kind, name, files[name])
        c2 = Customer.objects.get(external_id=f"crm-{crm.customers['c2'].pk}")
        assert (c2.name, c2.needs, c2.requirements) == ("=SUM(A1)", "-5% discount", "+1 onsite engineer")
        assert Contact.objects.get(customer=c2).notes == "'=quoted already"
        lost = Opportunity.objects.get(external_id=f"crm-{crm.deals['lost'].pk}")
        assert lost.title == '=HYPERLINK("http://evil/")' and lost.loss_note == "-价格太高 price too high"
        assert Activity.objects.get(external_id="OLD-A1").next_step == "=demo next week"


@pytest.mark.django_db
def test_a_deal_of_another_pipeline_comes_back_in_that_pipeline(org):
    """Every pipeline has a stage named 赢单: the export names the other pipelines' stages
    `<pipeline code>/<stage>`, and the import puts the deal back into the right pipeline."""
    from tests.switching.test_export import second_pipeline_deal

    deal = second_pipeline_deal(org)
    before = opportunities()
    archive = export_zip(org.admin)
    files = {name: archive.read(name) for _kind, name in IMPORT_ORDER}
    wipe_business_tables()
    for kind, name in (IMPORT_ORDER[0], IMPORT_ORDER[2]):  # no contacts, no activities
        import_file(org.admin, kind, name, files[name])
    after = opportunities()
    assert after == before
    assert Opportunity.objects.get(external_id="R-D1").pipeline_id == deal.pipeline_id
