"""A rep's working day in a real browser: creates a customer (and is warned of a likely duplicate), adds a
contact and a deal, logs a call with the quick-log form (planning the next call), drags the deal on the
kanban board two columns on (refused: one stage at a time, and the missing exit criteria are named),
fills the criteria on the deal's page, drags it to the next column (it moves), and sees the reminder of
the planned call in the notification bell once the reminder scan (the real Celery task) has run."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from activities.defaults import ensure_defaults as ensure_activity_kinds
from leads.models import Customer
from notifications.models import Notification
from opportunities.models import Opportunity
from tests.e2e.helpers import (
    deliver_due_reminders,
    drag_to,
    fill_form,
    goto,
    login,
    screenshot,
    submit,
    text_in,
    wait_for_htmx,
)
from tests.factories import CustomerFactory
from tests.opportunities.factories import default_pipeline, open_stages

pytestmark = pytest.mark.e2e


@pytest.fixture
def sales_defaults(db):
    """The seeded pipeline and activity kinds (a live-server test's flush empties what migrations seeded)."""
    ensure_activity_kinds()
    return default_pipeline()


def test_rep_customer_call_board_criteria_reminder(page, lang, org, sales_defaults):
    CustomerFactory(owner=org.rep_a, name="上海示例科技有限公司", phone="+8613800001111")
    stages = open_stages(sales_defaults)
    login(page, org.rep_a)

    # 1. a new customer much like an existing one: the form warns, names it, and saves only when told to
    goto(page, "leads:customer_create")
    fill_form(page, {"name": "上海示例科技", "phone": "138 0000 1111"}, form="#customer-form")
    page.locator("#id_email").focus()  # leaving the phone field fires the live duplicate check
    warning = page.locator("#duplicate-warning")
    expect(warning).to_contain_text("上海示例科技有限公司")
    expect(warning).to_contain_text(text_in(lang, zh="名称相同", en="same name"))
    submit(page, "#save-customer")
    expect(page.locator(".alert-warning").first).to_contain_text(
        text_in(lang, zh="该客户可能已存在", en="This customer may already exist"))
    assert not Customer.objects.filter(name="上海示例科技").exists(), "nothing saved before the confirmation"
    screenshot(page, "customer-create-duplicate")
    page.locator("#id_confirm_duplicates").check()
    submit(page, "#save-customer")
    customer = Customer.objects.get(name="上海示例科技")
    assert customer.owner == org.rep_a
    expect(page.locator("h1")).to_contain_text("上海示例科技")

    # 2. a contact and a deal for it (the deal starts in the first stage, its exit criteria still open)
    page.locator("#add-contact").click()
    fill_form(page, {"name": "王芳", "phone": "139 0000 2222"}, form="main form")
    submit(page, "main form button[type=submit]")
    contact = customer.contacts.get(name="王芳")
    goto(page, f"/opportunities/new/?customer={customer.pk}")
    fill_form(page, {"title": "CRM 年度订阅 Annual CRM", "amount": "120000"}, form="main form")
    submit(page, "main form button[type=submit]")
    deal = Opportunity.objects.get(customer=customer)
    assert deal.stage_id == stages[0].pk

    # 3. a call logged from the deal page with the quick-log form, planning the next call in 10 minutes
    #    (inside the default 30-minute reminder lead time: its reminder is due at once)
    quick_log = page.locator("#opportunity-activities .quick-log-form")
    expect(quick_log).to_be_visible()
    next_call = timezone.localtime(timezone.now() + timedelta(minutes=10))
    quick_log.locator("[name=kind]").select_option(label=text_in(lang, zh="电话", en="Call"))
    quick_log.locator("[name=subject]").fill("首次电话 First call")
    quick_log.locator("[name=next_step]").fill("回电确认预算 Call back about the budget")
    quick_log.locator("summary").click()
    quick_log.locator("[name=follow_up_at]").fill(next_call.strftime("%Y-%m-%dT%H:%M"))
    quick_log.locator("button[type=submit]").click()
    wait_for_htmx(page)
    expect(page.locator("#opportunity-activities [role=status]")).to_contain_text("首次电话 First call")
    expect(page.locator("#opportunity-activities")).to_contain_text("回电确认预算")
    screenshot(page, "opportunity-quick-log")

    # 4. the board: a drag two columns on is refused, the card snaps back, the missing criteria are named
    goto(page, "opportunities:board")
    card = page.locator(f"#card-{deal.pk}")
    column = {s.pk: page.locator(f".opp-cards[data-stage='{s.pk}']") for s in stages}
    expect(column[stages[0].pk].locator(f"#card-{deal.pk}")).to_be_visible()
    drag_to(page, card, column[stages[2].pk])
    feedback = page.locator("#move-feedback")
    expect(feedback).to_contain_text(text_in(lang, zh=stages[1].name_zh, en=stages[1].name_en))  # next stage
    for missing in (text_in(lang, zh="联系人", en="contact"), text_in(lang, zh="来源", en="source"),
                    text_in(lang, zh="确认客户有真实需求", en="Confirmed a real need")):
        expect(feedback).to_contain_text(missing, ignore_case=True)
    expect(feedback.locator("#criteria-form")).to_be_visible()
    expect(column[stages[0].pk].locator(f"#card-{deal.pk}")).to_be_visible()  # snapped back
    expect(page.locator(".opp-pending")).to_have_count(0)
    deal.refresh_from_db()
    assert deal.stage_id == stages[0].pk
    screenshot(page, "board-skip-refused")

    # 5. the criteria filled on the deal's page
    goto(page, "opportunities:detail", deal.pk)
    criteria = page.locator("#criteria-form")
    criteria.locator("[name=contact]").select_option(str(contact.pk))
    criteria.locator("[name=source]").select_option("referral")
    criteria.locator("input[type=checkbox]").check()
    submit(page, "#criteria-form button[type=submit]:not([name=advance])")
    expect(page.locator("#criteria-form")).to_have_count(0)  # nothing missing any more
    expect(page.locator("#opportunity-fields")).to_contain_text("王芳")
    expect(page.locator("#opportunity-activities")).to_contain_text("回电确认预算")
    expect(page.locator("#contracts-panel")).to_be_visible()
    screenshot(page, "opportunity-criteria-filled")

    # 6. dragged to the next column, the deal moves there and the column counts follow
    goto(page, "opportunities:board")
    drag_to(page, page.locator(f"#card-{deal.pk}"), column[stages[1].pk])
    expect(column[stages[1].pk].locator(f"#card-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#column-head-{stages[1].pk} .opp-count")).to_have_text("1")
    expect(page.locator(f"#column-head-{stages[0].pk} .opp-count")).to_have_text("0")
    expect(page.locator("#move-feedback")).to_have_count(0)
    deal.refresh_from_db()
    assert deal.stage_id == stages[1].pk
    screenshot(page, "board-advanced")

    # 7. the planned call falls due: the minute scan (the real task code) delivers it to the bell
    assert not Notification.objects.filter(user=org.rep_a).exists(), "nothing delivered before the scan"
    expect(page.locator("#notification-count")).to_have_count(0)
    deliver_due_reminders()
    assert Notification.objects.filter(user=org.rep_a).count() == 1
    page.reload()
    expect(column[stages[1].pk].locator(f"#card-{deal.pk}")).to_be_visible()  # the board, reloaded
    expect(page.locator("#notification-count")).to_have_text("1")
    with page.expect_navigation():
        page.locator("#notification-bell").click()
    reminder = page.locator("#notification-list .list-group-item").first
    expect(reminder).to_contain_text("回电确认预算")
    expect(reminder).to_contain_text(next_call.strftime("%H:%M"))
    expect(reminder).to_contain_text("上海示例科技")
    screenshot(page, "notifications-reminder")
