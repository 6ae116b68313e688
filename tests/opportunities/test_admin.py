"""Stage edits in Django admin: add, rename, reorder, deactivate with reassignment; won/lost protected."""

from __future__ import annotations

import pytest
from django.urls import reverse

from opportunities.models import Opportunity, Pipeline, Stage, StageChange, StageKind
from tests.opportunities.factories import make_opportunity, open_stages

pytestmark = pytest.mark.django_db


def _stage_post(stage: Stage, **changes) -> dict:
    data = {
        "name_zh": stage.name_zh, "name_en": stage.name_en, "code": stage.code, "order": stage.order,
        "default_probability": stage.default_probability, "stall_days": stage.stall_days or "",
        "exit_fields": stage.exit_fields, "playbook_zh": stage.playbook_zh, "playbook_en": stage.playbook_en,
        "checklist_items-TOTAL_FORMS": "0", "checklist_items-INITIAL_FORMS": "0",
        "checklist_items-MIN_NUM_FORMS": "0", "checklist_items-MAX_NUM_FORMS": "1000",
    }
    if stage.is_active:
        data["is_active"] = "on"
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _pipeline_post(pipeline: Pipeline, stages: list[Stage], extra: list[dict] = (), changes: dict | None = None) -> dict:
    data = {
        "name_zh": pipeline.name_zh, "name_en": pipeline.name_en, "code": pipeline.code, "order": pipeline.order,
        "is_active": "on", "stages-TOTAL_FORMS": str(len(stages) + len(extra)),
        "stages-INITIAL_FORMS": str(len(stages)), "stages-MIN_NUM_FORMS": "0", "stages-MAX_NUM_FORMS": "1000",
    }
    if pipeline.is_default:
        data["is_default"] = "on"
    for index, stage in enumerate(stages):
        prefix = f"stages-{index}-"
        row = {"id": stage.pk, "pipeline": pipeline.pk, "order": stage.order, "name_zh": stage.name_zh,
               "name_en": stage.name_en, "default_probability": stage.default_probability,
               "stall_days": stage.stall_days or ""}
        if stage.is_active:
            row["is_active"] = "on"
        row.update((changes or {}).get(stage.pk, {}))
        data.update({prefix + key: value for key, value in row.items() if value is not None})
    for offset, row in enumerate(extra):
        prefix = f"stages-{len(stages) + offset}-"
        data.update({prefix + key: value for key, value in {"pipeline": pipeline.pk, **row}.items()})
    return data


