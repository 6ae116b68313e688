"""Targets (绩效考核): the manager's bulk grid and the `targets_set` service."""

from datetime import date
from decimal import Decimal

import pytest
from django.http import Http404
from django.urls import reverse

from dashboards.models import Target
from dashboards.services import targets_set

pytestmark = pytest.mark.django_db
MARCH = date(2026, 3, 1)


def grid_post(org, users, **overrides):
    data = {"month": "2026-03"}
    for u in users:
        for m, v in {"signed_revenue": "1000", "collected": "800", "new_customers": "2", "won_deals": "1",
                     "calls": "30", "visits": "5"}.items():
            data[f"u{u.pk}-{m}"] = v
    data.update(overrides)
    return data


class TestTargetsSet:
    def test_manager_sets_team_targets_and_updates(self, org):
        targets_set(user=org.manager_a, month=date(2026, 3, 17), values={org.rep_a.pk: {"calls": 30}})
        targets_set(user=org.manager_a, month=MARCH, values={org.rep_a.pk: {"calls": 40, "visits": 3}})
        target = Target.objects.get(user=org.rep_a)
        assert (target.month, target.calls, target.visits, target.updated_by) == (MARCH, 40, 3, org.manager_a)

    def test_other_team_or_rep_refused_and_nothing_saved(self, org):
        with pytest.raises(Http404):
            targets_set(user=org.manager_a, month=MARCH, values={org.rep_a.pk: {"calls": 1}, org.rep_b.pk: {"calls": 1}})
        with pytest.raises(Http404):
            targets_set(user=org.rep_a, month=MARCH, values={org.rep_a.pk: {"calls": 1}})
        assert not Target.objects.exists()


class TestTargetsGrid:
    def test_grid_lists_team_and_saves(self, org, client_for):
        client = client_for(org.manager_a)
        page = client.get(reverse("dashboards:targets"), {"month": "2026-03"})
        assert page.status_code == 200
        html = page.content.decode()
        assert f'name="u{org.rep_a.pk}-calls"' in html and f'name="u{org.rep_b.pk}-calls"' not in html
        users = [org.manager_a, org.rep_a, org.rep_a2]
        response = client.post(reverse("dashboards:targets"), grid_post(org, users))
        assert response.status_code == 302
        assert Target.objects.filter(month=MARCH).count() == 3
        assert Target.objects.get(user=org.rep_a2).signed_revenue == Decimal("1000")

    def test_invalid_value_saves_nothing(self, org, client_for):
        client = client_for(org.manager_a)
        data = grid_post(org, [org.manager_a, org.rep_a, org.rep_a2], **{f"u{org.rep_a.pk}-calls": "-1"})
        assert client.post(reverse("dashboards:targets"), data).status_code == 200
        assert not Target.objects.exists()

    def test_other_team_404_and_rep_404(self, org, client_for):
        assert client_for(org.manager_a).get(reverse("dashboards:targets"), {"team": org.team_b.pk}).status_code == 404
        assert client_for(org.rep_a).get(reverse("dashboards:targets")).status_code == 404

    def test_posted_field_for_outsider_is_ignored(self, org, client_for):
        """A forged field for team B's rep is not part of the grid: nothing is saved for them."""
        client = client_for(org.manager_a)
        data = grid_post(org, [org.manager_a, org.rep_a, org.rep_a2, org.rep_b])
        client.post(reverse("dashboards:targets"), data)
        assert not Target.objects.filter(user=org.rep_b).exists()

    def test_admin_grid_query_bound(self, org, client_for, django_assert_max_num_queries):
        client = client_for(org.admin)
        with django_assert_max_num_queries(15):
            assert client.get(reverse("dashboards:targets")).status_code == 200
