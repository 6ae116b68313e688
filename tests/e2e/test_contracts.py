"""Contracts in a real browser: a rep drafts a contract from a deal in its last open stage, with two line
items (the second added by the form's script) and a payment plan, submits it; the manager approves it
from the detail page; the rep records the signing with the scan, which wins the deal; the rep's dashboard
counts the won deal and the signed revenue; the printable contract opens. No console error (CSP)
anywhere."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from contracts.models import Contract, ContractStatus
from tests.contracts.factories import PDF_BYTES, days
from tests.e2e.helpers import goto, login, logout, screenshot, text_in
from tests.factories import CustomerFactory
from tests.opportunities.factories import advance_to, make_opportunity, open_stages

pytestmark = pytest.mark.e2e


def test_draft_approve_sign_win_dashboard_print(page, lang, org, tmp_path, settings):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    customer = CustomerFactory(owner=org.rep_a, name="上海示例科技有限公司")
    deal = make_opportunity(org.rep_a, customer=customer, complete=True, amount="2600.00",
                            title="年度软件服务 Annual software service")
    deal = advance_to(deal, open_stages()[-1])
    login(page, org.rep_a)
    goto(page, "opportunities:detail", deal.pk)
    with page.expect_navigation():
        page.locator("#contracts-panel a[href*='/contracts/new/']").click()
    expect(page.locator("#contract-form [name=opportunity]")).to_have_value(str(deal.pk))
    expect(page.locator("[name=lines-0-unit_price]")).to_have_value("2600.00")
    page.fill("[name=title]", "年度软件服务 Annual software service")
    page.fill("[name=lines-0-name]", "CRM 许可 Licence")
    page.fill("[name=lines-0-quantity]", "2")
    page.fill("[name=lines-0-unit_price]", "1000")
    page.fill("[name=lines-0-tax_rate]", "0")
    page.locator("[data-add-row=lines]").click()
    expect(page.locator("[name=lines-1-name]")).to_be_visible()
    page.fill("[name=lines-1-name]", "实施 Implementation")
    page.fill("[name=lines-1-unit_price]", "500")
    page.fill("[name=lines-1-tax_rate]", "0")
    page.fill("[name=plan-0-due_date]", days(10).isoformat())
    page.fill("[name=plan-0-amount]", "1500")
    page.locator("[data-add-row=plan]").click()
    page.fill("[name=plan-1-due_date]", days(40).isoformat())
    page.fill("[name=plan-1-amount]", "1000")
    # (no full-page screenshot right before the click: it leaves Playwright with stale coordinates)
    with page.expect_navigation():
        page.locator("#contract-form button[type=submit]").click()
    contract = Contract.objects.get()
    assert contract.total_amount == Decimal("2500.00") and contract.instalments.count() == 2
    assert contract.opportunity_id == deal.pk
    expect(page.locator("h1")).to_contain_text(contract.number)
    with page.expect_navigation():
        page.locator("[data-action=submit]").click()
    expect(page.locator(".contract-status")).to_contain_text(text_in(lang, zh="审批中", en="In review"))
    logout(page)

    login(page, org.manager_a)
    goto(page, "contracts:review_queue")
    expect(page.locator("#review-table")).to_contain_text(contract.number)
    goto(page, "contracts:detail", contract.pk)
    page.locator("[data-action=approve]").click()
    page.fill("#form-approve textarea", "同意 OK")
    with page.expect_navigation():
        page.locator("#form-approve button[type=submit]").click()
    expect(page.locator(".contract-status")).to_contain_text(text_in(lang, zh="已批准", en="Approved"))
    expect(page.locator("#approvals")).to_contain_text("同意 OK")
    logout(page)

    login(page, org.rep_a)
    goto(page, "contracts:sign", contract.pk)
    page.fill("[name=our_signatory]", "张伟")
    page.fill("[name=customer_signatory]", "李明")
    page.set_input_files("[name=scan]", files=[{"name": "签字版.pdf", "mimeType": "application/pdf",
                                                 "buffer": PDF_BYTES}])
    with page.expect_navigation():
        page.locator("#sign-form button[type=submit]").click()
    expect(page.locator(".contract-status")).to_contain_text(text_in(lang, zh="已签订", en="Signed"))
    expect(page.locator("#attachments")).to_contain_text("签字版.pdf")
    expect(page.locator("#receipt-form")).to_be_visible()
    screenshot(page, "contract-detail-signed")
    contract.refresh_from_db()
    assert contract.status == ContractStatus.SIGNED

    # signing won the deal, in the same transaction
    goto(page, "opportunities:detail", deal.pk)
    expect(page.locator("#stage-path [aria-current=step]")).to_have_text(text_in(lang, zh="赢单", en="Won"))
    expect(page.locator("#contracts-panel")).to_contain_text(contract.number)
    expect(page.locator("#opportunity-activities")).to_be_visible()
    screenshot(page, "opportunity-won")
    deal.refresh_from_db()
    assert deal.stage.is_won and deal.closed_at is not None

    # the rep's dashboard for this month: the deal's amount won, the contract's total signed
    goto(page, "dashboards:mine")
    expect(page.locator("#section-forecast tbody tr").first).to_contain_text("2600.00")
    month = contract.signed_on.strftime("%Y-%m")
    expect(page.locator("#section-revenue tbody tr", has_text=month)).to_contain_text("2500.00")
    expect(page.locator("#section-cycle")).to_contain_text(month)
    screenshot(page, "dashboard-mine-won")

    page.goto(f"/contracts/{contract.pk}/print/?lang={lang}")
    expect(page.locator("h1")).to_contain_text(text_in(lang, zh="销售合同", en="Sales contract"))
    screenshot(page, "contract-print")


def test_contract_list_filters(page, lang, org):
    login(page, org.manager_a)
    goto(page, "contracts:list")
    page.check("#id_overdue")
    with page.expect_navigation():
        page.locator("#contract-filters button[type=submit]").click()
    expect(page.locator("#contract-table")).to_be_visible()
    screenshot(page, "contract-list")
