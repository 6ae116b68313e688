"""The bell, the notification list, mark read: a notification is only ever its user's."""

import pytest
from django.urls import reverse

from notifications.models import Notification, NotificationPreference


def make(user, n=1, **kwargs):
    return [Notification.objects.create(user=user, title=f"Note {i} for {user.username}", link="/customers/",
                                        **kwargs) for i in range(n)]


@pytest.mark.django_db
class TestBell:
    def test_unread_count_is_the_users_own(self, org, client_for):
        make(org.rep_a, 3)
        make(org.rep_b, 5)
        body = client_for(org.rep_a).get(reverse("notifications:bell")).content.decode()
        assert 'id="notification-count">3<' in body
        assert "every 30s" in body and "load," not in body  # polled, count rendered

    def test_base_layout_loads_the_bell(self, org, client_for):
        body = client_for(org.rep_a).get(reverse("notifications:list")).content.decode()
        assert 'id="notification-bell"' in body

    def test_anonymous_is_sent_to_login(self, client):
        assert client.get(reverse("notifications:bell")).status_code == 302


@pytest.mark.django_db
class TestNotificationList:
    def test_only_own_notifications(self, org, client_for):
        make(org.rep_a, 2)
        make(org.rep_b, 2)
        body = client_for(org.rep_a).get(reverse("notifications:list")).content.decode()
        assert "for rep_a" in body and "for rep_b" not in body

    def test_constant_queries(self, org, client_for, django_assert_max_num_queries):
        client = client_for(org.rep_a)
        make(org.rep_a, 40)
        with django_assert_max_num_queries(8):
            assert client.get(reverse("notifications:list")).status_code == 200

    def test_unread_filter(self, org, client_for):
        read, unread = make(org.rep_a, 2)
        client = client_for(org.rep_a)
        client.post(reverse("notifications:mark_read", args=[read.pk]))
        body = client.get(reverse("notifications:list") + "?unread=1").content.decode()
        assert f"notification-{unread.pk}" in body and f"notification-{read.pk}" not in body


@pytest.mark.django_db
class TestMarkRead:
    def test_mark_one_read(self, org, client_for):
        (note,) = make(org.rep_a)
        response = client_for(org.rep_a).post(reverse("notifications:mark_read", args=[note.pk]),
                                              HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and response["HX-Trigger"] == "notifications-changed"
        note.refresh_from_db()
        assert note.read_at is not None

    def test_someone_elses_is_404_and_stays_unread(self, org, client_for):
        (note,) = make(org.rep_b)
        client = client_for(org.rep_a)
        assert client.post(reverse("notifications:mark_read", args=[note.pk])).status_code == 404
        assert client.get(reverse("notifications:open", args=[note.pk])).status_code == 404
        note.refresh_from_db()
        assert note.read_at is None
        assert client_for(org.admin).get(reverse("notifications:open", args=[note.pk])).status_code == 404

    def test_mark_all_read_touches_only_own(self, org, client_for):
        make(org.rep_a, 3)
        make(org.rep_b, 2)
        client_for(org.rep_a).post(reverse("notifications:mark_all_read"))
        assert not Notification.objects.filter(user=org.rep_a, read_at__isnull=True).exists()
        assert Notification.objects.filter(user=org.rep_b, read_at__isnull=True).count() == 2

    def test_open_marks_read_and_follows_only_local_links(self, org, client_for):
        (local,) = make(org.rep_a)
        foreign = Notification.objects.create(user=org.rep_a, title="x", link="https://evil.example/")
        client = client_for(org.rep_a)
        response = client.get(reverse("notifications:open", args=[local.pk]))
        assert response.status_code == 302 and response.url == "/customers/"
        response = client.get(reverse("notifications:open", args=[foreign.pk]))
        assert response.url == reverse("notifications:list")
        local.refresh_from_db()
        assert local.read_at is not None


@pytest.mark.django_db
class TestPreferences:
    def test_save(self, org, client_for):
        client = client_for(org.rep_a)
        assert client.get(reverse("notifications:preferences")).status_code == 200
        response = client.post(reverse("notifications:preferences"), {"in_app": "on", "lead_minutes": 45})
        assert response.status_code == 302
        pref = NotificationPreference.objects.get(user=org.rep_a)
        assert (pref.in_app, pref.email, pref.webhook, pref.lead_minutes) == (True, False, False, 45)

    def test_recent_partial(self, org, client_for):
        make(org.rep_a, 2)
        make(org.rep_b, 1)
        body = client_for(org.rep_a).get(reverse("notifications:recent")).content.decode()
        assert body.count('id="notification-') == 2 and "for rep_b" not in body
