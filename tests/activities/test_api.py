"""/api/v1/activities/: scoped reads; log, plan, edit, reschedule, complete, cancel and reopen through
activities.services."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from activities.models import Activity, ActivityStatus
from leads.models import Customer
from tests.factories import CustomerFactory

URL = "/api/v1/activities/"


@pytest.fixture
def api():
    return APIClient()


def planned(owner, customer=None, **extra):
    from activities import services
    from tests.activities.factories import kind

    customer = customer or CustomerFactory(owner=owner)
    activity, _ = services.activity_plan(
        by=owner, customer=customer, kind=kind("visit"), subject="拜访 Visit",
        planned_at=timezone.now() + timedelta(days=1), **extra,
    )
    return activity


@pytest.mark.django_db
class TestActivityApi:
    def test_minimal_create_logs_a_done_activity_and_touches_the_customer(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        api.force_authenticate(org.rep_a)
        response = api.post(URL, {"customer": customer.pk, "kind": "call", "subject": "首次电话 First call"},
                            format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["kind"], body["status"], body["owner"]) == ("call", "done", org.rep_a.pk)
        assert body["done_at"]
        customer.refresh_from_db()
        assert customer.last_contacted_at is not None

    def test_create_with_a_planned_time_plans_it(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        api.force_authenticate(org.rep_a)
        when = (timezone.now() + timedelta(days=2)).isoformat()
        response = api.post(URL, {"customer": customer.pk, "kind": "visit", "subject": "Visit", "planned_at": when},
                            format="json")
        assert response.status_code == 201
        assert response.json()["status"] == "planned" and response.json()["done_at"] is None
        refused = api.post(URL, {"customer": customer.pk, "kind": "visit", "subject": "Visit", "planned_at": when,
                                 "outcome": "positive"}, format="json")
        assert refused.status_code == 400
        assert "outcome" in refused.json()["errors"]

    def test_unknown_kind_out_of_scope_customer_and_foreign_owner_are_400(self, api, org):
        mine = CustomerFactory(owner=org.rep_a)
        theirs = CustomerFactory(owner=org.rep_b)
        api.force_authenticate(org.rep_a)
        assert "kind" in api.post(URL, {"customer": mine.pk, "kind": "fax", "subject": "x"},
                                  format="json").json()["errors"]
        assert "customer" in api.post(URL, {"customer": theirs.pk, "kind": "call", "subject": "x"},
                                      format="json").json()["errors"]
        response = api.post(URL, {"customer": mine.pk, "kind": "call", "subject": "x", "owner": org.rep_a2.pk},
                            format="json")
        assert response.status_code == 400
        assert "owner" in response.json()["errors"]
        assert not Activity.objects.exists()

    def test_idempotency_key_creates_one_activity(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        api.force_authenticate(org.rep_a)
        payload = {"customer": customer.pk, "kind": "call", "subject": "Call"}
        first = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="act-1")
        again = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="act-1")
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert Activity.objects.count() == 1

    def test_out_of_scope_is_404_on_every_verb(self, api, org):
        theirs = planned(org.rep_b)
        mine = planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        assert [row["id"] for row in api.get(URL).json()["results"]] == [mine.pk]
        assert api.get(f"{URL}{theirs.pk}/").status_code == 404
        assert api.patch(f"{URL}{theirs.pk}/", {"subject": "x"}, format="json").status_code == 404
        assert api.post(f"{URL}{theirs.pk}/cancel/").status_code == 404
        assert api.post(f"{URL}{theirs.pk}/complete/", {}, format="json").status_code == 404
        assert api.delete(f"{URL}{mine.pk}/").status_code == 405  # no delete service
        theirs.refresh_from_db()
        assert (theirs.subject, theirs.status) == ("拜访 Visit", ActivityStatus.PLANNED)

    def test_status_and_owner_cannot_be_patched_but_the_description_and_time_can(self, api, org):
        activity = planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        refused = api.patch(f"{URL}{activity.pk}/", {"status": "done", "owner": org.rep_a2.pk}, format="json")
        assert refused.status_code == 400
        assert set(refused.json()["errors"]) == {"status", "owner"}
        later = timezone.now() + timedelta(days=5)
        response = api.patch(f"{URL}{activity.pk}/", {"subject": "Demo", "planned_at": later.isoformat()},
                             format="json")
        assert response.status_code == 200
        activity.refresh_from_db()
        assert activity.subject == "Demo"
        assert abs(activity.planned_at - later) < timedelta(seconds=1)

    def test_complete_cancel_reopen_and_the_409_on_a_wrong_state(self, api, org):
        activity = planned(org.rep_a)
        other = planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        done = api.post(f"{URL}{activity.pk}/complete/", {"outcome": "positive", "next_step": "Quote"}, format="json")
        assert done.status_code == 200
        assert (done.json()["status"], done.json()["outcome"]) == ("done", "positive")
        again = api.post(f"{URL}{activity.pk}/cancel/")
        assert again.status_code == 409
        assert again.json()["code"] == "transition_not_allowed"
        assert [item["code"] for item in again.json()["unmet"]] == ["not_planned"]
        assert api.post(f"{URL}{other.pk}/cancel/").json()["status"] == "cancelled"
        assert api.post(f"{URL}{other.pk}/reopen/", {}, format="json").json()["status"] == "planned"

    def test_filters_pagination_and_search(self, api, org):
        customer = CustomerFactory(owner=org.rep_a)
        visit = planned(org.rep_a, customer=customer)
        api.force_authenticate(org.rep_a)
        call = api.post(URL, {"customer": customer.pk, "kind": "call", "subject": "电话 Budget call"},
                        format="json").json()
        body = api.get(URL, {"page_size": 1}).json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 2 and body["next"]
        assert [r["id"] for r in api.get(URL, {"kind": "visit"}).json()["results"]] == [visit.pk]
        assert [r["id"] for r in api.get(URL, {"status": "done"}).json()["results"]] == [call["id"]]
        assert [r["id"] for r in api.get(URL, {"search": "budget"}).json()["results"]] == [call["id"]]
        assert Customer.objects.count() == 1

    def test_list_runs_a_constant_number_of_queries(self, api, org, django_assert_max_num_queries):
        for _ in range(5):
            planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        with django_assert_max_num_queries(8):
            assert api.get(URL).json()["count"] == 5


@pytest.mark.django_db
class TestActivityVersionsAndDelete:
    def test_every_change_moves_the_version_and_a_stale_if_match_is_412(self, api, org):
        activity = planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        read = api.get(f"{URL}{activity.pk}/")
        assert read["ETag"] == f'W/"{activity.pk}-1"'
        edited = api.patch(f"{URL}{activity.pk}/", {"subject": "改 Changed"}, format="json", HTTP_IF_MATCH=read["ETag"])
        assert edited.status_code == 200 and edited.json()["version"] == 2
        for stale in (
            api.patch(f"{URL}{activity.pk}/", {"subject": "Lost"}, format="json", HTTP_IF_MATCH=read["ETag"]),
            api.post(f"{URL}{activity.pk}/complete/", {}, format="json", HTTP_IF_MATCH=read["ETag"]),
        ):
            assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
        activity.refresh_from_db()
        assert (activity.subject, activity.status, activity.version) == ("改 Changed", "planned", 2)
        done = api.post(f"{URL}{activity.pk}/complete/", {}, format="json", HTTP_IF_MATCH=edited["ETag"])
        assert done.status_code == 200 and done["ETag"] == f'W/"{activity.pk}-3"'

    def test_version_and_created_by_cannot_be_set(self, api, org):
        activity = planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        refused = api.patch(f"{URL}{activity.pk}/", {"version": 9, "created_by": org.rep_a2.pk}, format="json",
                            HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert refused.status_code == 400
        assert refused.json()["errors"] == {"version": ["此字段不可设置。"], "created_by": ["此字段不可设置。"]}

    def test_a_refused_reschedule_keeps_the_edit_of_the_same_patch_out_too(self, api, org):
        activity = planned(org.rep_a)
        api.force_authenticate(org.rep_a)
        api.post(f"{URL}{activity.pk}/complete/", {}, format="json")
        later = timezone.now() + timedelta(days=2)
        refused = api.patch(f"{URL}{activity.pk}/", {"subject": "Changed", "planned_at": later.isoformat()},
                            format="json")
        assert refused.status_code == 409
        activity.refresh_from_db()
        assert (activity.subject, activity.version) == ("拜访 Visit", 2)

    def test_no_delete_and_out_of_scope_is_404_first(self, api, org):
        mine, theirs = planned(org.rep_a), planned(org.rep_b)
        api.force_authenticate(org.rep_a)
        assert api.delete(f"{URL}{mine.pk}/").status_code == 405
        assert api.patch(f"{URL}{theirs.pk}/", {"subject": "x"}, format="json").status_code == 404
        assert Activity.objects.count() == 2


@pytest.mark.django_db
class TestActivityListCount:
    """The unfiltered list's `count` comes from ActivityScopeTotal (trigger-maintained), not a COUNT(*)
    over the scope's OR; it must equal the exact count of what the user sees, and a filtered list counts."""

    @pytest.fixture
    def spread(self, org):
        from tests.activities.factories import ActivityFactory

        own = CustomerFactory(owner=org.rep_a)
        other = CustomerFactory(owner=org.rep_b)
        pool = CustomerFactory(owner=None)
        ActivityFactory.create_batch(3, customer=own, owner=org.rep_a)
        ActivityFactory.create_batch(2, customer=own, owner=org.manager_a)  # on rep_a's customer, by the manager
        ActivityFactory.create_batch(4, customer=other, owner=org.rep_b)
        ActivityFactory.create_batch(1, customer=pool, owner=org.rep_a)
        ActivityFactory.create_batch(2, customer=other, owner=org.rep_a2)
        return own, other, pool

    def counts(self, api, user, **params):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        api.force_authenticate(user)
        with CaptureQueriesContext(connection) as ctx:
            response = api.get(URL, params)
        assert response.status_code == 200
        counted = any("COUNT(" in q["sql"].upper() and '"activities_activity"' in q["sql"] for q in ctx.captured_queries)
        return response.json()["count"], counted

    def test_unfiltered_count_equals_the_scope(self, api, org, spread):
        own, other, pool = spread
        for user in (org.rep_a, org.rep_b, org.rep_a2, org.manager_a, org.director, org.admin):
            exact = Activity.objects.visible_to(user).count()
            count, counted = self.counts(api, user)
            assert (count, counted) == (exact, False), user.username
        # reassigning a customer moves its activities into another scope at once
        Customer.objects.filter(pk=other.pk).update(owner=org.rep_a)
        Activity.objects.filter(customer=pool).update(owner=org.rep_b)
        for user in (org.rep_a, org.rep_b, org.manager_a):
            assert self.counts(api, user)[0] == Activity.objects.visible_to(user).count(), user.username
        Activity.objects.filter(customer=own).delete()
        assert self.counts(api, org.rep_a)[0] == Activity.objects.visible_to(org.rep_a).count() == 6
        # one INSERT of many rows (an import's chunk) on two customers of two owners
        from tests.activities.factories import ActivityFactory

        ActivityFactory.create_batch(5, customer=own, owner=org.rep_a)  # own: rep_a's again
        Activity.objects.bulk_create([Activity(kind=a.kind, subject="bulk", customer=c, owner=o, status="planned",
                                               planned_at=a.planned_at or timezone.now())
                                      for a in Activity.objects.all()[:1] for c in (own, pool) for o in (org.rep_a, org.rep_b)
                                      for _ in range(3)])
        for user in (org.rep_a, org.rep_b, org.manager_a, org.admin):
            assert self.counts(api, user)[0] == Activity.objects.visible_to(user).count(), user.username

    def test_filters_and_search_count_the_rows(self, api, org, spread):
        Activity.objects.filter(owner=org.rep_a).update(status=ActivityStatus.CANCELLED)
        count, counted = self.counts(api, org.manager_a, status="planned")
        assert counted and count == Activity.objects.visible_to(org.manager_a).filter(status="planned").count()
        count, counted = self.counts(api, org.rep_a, ordering="-planned_at", page_size=2)
        assert not counted and count == Activity.objects.visible_to(org.rep_a).count()
