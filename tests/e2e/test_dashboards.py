"""A manager opens the team dashboard: every chart is drawn by Chart.js (no console error, so no CSP
refusal or missing file), each beside its table; the monthly review prints."""

import pytest
from playwright.sync_api import expect

from tests.dashboards.factories import DataSet
from tests.e2e.helpers import goto, login, screenshot, text_in

pytestmark = pytest.mark.e2e


class TestTeamDashboard:
    def test_manager_sees_charts_and_tables(self, page, lang, org):
        from datetime import date
        from decimal import Decimal

        from dashboards.models import Target

        DataSet(org)
        Target.objects.create(user=org.rep_a, month=date(2026, 3, 1), signed_revenue=Decimal("2000"))
        login(page, org.manager_a)
        page.goto("/dashboards/?period=custom&from=2026-03-01&to=2026-03-31")
        page.wait_for_load_state("load")
        expect(page.locator("h1")).to_have_text(text_in(lang, zh="团队仪表盘", en="Team dashboard"))
        expect(page.locator("#section-revenue table")).to_contain_text("1000.00")
        canvases = page.locator("canvas[data-chart]")
        assert canvases.count() >= 10
        drawn = page.evaluate(
            "Array.from(document.querySelectorAll('canvas[data-chart]')).every(c => Chart.getChart(c) !== undefined)"
        )
        assert drawn
        expect(page.locator("#section-targets .progress-bar").first).to_have_text("50%")
        screenshot(page, "dashboard-team")

    def test_monthly_review_has_a_print_button(self, page, lang, org):
        DataSet(org)
        login(page, org.manager_a)
        goto(page, "/dashboards/review/?month=2026-03")
        expect(page.locator("#review-metrics")).to_contain_text("1000")
        page.evaluate("window.print = () => { document.body.dataset.printed = '1'; }")
        page.locator("[data-print]").click()
        expect(page.locator("body")).to_have_attribute("data-printed", "1")
        screenshot(page, "dashboard-review")
