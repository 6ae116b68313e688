"""The demo targets seeder and the Django admin of targets and settings."""

import pytest
from django.urls import reverse

from dashboards import demo
from dashboards.models import DashboardSettings, Target

pytestmark = pytest.mark.django_db


class TestDemo:
    def test_seeds_four_months_per_rep_idempotently(self, org):
        demo.seed(seed=1)
        reps = 3  # rep_a, rep_a2, rep_b
        assert Target.objects.count() == 4 * reps
        before = list(Target.objects.order_by("pk").values_list("pk", "calls"))
        assert demo.seed(seed=2) == "0 targets"
        assert list(Target.objects.order_by("pk").values_list("pk", "calls")) == before


class TestAdmin:
    def test_admin_edits_targets_and_settings(self, org, client_for):
        client = client_for(org.admin)
        demo.seed(seed=1)
        assert client.get(reverse("admin:dashboards_target_changelist")).status_code == 200
        assert client.get(reverse("admin:dashboards_dashboardsettings_add")).status_code == 200
        response = client.post(reverse("admin:dashboards_dashboardsettings_add"), {"commit_probability": 60})
        assert response.status_code == 302
        assert DashboardSettings.load().commit_probability == 60

    def test_manager_has_no_admin(self, org, client_for):
        response = client_for(org.manager_a).get(reverse("admin:dashboards_target_changelist"))
        assert response.status_code in (302, 403)
