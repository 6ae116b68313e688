"""Login, lockout, logout, password change and reset, language."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

PASSWORD = settings.CRM_DEMO_PASSWORD


@pytest.fixture
def rep(db):
    return UserFactory(username="alice")


def _login(client, username, password, **extra):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR="10.0.0.7", **extra
    )


@pytest.mark.django_db
class TestLogin:
    def test_login_and_logout(self, client, rep):
        response = _login(client, "alice", PASSWORD)
        assert response.status_code == 302
        assert client.get(reverse("home")).status_code == 200
        client.post(reverse("accounts:logout"))
        assert client.get(reverse("home")).status_code == 302

    def test_wrong_password_is_refused_with_a_message(self, client, rep):
        response = _login(client, "alice", "wrong", HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    def test_lockout_after_repeated_failures(self, client, rep):
        """After AXES_FAILURE_LIMIT failures the username+IP is locked out, even with the right password."""
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(client, "alice", "wrong")
        response = _login(client, "alice", PASSWORD, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 429
        body = response.content.decode()
        assert "Too many failed login attempts" in body
        assert f"{int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)} minutes" in body

    def test_lockout_message_in_chinese(self, client, rep):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(client, "alice", "wrong")
        response = _login(client, "alice", PASSWORD, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 429
        assert "登录失败次数过多" in response.content.decode()

    def test_lockout_is_per_username_and_ip(self, client, rep):
        """Another address is not locked out by failures from the first one."""
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(client, "alice", "wrong")
        response = client.post(
            reverse("accounts:login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.8"
        )
        assert response.status_code == 302

    def test_lockout_ends_after_the_cool_off(self, client, rep):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(client, "alice", "wrong")
        AccessAttempt.objects.update(
            attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(minutes=1)
        )
        assert _login(client, "alice", PASSWORD).status_code == 302

    def test_failed_login_is_logged(self, client, rep, caplog):
        with caplog.at_level("WARNING", logger="crm.security"):
            _login(client, "alice", "wrong")
        assert "login_failed username=alice" in caplog.text
        record = next(r for r in caplog.records if r.name == "crm.security")
        assert (record.event, record.username, record.ip, record.path) == (
            "login_failed", "alice", "10.0.0.7", reverse("accounts:login"))


@pytest.mark.django_db
class TestPasswords:
    def test_password_change(self, client, rep):
        client.force_login(rep)
        response = client.post(
            reverse("accounts:password_change"),
            {"old_password": PASSWORD, "new_password1": "a-new-Pass-2026!", "new_password2": "a-new-Pass-2026!"},
        )
        assert response.status_code == 302
        rep.refresh_from_db()
        assert rep.check_password("a-new-Pass-2026!")

    def test_password_reset_by_email(self, client, rep):
        response = client.post(reverse("accounts:password_reset"), {"email": rep.email})
        assert response.status_code == 302
        assert len(mail.outbox) == 1
        link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
        path = link.split("testserver", 1)[1]
        form_page = client.get(path, follow=True)
        assert form_page.status_code == 200
        response = client.post(
            form_page.redirect_chain[-1][0],
            {"new_password1": "reset-Pass-2026!", "new_password2": "reset-Pass-2026!"},
        )
        assert response.status_code == 302
        rep.refresh_from_db()
        assert rep.check_password("reset-Pass-2026!")


@pytest.mark.django_db
class TestLanguage:
    def test_pages_render_in_both_languages(self, client, rep):
        client.force_login(rep)
        zh = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        en = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert '<html lang="zh-hans">' in zh and "我的一天" in zh
        assert '<html lang="en">' in en and "My day" in en

    def test_switcher_sets_cookie_and_remembers_choice(self, client, rep):
        client.force_login(rep)
        response = client.post(reverse("accounts:set_language"), {"language": "en", "next": "/"})
        assert response.status_code == 302
        rep.refresh_from_db()
        assert rep.language == "en"
        page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert '<html lang="en">' in page

    def test_saved_language_applies_on_a_new_browser(self, client, rep):
        rep.language = "en"
        rep.save()
        client.force_login(rep)
        page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert '<html lang="en">' in page
