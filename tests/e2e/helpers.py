"""Steps shared by the browser scenarios. Write scenarios with these so that they read as a user's story.

    def test_rep_creates_a_customer(page, org):
        login(page, org.rep_a)
        goto(page, "leads:customer_create")
        fill_form(page, {"name": "上海示例科技有限公司", "phone": "13800000000"})
        submit(page)
        expect(page.locator(".alert-warning")).to_contain_text(...)   # the duplicate warning
        screenshot(page, "customer-create-duplicate")

The other scenarios use the same steps: the kanban drag (`drag_to`), HTMX forms such as quick-log
(`wait_for_htmx`), the public web-to-lead form (`goto` without `login`), and the notification bell after
the reminder scan has run with the real task code (`deliver_due_reminders`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def url(name: str, *args: Any, **kwargs: Any) -> str:
    """A path from a URL name, relative to the live server (the page's base URL)."""
    return reverse(name, args=args or None, kwargs=kwargs or None)


def goto(page: Page, name_or_path: str, *args: Any, **kwargs: Any) -> None:
    """Open a page by URL name (`"accounts:profile"`) or path (`"/admin/"`) and wait until it is loaded."""
    path = name_or_path if name_or_path.startswith("/") else url(name_or_path, *args, **kwargs)
    page.goto(path)
    page.wait_for_load_state("load")


def page_language(page: Page) -> str:
    return page.evaluate("document.documentElement.lang")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as artifacts/screenshots/<name>.<language>.png (a test artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.{page_language(page)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Page, user, password: str | None = None, *, expect_success: bool = True) -> None:
    """Log in through the login form, as a person would."""
    goto(page, "accounts:login")
    page.fill("#id_username", user if isinstance(user, str) else user.get_username())
    page.fill("#id_password", password or settings.CRM_DEMO_PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit]").click()
    if expect_success:
        expect(page.locator("#user-menu")).to_be_visible()


def logout(page: Page) -> None:
    """Open the user menu and log out."""
    page.locator("#user-menu").click()
    with page.expect_navigation():
        page.locator("#logout-button").click()


def switch_language(page: Page, language: str) -> None:
    """Choose a language in the header switcher (the page reloads in it)."""
    with page.expect_navigation():
        page.select_option("#language-select", language)
    expect(page.locator("html")).to_have_attribute("lang", language)


def fill_form(page: Page, values: dict[str, Any], *, form: str = "form") -> None:
    """Fill fields by name: text inputs and textareas are typed, selects chosen, checkboxes set."""
    for name, value in values.items():
        field = page.locator(f"{form} [name={name!r}]").first
        tag = field.evaluate("el => el.tagName.toLowerCase() + ':' + (el.type || '')")
        if tag.startswith("select"):
            field.select_option(str(value))
        elif tag.endswith(":checkbox"):
            field.set_checked(bool(value))
        else:
            field.fill(str(value))


def submit(page: Page, button: str = "form button[type=submit]") -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.locator(button).first.click()


def wait_for_htmx(page: Page) -> None:
    """Wait until no HTMX request is in flight and the swap has settled."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')"
    )


def drag_to(page: Page, source: Locator, target: Locator, *, steps: int = 12) -> None:
    """Drag with real mouse moves (SortableJS listens to pointer events, not HTML5 drag events)."""
    source.scroll_into_view_if_needed()
    start = source.bounding_box()
    end = target.bounding_box()
    assert start and end, "both elements must be visible"
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 5, start["y"] + start["height"] / 2 + 5, steps=2)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + min(end["height"] / 2, 40), steps=steps)
    page.mouse.up()


def text_in(lang: str, *, zh: str, en: str) -> str:
    """The expected text for the scenario's language."""
    return zh if lang == "zh-hans" else en


def deliver_due_reminders() -> dict:
    """Run the reminder scan as beat would, with the real task code in this process: the scan task
    collects and dispatches what is due, and the sender tasks it queues run at once (eager)."""
    from crm.celery import app
    from notifications.tasks import reminders_scan

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        return reminders_scan.apply().get()
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous
