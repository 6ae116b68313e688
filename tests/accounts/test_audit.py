"""The audit page: who changed what, from the simple-history tables; admins only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audited_models
from accounts.models import Role, Team, User

URL = reverse("accounts:audit")
pytestmark = pytest.mark.django_db


def _change(obj, by, **fields):
    for name, value in fields.items():
        setattr(obj, name, value)
    obj._history_user = by
    obj.save()
    del obj._history_user


def _entries(response):
    return response.context["entries"]


class TestAccess:
    def test_admin_sees_the_page(self, client, org):
        client.force_login(org.admin)
        response = client.get(URL)
        assert response.status_code == 200
        assert "accounts/audit_log.html" in [t.name for t in response.templates]

    @pytest.mark.parametrize("who", ["rep_a", "manager_a", "director"])
    def test_everyone_else_gets_a_404(self, client, org, who):
        client.force_login(getattr(org, who))
        assert client.get(URL).status_code == 404

    def test_anonymous_is_sent_to_log_in(self, client):
        response = client.get(URL)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


class TestRegistry:
    def test_every_model_with_history_is_audited_found_through_the_registry(self):
        keys = [a.key for a in audited_models()]
        assert {"accounts.user", "accounts.team"} <= set(keys)
        assert keys == sorted(keys)

    def test_password_hash_and_login_time_are_not_copied_to_history(self):
        history_fields = {f.name for f in User.history.model._meta.get_fields()}
        assert "password" not in history_fields
        assert "last_login" not in history_fields

    def test_logging_in_writes_no_history_row(self, client, org):
        before = User.history.filter(id=org.rep_a.pk).count()
        assert client.post(reverse("accounts:login"), {"username": "rep_a", "password": "crm-demo-2026"}).status_code == 302
        org.rep_a.refresh_from_db()
        assert org.rep_a.last_login is not None
        assert User.history.filter(id=org.rep_a.pk).count() == before


class TestEntries:
    def test_a_change_shows_who_what_and_old_and_new_values(self, client, org):
        _change(org.rep_a, org.admin, role=Role.MANAGER, team=org.team_b)
        client.force_login(org.admin)
        query = {"model": "accounts.user", "object_id": org.rep_a.pk}
        entry = _entries(client.get(URL, query, HTTP_ACCEPT_LANGUAGE="en"))[0]
        assert entry.user == org.admin
        assert entry.kind == "~"
        assert entry.label == "rep_a"
        assert entry.object_url == reverse("admin:accounts_user_change", args=[org.rep_a.pk])
        changes = {c.field: (str(c.old), str(c.new)) for c in entry.changes}
        assert changes == {"role": ("Sales rep", "Sales manager"), "team": ("Team A", "Team B")}

        response = client.get(URL, query, HTTP_ACCEPT_LANGUAGE="zh-hans")
        body = response.content.decode()
        assert "审计日志" in body and "销售经理" in body

    def test_a_change_made_in_django_admin_is_recorded_with_its_author(self, client, org):
        client.force_login(org.admin)
        response = client.post(
            reverse("admin:accounts_team_change", args=[org.team_b.pk]),
            {"name": "Team B East", "parent": org.sales.pk, "manager": org.manager_b.pk},
        )
        assert response.status_code == 302, response.content[:500]
        entry = _entries(client.get(URL, {"model": "accounts.team"}))[0]
        assert (entry.user, entry.kind, entry.object_id) == (org.admin, "~", str(org.team_b.pk))
        assert [(c.old, c.new) for c in entry.changes] == [("Team B", "Team B East")]

    def test_created_and_deleted_objects_are_listed(self, client, org):
        team = Team(name="Temp")
        team._history_user = org.admin
        team.save()
        team_id = team.pk
        team._history_user = org.admin
        team.delete()
        client.force_login(org.admin)
        entries = _entries(client.get(URL, {"model": "accounts.team", "object_id": team_id}))
        assert [e.kind for e in entries] == ["-", "+"]
        assert entries[0].object_url is None

    def test_user_input_is_escaped(self, client, org):
        _change(org.team_a, org.admin, name="<script>alert(1)</script>")
        client.force_login(org.admin)
        body = client.get(URL, {"model": "accounts.team"}).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


class TestFilters:
    @pytest.fixture
    def changes(self, org):
        _change(org.team_a, org.manager_a, name="Team A North")
        _change(org.rep_b, org.admin, phone="123")
        _change(org.team_b, org.admin, name="Team B South")
        old = User.history.get(id=org.rep_b.pk, phone="123")
        old.history_date = timezone.now() - timedelta(days=40)
        old.save()
        return org

    def test_by_user(self, client, changes):
        client.force_login(changes.admin)
        entries = _entries(client.get(URL, {"user": changes.manager_a.pk}))
        assert [(e.label, e.user) for e in entries] == [("Team A North", changes.manager_a)]

    def test_by_object_type(self, client, changes):
        client.force_login(changes.admin)
        entries = _entries(client.get(URL, {"model": "accounts.team", "kind": "~"}))
        assert {e.audited.key for e in entries} == {"accounts.team"}
        assert {e.kind for e in entries} == {"~"}
        assert {"Team A North", "Team B South"} <= {e.label for e in entries}
        assert len(_entries(client.get(URL, {"model": "accounts.team", "kind": "+"}))) == 3  # the org's teams

    def test_by_date_range(self, client, changes):
        client.force_login(changes.admin)
        today = timezone.localdate()
        recent = _entries(client.get(URL, {"user": changes.admin.pk, "date_from": today, "date_to": today}))
        assert [e.label for e in recent if e.kind == "~"] == ["Team B South"]
        older = _entries(client.get(URL, {"date_to": today - timedelta(days=30)}))
        assert [(e.label, e.kind) for e in older] == [("rep_b", "~")]

    def test_an_inverted_date_range_is_an_error_not_a_crash(self, client, changes):
        client.force_login(changes.admin)
        response = client.get(URL, {"date_from": "2026-02-01", "date_to": "2026-01-01"})
        assert response.status_code == 200
        assert response.context["form"].errors
        assert _entries(response) == []

    def test_an_object_id_of_the_wrong_shape_matches_nothing(self, client, changes):
        client.force_login(changes.admin)
        assert _entries(client.get(URL, {"object_id": "abc"})) == []


class TestPagination:
    def test_fifty_per_page_newest_first_with_a_constant_number_of_queries(
        self, client, org, django_assert_max_num_queries
    ):
        for i in range(40):
            _change(org.team_a, org.admin, name=f"Team A {i}")
            _change(org.rep_a, org.manager_a, phone=str(i), team=org.team_b if i % 2 else org.team_a)
        client.force_login(org.admin)
        with django_assert_max_num_queries(14):
            first = client.get(URL)
        assert len(_entries(first)) == 50
        assert first.context["page"].paginator.count >= 80
        whens = [e.when for e in _entries(first)]
        assert whens == sorted(whens, reverse=True)
        second = client.get(URL, {"page": 2, "kind": "~"})
        assert second.context["page"].number == 2
        assert {e.kind for e in _entries(second)} == {"~"}
        assert "?kind=~&amp;page=1" in second.content.decode(), "the filters stay on the page links"