class TestStageAdmin:
    def test_add_rename_reorder_in_the_pipeline_page(self, org, pipeline, client_for):
        """Adding an open stage, renaming and reordering others: no duplicates, nothing orphaned."""
        client = client_for(org.admin)
        stages = list(pipeline.stages.order_by("order", "id"))
        before = Stage.objects.count()
        lead, needs = open_stages()[:2]
        data = _pipeline_post(
            pipeline, stages,
            extra=[{"order": "35", "name_zh": "商务评审", "name_en": "Business review", "default_probability": "60",
                    "stall_days": "10", "is_active": "on"}],
            changes={lead.pk: {"name_en": "Lead (inbound)"}, needs.pk: {"order": "5"}},
        )
        response = client.post(reverse("admin:opportunities_pipeline_change", args=[pipeline.pk]), data)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert Stage.objects.count() == before + 1
        names = [s.name_en for s in open_stages()]
        assert names == ["Needs analysis", "Lead (inbound)", "Proposal", "Business review", "Quote & negotiation"]
        assert pipeline.stages.filter(kind=StageKind.WON).count() == 1
        assert pipeline.stages.filter(kind=StageKind.LOST).count() == 1

    def test_deactivate_with_deals_requires_a_target(self, org, pipeline, client_for):
        client = client_for(org.admin)
        deal = make_opportunity(org.rep_a)
        lead, needs = open_stages()[:2]
        url = reverse("admin:opportunities_stage_change", args=[lead.pk])
        response = client.post(url, _stage_post(lead, is_active=None))
        assert response.status_code == 200 and "move_opportunities_to" in response.content.decode()
        assert Stage.objects.get(pk=lead.pk).is_active
        response = client.post(url, _stage_post(lead, is_active=None, move_opportunities_to=needs.pk))
        assert response.status_code == 302
        assert not Stage.objects.get(pk=lead.pk).is_active
        assert Opportunity.objects.get(pk=deal.pk).stage_id == needs.pk
        change = StageChange.objects.get(opportunity=deal, action="reassign")
        assert (change.from_stage_id, change.to_stage_id, change.changed_by) == (lead.pk, needs.pk, org.admin)

    def test_deactivate_in_the_pipeline_inline(self, org, pipeline, client_for):
        client = client_for(org.admin)
        deal = make_opportunity(org.rep_a)
        stages = list(pipeline.stages.order_by("order", "id"))
        lead, needs = open_stages()[:2]
        url = reverse("admin:opportunities_pipeline_change", args=[pipeline.pk])
        refused = client.post(url, _pipeline_post(pipeline, stages, changes={lead.pk: {"is_active": None}}))
        assert refused.status_code == 200 and Stage.objects.get(pk=lead.pk).is_active
        done = client.post(url, _pipeline_post(pipeline, stages, changes={
            lead.pk: {"is_active": None, "move_opportunities_to": needs.pk}}))
        assert done.status_code == 302
        assert not Stage.objects.get(pk=lead.pk).is_active
        assert Opportunity.objects.get(pk=deal.pk).stage_id == needs.pk

    def test_empty_stage_deactivates_without_a_target(self, org, pipeline, client_for):
        proposal = open_stages()[2]
        response = client_for(org.admin).post(reverse("admin:opportunities_stage_change", args=[proposal.pk]),
                                              _stage_post(proposal, is_active=None))
        assert response.status_code == 302 and not Stage.objects.get(pk=proposal.pk).is_active

    def test_won_and_lost_cannot_be_deleted(self, org, pipeline, client_for):
        client = client_for(org.admin)
        for kind in (StageKind.WON, StageKind.LOST):
            stage = pipeline.stages.get(kind=kind)
            assert client.get(reverse("admin:opportunities_stage_delete", args=[stage.pk])).status_code == 403
            assert client.post(reverse("admin:opportunities_stage_delete", args=[stage.pk]), {"post": "yes"}).status_code == 403
            assert Stage.objects.filter(pk=stage.pk).exists()

    def test_stage_with_history_cannot_be_deleted(self, org, pipeline, client_for):
        lead = open_stages()[0]
        make_opportunity(org.rep_a)
        client_for(org.admin).post(reverse("admin:opportunities_stage_delete", args=[lead.pk]), {"post": "yes"})
        assert Stage.objects.filter(pk=lead.pk).exists()

    def test_exit_fields_from_the_list(self, org, pipeline, client_for):
        lead = open_stages()[0]
        client = client_for(org.admin)
        url = reverse("admin:opportunities_stage_change", args=[lead.pk])
        assert client.post(url, _stage_post(lead, exit_fields=["budget", "not_a_field"])).status_code == 200
        assert client.post(url, _stage_post(lead, exit_fields=["budget", "next_step"])).status_code == 302
        assert Stage.objects.get(pk=lead.pk).exit_fields == ["budget", "next_step"]

    def test_new_pipeline_gets_won_and_lost(self, org, pipeline, client_for):
        client = client_for(org.admin)
        response = client.post(reverse("admin:opportunities_pipeline_add"), {
            "name_zh": "续约", "name_en": "Renewal", "code": "renewal", "order": "1", "is_active": "on",
            "stages-TOTAL_FORMS": "1", "stages-INITIAL_FORMS": "0", "stages-MIN_NUM_FORMS": "0",
            "stages-MAX_NUM_FORMS": "1000", "stages-0-order": "10", "stages-0-name_zh": "续约洽谈",
            "stages-0-name_en": "Renewal talk", "stages-0-default_probability": "50", "stages-0-is_active": "on",
        })
        assert response.status_code == 302
        renewal = Pipeline.objects.get(code="renewal")
        assert sorted(renewal.stages.values_list("kind", flat=True)) == ["lost", "open", "won"]

    def test_opportunities_are_read_only_and_scoped_in_admin(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a)
        client = client_for(org.admin)
        assert client.get(reverse("admin:opportunities_opportunity_changelist")).status_code == 200
        assert client.get(reverse("admin:opportunities_opportunity_change", args=[deal.pk])).status_code == 200
        assert client.get(reverse("admin:opportunities_opportunity_add")).status_code == 403
