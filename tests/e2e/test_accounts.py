"""A person logs in, sees their day, switches language, logs out; repeated failures lock them out.

Each test runs in zh-hans and in en (the `lang` fixture: the browser's language)."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.helpers import goto, login, logout, screenshot, switch_language, text_in

pytestmark = pytest.mark.e2e


class TestLogin:
    def test_anonymous_visitor_is_sent_to_the_login_page_in_their_language(self, page, lang):
        goto(page, "/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("h1")).to_have_text(text_in(lang, zh="登录", en="Log in"))
        screenshot(page, "login")

    def test_rep_logs_in_and_sees_their_day(self, page, lang, org):
        login(page, org.rep_a)
        expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
        expect(page.locator("h1")).to_have_text(text_in(lang, zh="rep_a，您好", en="Good day, rep_a"))
        nav = page.locator("#main-nav .navbar-nav")
        expect(nav.locator("a.nav-link.active")).to_contain_text(text_in(lang, zh="我的一天", en="My day"))
        expect(page.locator("#my-day")).to_be_visible()
        # a rep is not an administrator: no admin or audit entries in the user menu
        page.locator("#user-menu").click()
        expect(page.locator("#logout-button")).to_be_visible()
        expect(page.locator("#audit-link")).to_have_count(0)
        page.keyboard.press("Escape")
        screenshot(page, "home-rep")

    def test_wrong_password_shows_an_error_and_stays_on_the_login_page(self, page, lang, org):
        login(page, org.rep_a, "wrong-password", expect_success=False)
        expect(page.locator("form .alert-danger, form .invalid-feedback, .alert-block").first).to_contain_text(
            text_in(lang, zh="请输入一个正确的", en="Please enter a correct username and password")
        )
        expect(page.locator("#user-menu")).to_have_count(0)

    def test_repeated_failures_lock_the_account_with_a_message(self, page, lang, org, console):
        console.allow(r"status of 429")  # the lockout page is served with 429 Too Many Requests
        for _ in range(settings.AXES_FAILURE_LIMIT):
            login(page, org.rep_a, "wrong-password", expect_success=False)
        login(page, org.rep_a, expect_success=False)  # even the right password is refused now
        locked = page.locator("#locked-out")
        expect(locked).to_be_visible()
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        expect(locked).to_contain_text(
            text_in(lang, zh="登录失败次数过多", en="Too many failed login attempts")
        )
        expect(locked).to_contain_text(str(minutes))
        screenshot(page, "lockout")


class TestLanguageAndLogout:
    def test_the_language_switcher_changes_the_page_language_and_remembers_it(self, page, lang, org):
        login(page, org.rep_a)
        other = "en" if lang == "zh-hans" else "zh-hans"
        switch_language(page, other)
        expect(page.locator("h1")).to_have_text(text_in(other, zh="rep_a，您好", en="Good day, rep_a"))
        expect(page.locator("#language-select")).to_have_value(other)
        org.rep_a.refresh_from_db()
        assert org.rep_a.language == other, "the choice is saved on the profile"
        goto(page, "accounts:profile")
        expect(page.locator("html")).to_have_attribute("lang", other)

    def test_log_out_ends_the_session(self, page, lang, org):
        login(page, org.rep_a)
        logout(page)
        expect(page.locator("#id_username")).to_be_visible()
        expect(page.locator("h1")).to_have_text(text_in(lang, zh="登录", en="Log in"))
        goto(page, "/")
        expect(page.locator("#id_username")).to_be_visible()  # back to the login page
        expect(page.locator("#user-menu")).to_have_count(0)
