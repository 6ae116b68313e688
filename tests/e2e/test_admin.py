"""An administrator's pages work under the Content-Security-Policy: Django admin, the audit log, the
API docs (any refused script or style would be a console error and fail the test)."""

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import goto, login, screenshot, text_in

pytestmark = pytest.mark.e2e


def test_admin_index(page, lang, org):
    login(page, org.admin)
    page.locator("#user-menu").click()
    with page.expect_navigation():
        page.locator(".dropdown-menu a[href='/admin/']").click()
    expect(page.locator("#site-name")).to_contain_text(text_in(lang, zh="销售", en="Sales CRM administration"))
    expect(page.locator("body")).to_contain_text(text_in(lang, zh="团队", en="Teams"))
    screenshot(page, "admin-index")


def test_admin_change_form_with_its_widgets(page, lang, org):
    login(page, org.admin)
    goto(page, "admin:accounts_user_change", org.rep_a.pk)
    expect(page.locator("#id_username")).to_have_value("rep_a")
    screenshot(page, "admin-user-change")


def test_audit_log_lists_a_change_made_in_the_admin(page, lang, org):
    login(page, org.admin)
    goto(page, "admin:accounts_team_change", org.team_b.pk)
    page.fill("#id_name", "Team B <East>")
    with page.expect_navigation():
        page.locator("input[name=_save]").click()
    goto(page, "home")
    page.locator("#user-menu").click()
    with page.expect_navigation():
        page.locator("#audit-link").click()
    expect(page.locator("h1")).to_contain_text(text_in(lang, zh="审计日志", en="Audit log"))
    first = page.locator("#audit-table tbody tr.audit-entry").first
    expect(first).to_contain_text("Team B <East>")
    expect(first).to_contain_text("admin")
    page.select_option("#id_kind", "+")
    with page.expect_navigation():
        page.locator("#audit-filters button[type=submit]").click()
    expect(page.locator("#audit-table tbody tr.audit-entry").first).to_contain_text(
        text_in(lang, zh="新建", en="created"))
    screenshot(page, "audit-log")


def test_api_docs_load_without_csp_violations(page, lang, org):
    login(page, org.admin)
    goto(page, "api-docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Sales CRM API")
    screenshot(page, "api-docs")


def test_stage_renamed_and_reordered_in_the_admin_shows_on_the_board(page, lang, org):
    """An administrator renames the proposal stage and moves it before needs analysis, in the pipeline's
    stage table in Django admin; the board's columns follow (names in the page language)."""
    from opportunities.models import Stage
    from tests.opportunities.factories import default_pipeline

    pipeline = default_pipeline()
    proposal = pipeline.stages.get(code="proposal")
    needs = pipeline.stages.get(code="needs_analysis")
    login(page, org.admin)
    goto(page, "admin:opportunities_pipeline_change", pipeline.pk)
    name_zh = page.locator(f"input[name$='-name_zh'][value='{proposal.name_zh}']")
    prefix = name_zh.get_attribute("name").removesuffix("name_zh")
    name_zh.fill("方案与演示")
    page.fill(f"[name='{prefix}name_en']", "Proposal & demo")
    page.fill(f"[name='{prefix}order']", str(needs.order - 5))
    screenshot(page, "admin-pipeline-stages")
    with page.expect_navigation():
        page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    proposal = Stage.objects.get(pk=proposal.pk)
    assert (proposal.name_zh, proposal.name_en, proposal.order) == ("方案与演示", "Proposal & demo", needs.order - 5)

    goto(page, "opportunities:board")
    titles = page.locator("#board .opp-column h2")
    expected = [text_in(lang, zh=s.name_zh, en=s.name_en) for s in pipeline.stages.order_by("order", "id")]
    assert expected[1] == text_in(lang, zh="方案与演示", en="Proposal & demo")
    expect(titles).to_have_text(expected)
    screenshot(page, "board-after-admin-reorder")
