"""The data-scope rule, as every page applies it: visible, or a 404 that confirms nothing."""

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.scope import managed_user_ids
from leads.models import Customer
from tests.factories import CustomerFactory, TeamFactory, UserFactory

# (viewer, record owner) -> visible?  The owners: the viewer's own record, a teammate's, another team's.
MATRIX = [
    ("rep_a", "rep_a", True),
    ("rep_a", "rep_a2", False),
    ("rep_a", "rep_b", False),
    ("manager_a", "manager_a", True),
    ("manager_a", "rep_a", True),
    ("manager_a", "rep_a2", True),
    ("manager_a", "rep_b", False),
    ("manager_a", "manager_b", False),
    ("director", "rep_a", True),
    ("director", "rep_b", True),
    ("director", "manager_b", True),
    ("admin", "rep_a", True),
    ("admin", "rep_b", True),
    ("admin", "director", True),
]


@pytest.mark.django_db
class TestScopeMatrix:
    @pytest.mark.parametrize(("viewer", "owner", "visible"), MATRIX)
    def test_detail_page_is_visible_or_404(self, org, client_for, viewer, owner, visible):
        """The detail page of a record outside the viewer's scope is a 404, never a 403."""
        record = CustomerFactory(owner=getattr(org, owner))
        response = client_for(getattr(org, viewer)).get(reverse("leads:customer_detail", args=[record.pk]))
        assert response.status_code == (200 if visible else 404)

    @pytest.mark.parametrize(("viewer", "owner", "visible"), MATRIX)
    def test_list_page_shows_only_visible_records(self, org, client_for, viewer, owner, visible):
        record = CustomerFactory(owner=getattr(org, owner), name=f"Record of {owner}")
        response = client_for(getattr(org, viewer)).get(reverse("leads:customer_list"))
        assert response.status_code == 200
        assert (record.name in response.content.decode()) is visible

    @pytest.mark.parametrize(("viewer", "owner", "visible"), MATRIX)
    def test_admin_changelist_and_change_page(self, org, client_for, viewer, owner, visible):
        """Only admins reach Django admin; the admin sees every record there."""
        record = CustomerFactory(owner=getattr(org, owner))
        client = client_for(getattr(org, viewer))
        response = client.get(reverse("admin:leads_customer_change", args=[record.pk]))
        if viewer == "admin":
            assert response.status_code == 200
        else:
            assert response.status_code == 302  # not staff: sent to the admin login
            assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
class TestScopeRule:
    def test_anonymous_sees_nothing_and_is_sent_to_login(self, org, client):
        record = CustomerFactory(owner=org.rep_a)
        response = client.get(reverse("leads:customer_detail", args=[record.pk]))
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]

    def test_inactive_user_sees_nothing(self, org):
        CustomerFactory(owner=org.rep_a)
        org.rep_a.is_active = False
        assert not Customer.objects.visible_to(org.rep_a).exists()

    def test_nested_teams_grow_the_managers_scope(self, org):
        """A team added below team A is visible to manager A and to the director above."""
        sub = TeamFactory(name="Team A-1", parent=org.team_a)
        rep = UserFactory(username="rep_a_sub", team=sub)
        assert rep.pk in managed_user_ids(org.manager_a)
        assert rep.pk in managed_user_ids(org.director)
        assert rep.pk not in managed_user_ids(org.manager_b)

    def test_a_manager_without_team_sees_only_their_own(self, db):
        lonely = UserFactory(username="lonely", role=Role.MANAGER)
        assert managed_user_ids(lonely) == {lonely.pk}

    def test_team_cycle_does_not_hang(self, org):
        """A mis-edited parent loop (A under B under A) still terminates."""
        org.sales.parent = org.team_a
        org.sales.save()
        assert org.rep_b.pk in managed_user_ids(org.manager_a)

    def test_unknown_pk_is_404(self, org, client_for):
        response = client_for(org.admin).get(reverse("leads:customer_detail", args=[999999]))
        assert response.status_code == 404
