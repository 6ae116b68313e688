"""The public web-to-lead form in a real browser: a visitor leaves their details (a bot filling the hidden
honeypot field creates nothing), the lead lands in the team's lead pool (公海), a rep of the team claims
it and it becomes theirs."""

import secrets

import pytest
from playwright.sync_api import expect

from leads.models import Customer, WebAssignment
from tests.e2e.helpers import fill_form, goto, login, screenshot, submit, text_in
from tests.leads.factories import channel

pytestmark = pytest.mark.e2e


@pytest.fixture
def web_channel(org):
    """The website's form, feeding Team A's pool."""
    return channel("website", name="Website registration", web_enabled=True, web_team=org.team_a,
                   web_assignment=WebAssignment.POOL, is_active=True)


@pytest.fixture
def visitor_address(page, settings) -> str:
    """A fresh client address for this test: the hourly per-address limit of the form counts in Redis
    across runs, and every browser test comes from 127.0.0.1. Behind one trusted proxy the address is
    the one it forwards, so the page sends it as X-Forwarded-For."""
    settings.CRM_TRUSTED_PROXY_COUNT = 1
    address = f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    page.set_extra_http_headers({"X-Forwarded-For": address})
    return address


def test_web_lead_lands_in_the_pool_and_a_rep_claims_it(page, lang, org, web_channel, visitor_address, console):
    console.allow(r"status of 400")  # the form with its errors is served with 400 Bad Request
    form_path = f"/customers/web/{web_channel.web_token}/"

    # a bot fills every field, the hidden honeypot too: it is thanked, and nothing is created
    goto(page, form_path)
    page.locator("#id_homepage").evaluate("(el, v) => { el.value = v; }", "https://spam.example")
    fill_form(page, {"contact_name": "Bot", "email": "bot@spam.example"}, form="#web-lead-form")
    submit(page, "#web-lead-form button[type=submit]")
    expect(page.locator("#thanks")).to_be_visible()
    assert not Customer.objects.exists()

    # a person forgets how to be reached: told so in their language, what they typed is kept
    goto(page, form_path)
    expect(page.locator("h1")).to_have_text(text_in(lang, zh="联系我们", en="Contact us"))
    fill_form(page, {"company": "杭州青禾教育科技有限公司", "contact_name": "林静"}, form="#web-lead-form")
    submit(page, "#web-lead-form button[type=submit]")
    expect(page.locator("#form-errors")).to_contain_text(
        text_in(lang, zh="请留下电话或邮箱", en="Give a phone number or an email address"))
    expect(page.locator("#id_company")).to_have_value("杭州青禾教育科技有限公司")
    fill_form(page, {"phone": "138 0000 1234", "message": "想了解私有化部署 On-premises?"}, form="#web-lead-form")
    screenshot(page, "web-to-lead-form")
    submit(page, "#web-lead-form button[type=submit]")
    expect(page.locator("#thanks")).to_have_text(text_in(lang, zh="谢谢", en="Thank you"))
    screenshot(page, "web-to-lead-thanks")
    lead = Customer.objects.get()
    assert (lead.owner, lead.team, lead.source) == (None, org.team_a, web_channel)

    # the team's rep finds it in the lead pool and claims it
    login(page, org.rep_a)
    with page.expect_navigation():
        page.locator("#main-nav a[href='/customers/pool/']").click()
    row = page.locator("#pool tbody tr", has_text="杭州青禾教育科技有限公司")
    expect(row).to_contain_text(text_in(lang, zh="官网注册", en="Website registration"))
    screenshot(page, "lead-pool")
    with page.expect_navigation():
        row.locator(f"[data-claim='{lead.pk}']").click()
    expect(page.locator(".alert-success")).to_contain_text("杭州青禾教育科技有限公司")
    expect(page.locator("#pool")).not_to_contain_text("杭州青禾教育科技有限公司")
    lead.refresh_from_db()
    assert lead.owner == org.rep_a

    # it is now among the rep's own customers, with the visitor as its contact
    page.goto(f"/customers/?owner=me&q={lead.name}")
    expect(page.locator("#customer-table")).to_contain_text("杭州青禾教育科技有限公司")
    goto(page, "leads:customer_detail", lead.pk)
    expect(page.locator("#contacts")).to_contain_text("林静")
    expect(page.locator("#needs")).to_contain_text("想了解私有化部署")
    expect(page.locator("#claim")).to_have_count(0)
    screenshot(page, "lead-claimed")
