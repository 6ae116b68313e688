"""The dashboard pages and CSV exports: scope (a manager never sees another team's numbers, not through
filters, not through CSV), a rep's own dashboard, and a bounded number of queries."""

import csv
import io
import uuid
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from dashboards.services import targets_set
from tests.dashboards.factories import DataSet

pytestmark = pytest.mark.django_db
MARCH = {"period": "custom", "from": "2026-03-01", "to": "2026-03-31"}


def csv_rows(response):
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


class TestTeamDashboard:
    def test_manager_sees_team_figures_only(self, data, client_for):
        """manager_a's page shows team A's deals (revenue 1000) and never team B's 9999 contract."""
        response = client_for(data.org.manager_a).get(reverse("dashboards:team"), MARCH)
        assert response.status_code == 200
        html = response.content.decode()
        assert "rep_b" not in html and "9999" not in html
        assert 'data-chart="revenue"' in html and 'id="chart-revenue"' in html
        revenue = next(sec for sec in response.context["sections"] if sec.key == "revenue")
        assert revenue.rows[-1][1:] == [1000, 800]

    def test_other_team_or_rep_filter_is_404(self, data, client_for):
        client = client_for(data.org.manager_a)
        assert client.get(reverse("dashboards:team"), {**MARCH, "team": data.org.team_b.pk}).status_code == 404
        assert client.get(reverse("dashboards:team"), {**MARCH, "rep": data.org.rep_b.pk}).status_code == 404
        url = reverse("dashboards:export", args=["revenue"])
        assert client.get(url, {**MARCH, "team": data.org.team_b.pk}).status_code == 404
        assert client.get(url, {**MARCH, "rep": data.org.rep_b.pk}).status_code == 404

    def test_admin_picks_team_b(self, data, client_for):
        response = client_for(data.org.admin).get(reverse("dashboards:team"), {**MARCH, "team": data.org.team_b.pk})
        revenue = next(sec for sec in response.context["sections"] if sec.key == "revenue")
        assert revenue.rows[-1][1:] == [9999, 9999]

    def test_rep_sees_only_themselves(self, data, client_for):
        """A rep on the team page gets their own numbers; a rep filter for someone else is ignored."""
        response = client_for(data.org.rep_a2).get(reverse("dashboards:team"), {**MARCH, "rep": data.org.rep_a.pk})
        revenue = next(sec for sec in response.context["sections"] if sec.key == "revenue")
        assert revenue.rows[-1][1:] == [0, 500]

    def test_query_count_is_bounded(self, data, client_for, django_assert_max_num_queries):
        """A fixed number of queries, the same with twice the data."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = client_for(data.org.manager_a)
        with django_assert_max_num_queries(45):
            assert client.get(reverse("dashboards:team"), MARCH).status_code == 200
        with CaptureQueriesContext(connection) as before:
            client.get(reverse("dashboards:team"), MARCH)
        DataSet(data.org)  # a second copy of every deal, activity and contract
        with CaptureQueriesContext(connection) as after:
            client.get(reverse("dashboards:team"), MARCH)
        assert len(after) == len(before)

    def test_empty_period_renders(self, data, client_for):
        response = client_for(data.org.manager_a).get(
            reverse("dashboards:team"), {"period": "custom", "from": "2025-06-01", "to": "2025-06-30"})
        assert response.status_code == 200

    def test_anonymous_redirected(self, client, org):
        assert client.get(reverse("dashboards:team")).status_code == 302


class TestMyDashboard:
    def test_own_figures(self, data, client_for):
        response = client_for(data.org.rep_a).get(reverse("dashboards:mine"), MARCH)
        targets = next(sec for sec in response.context["sections"] if sec.key == "targets")
        assert [row[0] for row in targets.rows][:1] == [data.org.rep_a.display_name]


class TestExport:
    def test_every_section_exports_scoped(self, data, client_for):
        """Every table has a CSV; team A's never contains team B's rep or amounts."""
        client = client_for(data.org.manager_a)
        response = client.get(reverse("dashboards:team"), MARCH)
        keys = [sec.key for sec in response.context["sections"]]
        assert len(keys) >= 15
        for key in keys:
            export = client.get(reverse("dashboards:export", args=[key]), MARCH)
            assert export.status_code == 200, key
            text = "\n".join(",".join(r) for r in csv_rows(export))
            assert "rep_b" not in text and "9999" not in text, key

    def test_revenue_csv_values(self, data, client_for):
        rows = csv_rows(client_for(data.org.manager_a).get(reverse("dashboards:export", args=["revenue"]), MARCH))
        assert rows[-1] == ["2026-03", "1000.00", "800.00"]

    def test_unknown_section_404(self, data, client_for):
        assert client_for(data.org.manager_a).get(reverse("dashboards:export", args=["nope"])).status_code == 404




class TestCachedFigures:
    """With DASHBOARD_CACHE_SECONDS set (production: 300), the sections are computed once per user,
    filters, period and language, and the page says when they were computed."""

    @pytest.fixture(autouse=True)
    def cache_on(self, settings):
        """The real Redis cache, under a key prefix of this test's own (entries of an earlier run with the
        same primary keys must not answer)."""
        settings.DASHBOARD_CACHE_SECONDS = 300
        settings.CACHES = {"default": {**settings.CACHES["default"],
                                       "KEY_PREFIX": f"{settings.CACHES['default'].get('KEY_PREFIX', '')}-{uuid.uuid4().hex}"}}

    def test_reload_is_served_from_the_cache(self, data, client_for, django_assert_max_num_queries):
        """A reload runs a handful of queries (session, user, filters) instead of ~45 and shows the same
        figures, even after new deals, until the entry expires; the page names the computation time."""
        client = client_for(data.org.manager_a)
        first = client.get(reverse("dashboards:team"), MARCH)
        DataSet(data.org)  # twice the data
        with django_assert_max_num_queries(12):
            again = client.get(reverse("dashboards:team"), MARCH)
        revenue = next(sec for sec in again.context["sections"] if sec.key == "revenue")
        assert revenue.rows == next(sec for sec in first.context["sections"] if sec.key == "revenue").rows
        assert 'id="dashboard-computed-at"' in again.content.decode()
        assert again.context["computed_at"] == first.context["computed_at"]

    def test_entries_never_cross_users_filters_or_languages(self, data, client_for):
        """Another manager, the admin with or without a team filter, another language: each its own
        figures (manager_b never gets manager_a's, the admin's team B never gets the admin's all)."""
        def revenue(user, language="zh-hans", **extra):
            response = client_for(user).get(reverse("dashboards:team"), {**MARCH, **extra},
                                             HTTP_ACCEPT_LANGUAGE=language)
            return next(sec for sec in response.context["sections"] if sec.key == "revenue")

        assert revenue(data.org.manager_a).rows[-1][1:] == [1000, 800]
        assert revenue(data.org.manager_b).rows[-1][1:] == [9999, 9999]
        everyone = revenue(data.org.admin).rows[-1][1:]
        assert revenue(data.org.admin, team=data.org.team_b.pk).rows[-1][1:] == [9999, 9999] != everyone
        assert revenue(data.org.manager_a, "en").title == "Revenue by month"
        assert revenue(data.org.manager_a).title != "Revenue by month"

    def test_new_targets_show_at_once(self, data, client_for, django_capture_on_commit_callbacks):
        """Saving targets drops the cached dashboards: the manager sees the new target on the next load."""
        client = client_for(data.org.manager_a)

        def rep_a_targets():
            response = client.get(reverse("dashboards:team"), MARCH)
            table = next(sec for sec in response.context["sections"] if sec.key == "targets")
            return next(row for row in table.rows if row[0] == data.org.rep_a.display_name)

        before = rep_a_targets()
        assert 77 not in before
        with django_capture_on_commit_callbacks(execute=True):
            targets_set(user=data.org.manager_a, month=date(2026, 3, 1), values={data.org.rep_a.pk: {"calls": 77}})
        assert 77 in rep_a_targets()

    def test_off_by_default_under_test(self, data, client_for, settings):
        """DASHBOARD_CACHE_SECONDS=0: every request computes; the page shows no computation time."""
        settings.DASHBOARD_CACHE_SECONDS = 0
        client = client_for(data.org.manager_a)
        client.get(reverse("dashboards:team"), MARCH)
        DataSet(data.org)
        response = client.get(reverse("dashboards:team"), MARCH)
        revenue = next(sec for sec in response.context["sections"] if sec.key == "revenue")
        assert revenue.rows[-1][1:] == [2000, 1600]
        assert 'id="dashboard-computed-at"' not in response.content.decode()


class TestMonthlyReviewPage:
    def test_manager_review(self, data, client_for, django_assert_max_num_queries):
        client = client_for(data.org.manager_a)
        with django_assert_max_num_queries(30):
            response = client.get(reverse("dashboards:review"), {"month": "2026-03"})
        assert response.status_code == 200
        html = response.content.decode()
        assert "2026-03" in html and "2026-02" in html and "rep_b" not in html and 'data-print' in html
        m = {row["metric"]: row for row in response.context["review"]["metrics"]}
        assert m["signed_revenue"]["current"] == Decimal("1000")

    def test_other_team_404(self, data, client_for):
        response = client_for(data.org.manager_a).get(reverse("dashboards:review"), {"team": data.org.team_b.pk})
        assert response.status_code == 404

    def test_rep_gets_own(self, data, client_for):
        response = client_for(data.org.rep_a2).get(reverse("dashboards:review"), {"month": "2026-03", "team": data.org.team_b.pk})
        assert response.status_code == 200
        m = {row["metric"]: row for row in response.context["review"]["metrics"]}
        assert m["collected"]["current"] == Decimal("500") and m["signed_revenue"]["current"] == 0


class TestLanguage:
    def test_activity_kinds_in_the_page_language(self, data, client_for):
        from activities.models import ActivityKind

        call = ActivityKind.objects.get(code="call")
        client = client_for(data.org.manager_a)
        for language, expected in (("en", call.name_en or call.name), ("zh-hans", call.name)):
            response = client.get(reverse("dashboards:team"), MARCH, HTTP_ACCEPT_LANGUAGE=language)
            activities = next(sec for sec in response.context["sections"] if sec.key == "activities")
            assert expected in [row[1] for row in activities.rows], language
