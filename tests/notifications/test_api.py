"""/api/v1/notifications/: the caller's own notifications only; marked read through the services."""

import pytest
from rest_framework.test import APIClient

from notifications.models import Notification

URL = "/api/v1/notifications/"


@pytest.fixture
def api():
    return APIClient()


def make(user, n=1, **kwargs):
    return [Notification.objects.create(user=user, title=f"Note {i} for {user.username}", link="/customers/",
                                        **kwargs) for i in range(n)]


@pytest.mark.django_db
class TestNotificationApi:
    def test_only_own_and_someone_elses_is_404(self, api, org):
        mine = make(org.rep_a, 2)
        (theirs,) = make(org.rep_b)
        # not even an administrator or the manager reads someone else's notifications
        for user in (org.admin, org.manager_b):
            api.force_authenticate(user)
            assert api.get(URL).json()["count"] == 0
            assert api.get(f"{URL}{theirs.pk}/").status_code == 404
        api.force_authenticate(org.rep_a)
        body = api.get(URL).json()
        assert set(body) == {"count", "next", "previous", "results"}
        assert {row["id"] for row in body["results"]} == {n.pk for n in mine}
        assert api.get(f"{URL}{theirs.pk}/").status_code == 404
        assert api.patch(f"{URL}{theirs.pk}/", {"read": True}, format="json").status_code == 404
        assert api.post(f"{URL}{theirs.pk}/read/").status_code == 404
        theirs.refresh_from_db()
        assert theirs.read_at is None

    def test_mark_read_by_patch_or_action(self, api, org):
        first, second = make(org.rep_a, 2)
        api.force_authenticate(org.rep_a)
        response = api.patch(f"{URL}{first.pk}/", {"read": True}, format="json")
        assert response.status_code == 200
        assert response.json()["read"] is True and response.json()["read_at"]
        assert api.post(f"{URL}{second.pk}/read/").json()["read"] is True
        assert not Notification.objects.filter(read_at__isnull=True).exists()

    def test_unread_and_other_fields_are_refused(self, api, org):
        (note,) = make(org.rep_a)
        api.force_authenticate(org.rep_a)
        assert api.patch(f"{URL}{note.pk}/", {"read": False}, format="json").status_code == 400
        response = api.patch(f"{URL}{note.pk}/", {"title": "changed"}, format="json")
        assert response.status_code == 400
        assert "title" in response.json()["errors"]
        note.refresh_from_db()
        assert (note.title, note.read_at) == ("Note 0 for rep_a", None)
        assert api.post(URL, {"title": "x"}, format="json").status_code == 405
        refused = api.patch(f"{URL}{note.pk}/", {"read": True, "version": 5}, format="json")
        assert refused.status_code == 400 and set(refused.json()["errors"]) == {"version"}

    def test_delete_own_only(self, api, org):
        (mine,) = make(org.rep_a)
        (theirs,) = make(org.rep_b)
        api.force_authenticate(org.rep_a)
        assert api.delete(f"{URL}{theirs.pk}/").status_code == 404
        assert api.delete(f"{URL}{mine.pk}/").status_code == 204
        assert list(Notification.objects.values_list("pk", flat=True)) == [theirs.pk]

    def test_version_etag_and_412_on_a_stale_if_match(self, api, org):
        first, second = make(org.rep_a, 2)
        api.force_authenticate(org.rep_a)
        read = api.get(f"{URL}{first.pk}/")
        assert read["ETag"] == f'W/"{first.pk}-1"' and read.json()["version"] == 1
        marked = api.post(f"{URL}{first.pk}/read/", HTTP_IF_MATCH=read["ETag"])
        assert marked.status_code == 200 and marked.json()["version"] == 2
        again = api.post(f"{URL}{first.pk}/read/")
        assert again.json()["version"] == 2  # marking read twice changes nothing
        assert api.delete(f"{URL}{first.pk}/", HTTP_IF_MATCH=read["ETag"]).status_code == 412
        assert Notification.objects.filter(pk=first.pk).exists()
        stale_etag = api.get(f"{URL}{second.pk}/")["ETag"]
        api.post(f"{URL}read-all/")
        stale = api.patch(f"{URL}{second.pk}/", {"read": True}, format="json", HTTP_IF_MATCH=stale_etag)
        assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
        assert Notification.objects.get(pk=second.pk).version == 2

    def test_unread_filter_and_read_all_touch_only_own(self, api, org):
        make(org.rep_a, 3)
        make(org.rep_b, 2)
        api.force_authenticate(org.rep_a)
        first = api.get(URL).json()["results"][0]
        api.post(f"{URL}{first['id']}/read/")
        assert api.get(URL, {"unread": "true"}).json()["count"] == 2
        assert api.get(URL, {"unread": "false"}).json()["count"] == 1
        assert api.post(f"{URL}read-all/").json() == {"marked": 2}
        assert Notification.objects.filter(user=org.rep_b, read_at__isnull=True).count() == 2

    def test_list_runs_a_constant_number_of_queries(self, api, org, django_assert_max_num_queries):
        make(org.rep_a, 10)
        api.force_authenticate(org.rep_a)
        with django_assert_max_num_queries(5):
            assert api.get(URL).json()["count"] == 10
