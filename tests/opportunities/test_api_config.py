"""/api/v1/pipelines/ and /api/v1/stages/ written by administrators through opportunities.services, with
the rules of Django admin: won and lost stages always exist and stay, a stage deals are or were in is
deactivated (its deals moved) rather than deleted, the default pipeline stays."""

import pytest
from rest_framework.test import APIClient

from opportunities.models import Opportunity, Pipeline, Stage, StageChange, StageKind
from tests.opportunities.factories import make_opportunity, open_stages, stage

PIPELINES = "/api/v1/pipelines/"
STAGES = "/api/v1/stages/"


@pytest.fixture
def admin_api(org):
    client = APIClient()
    client.force_authenticate(org.admin)
    client.credentials(HTTP_ACCEPT_LANGUAGE="en")
    return client


@pytest.mark.django_db
class TestPipelineWrites:
    def test_create_gets_won_and_lost_stages_then_open_stages_in_order(self, admin_api, pipeline):
        response = admin_api.post(PIPELINES, {"code": "renewals", "name_zh": "续约", "name_en": "Renewals"},
                                  format="json")
        assert response.status_code == 201, response.json()
        created = Pipeline.objects.get(pk=response.json()["id"])
        assert sorted(created.stages.values_list("kind", flat=True)) == ["lost", "won"]
        first = admin_api.post(STAGES, {"pipeline": created.pk, "name_zh": "报价", "exit_fields": ["amount"]},
                               format="json")
        second = admin_api.post(STAGES, {"pipeline": created.pk, "name_zh": "谈判"}, format="json")
        assert first.status_code == 201 and second.status_code == 201, (first.json(), second.json())
        assert (first.json()["kind"], first.json()["order"], second.json()["order"]) == ("open", 1, 2)
        assert first.json()["exit_fields"] == ["amount"]
        assert pipeline.is_default and not created.is_default

    def test_idempotency_key_creates_once(self, admin_api, pipeline):
        first = admin_api.post(PIPELINES, {"code": "once", "name_zh": "一次"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        again = admin_api.post(PIPELINES, {"code": "once", "name_zh": "一次"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        assert first.status_code == again.status_code == 201
        assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
        assert Pipeline.objects.filter(code="once").count() == 1

    def test_one_default_pipeline_always(self, admin_api, pipeline):
        other = admin_api.post(PIPELINES, {"code": "other", "name_zh": "其他"}, format="json").json()
        made = admin_api.patch(f"{PIPELINES}{other['id']}/", {"is_default": True}, format="json")
        assert made.status_code == 200 and made.json()["is_default"] is True, made.json()
        pipeline.refresh_from_db()
        assert not pipeline.is_default
        refused = admin_api.patch(f"{PIPELINES}{other['id']}/", {"is_default": False}, format="json")
        assert refused.status_code == 400
        assert refused.json()["errors"]["is_default"] == ["Make another pipeline the default instead."]
        assert Pipeline.objects.filter(is_default=True).count() == 1

    def test_delete_only_an_unused_pipeline_that_is_not_the_default(self, admin_api, org, pipeline):
        make_opportunity(org.rep_a)
        refused = admin_api.delete(f"{PIPELINES}{pipeline.pk}/")
        assert refused.status_code == 409 and refused.json()["code"] == "default_pipeline"
        used = admin_api.post(PIPELINES, {"code": "used", "name_zh": "已用"}, format="json").json()
        unused = admin_api.post(PIPELINES, {"code": "unused", "name_zh": "未用"}, format="json").json()
        admin_api.post(STAGES, {"pipeline": used["id"], "name_zh": "初步"}, format="json")
        make_opportunity(org.rep_a, pipeline=Pipeline.objects.get(pk=used["id"]))
        in_use = admin_api.delete(f"{PIPELINES}{used['id']}/")
        assert in_use.status_code == 409 and in_use.json()["code"] == "pipeline_in_use"
        assert admin_api.delete(f"{PIPELINES}{unused['id']}/").status_code == 204
        assert not Pipeline.objects.filter(pk=unused["id"]).exists()
        assert not Stage.objects.filter(pipeline_id=unused["id"]).exists()
        assert Pipeline.objects.filter(pk__in=[pipeline.pk, used["id"]]).count() == 2


@pytest.mark.django_db
class TestStageWrites:
    def test_a_stage_deals_are_or_were_in_is_not_deleted_nor_are_won_and_lost(self, admin_api, org, pipeline):
        first = open_stages()[0]
        make_opportunity(org.rep_a)
        in_use = admin_api.delete(f"{STAGES}{first.pk}/")
        assert in_use.status_code == 409
        assert in_use.json()["code"] == "stage_in_use"
        assert "deactivate it instead" in in_use.json()["detail"]
        closed = admin_api.delete(f"{STAGES}{stage(StageKind.WON).pk}/")
        assert closed.status_code == 409 and closed.json()["code"] == "closed_stage"
        new = admin_api.post(STAGES, {"pipeline": pipeline.pk, "name_zh": "新阶段"}, format="json").json()
        assert admin_api.delete(f"{STAGES}{new['id']}/").status_code == 204
        assert Stage.objects.filter(pk__in=[first.pk, stage(StageKind.WON).pk]).count() == 2

    def test_patch_edits_and_refuses_read_only_fields(self, admin_api, pipeline):
        first = open_stages()[0]
        response = admin_api.patch(f"{STAGES}{first.pk}/", {"name_en": "Lead in", "stall_days": 9}, format="json")
        assert response.status_code == 200, response.json()
        first.refresh_from_db()
        assert (first.name_en, first.stall_days) == ("Lead in", 9)
        refused = admin_api.patch(f"{STAGES}{first.pk}/", {"kind": "won", "pipeline": 1}, format="json")
        assert refused.status_code == 400
        assert set(refused.json()["errors"]) == {"kind", "pipeline"}
        bad = admin_api.patch(f"{STAGES}{first.pk}/", {"exit_fields": ["shoe_size"]}, format="json")
        assert bad.status_code == 400 and "exit_fields" in bad.json()["errors"]

    def test_deactivating_a_stage_with_deals_moves_them_where_the_admin_says(self, admin_api, org, pipeline):
        first, second = open_stages()[:2]
        deal = make_opportunity(org.rep_a)
        refused = admin_api.patch(f"{STAGES}{first.pk}/", {"is_active": False}, format="json")
        assert refused.status_code == 400
        assert "move_opportunities_to" in refused.json()["errors"]
        first.refresh_from_db()
        assert first.is_active
        both = admin_api.patch(f"{STAGES}{first.pk}/", {"name_en": "Renamed", "is_active": False}, format="json")
        assert both.status_code == 400
        first.refresh_from_db()
        assert first.name_en != "Renamed" and first.is_active  # nothing of a refused PATCH is kept
        moved = admin_api.patch(f"{STAGES}{first.pk}/", {"is_active": False, "move_opportunities_to": second.pk},
                                format="json")
        assert moved.status_code == 200, moved.json()
        assert moved.json()["is_active"] is False
        deal.refresh_from_db()
        assert deal.stage_id == second.pk
        assert StageChange.objects.filter(opportunity=deal, action="reassign", to_stage=second).exists()
        back = admin_api.patch(f"{STAGES}{first.pk}/", {"is_active": True}, format="json")
        assert back.status_code == 200 and back.json()["is_active"] is True

    def test_reorder_all_open_stages_once(self, admin_api, pipeline):
        stages = open_stages()
        reversed_ids = [s.pk for s in reversed(stages)]
        partial = admin_api.post(f"{STAGES}reorder/", {"pipeline": pipeline.pk, "stages": reversed_ids[1:]},
                                 format="json")
        assert partial.status_code == 400 and "stages" in partial.json()["errors"]
        assert [s.pk for s in open_stages()] == [s.pk for s in stages]
        response = admin_api.post(f"{STAGES}reorder/", {"pipeline": pipeline.pk, "stages": reversed_ids},
                                  format="json")
        assert response.status_code == 200, response.json()
        assert [s.pk for s in open_stages()] == reversed_ids
        top = max(s.order for s in open_stages())
        assert stage(StageKind.WON).order > top and stage(StageKind.LOST).order > top
        assert not Opportunity.objects.exists()

    def test_refusals_follow_accept_language(self, admin_api, org, pipeline):
        make_opportunity(org.rep_a)
        admin_api.credentials(HTTP_ACCEPT_LANGUAGE="zh-hans")
        refused = admin_api.delete(f"{STAGES}{open_stages()[0].pk}/")
        assert refused.json() == {"code": "stage_in_use", "detail": "该阶段中现有或曾有商机：请停用而不是删除。"}
        rep = APIClient()
        rep.force_authenticate(org.rep_a)
        forbidden = rep.post(PIPELINES, {"code": "x", "name_zh": "x"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert forbidden.status_code == 403
        assert forbidden.json() == {"code": "permission_denied", "detail": "只有管理员可以修改销售流程和阶段。"}
