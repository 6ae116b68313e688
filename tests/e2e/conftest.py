"""Browser end-to-end tests: Playwright (sync API) driving Debian's chromium against pytest-django's
live server on the PostgreSQL test database.

Fixtures:
- `browser`: one headless chromium per test process (each xdist worker has its own, and its own live
  server on a free port); never downloaded: Debian's /usr/bin/chromium (`make e2e-deps`).
- `lang`: every test using `page` runs twice, in zh-hans and in en (the browser's Accept-Language).
- `page`: a fresh browser context (cookies, storage) whose base URL is the live server, so
  `page.goto("/accounts/login/")` works. The test FAILS if the page logged a console error or threw
  (a refused Content-Security-Policy, a missing static file, a JavaScript exception); a test that
  expects one says so with `console.allow(r"regex")`.
- `console`: the console watcher of the current page.

Helpers for scenarios live in tests/e2e/helpers.py (`login`, `logout`, `switch_language`,
`screenshot`, `wait_for_htmx`, `drag_to`, ...).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

# Playwright's sync API keeps an event loop running in this thread; Django refuses ORM calls from a
# thread with a running loop unless told that it is safe here (the test thread only sets up data).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Django language code -> the browser locale that asks for it (Accept-Language, navigator.language).
LOCALES = {"zh-hans": "zh-CN", "en": "en-US"}
DEFAULT_TIMEOUT_MS = 15_000
# expect() waits as long as actions do (its own default, 5 s, is short on a busy 2-core CI machine)
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)


class ConsoleWatch:
    """Collects console errors and uncaught page errors of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self._allowed: list[re.Pattern] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _on_console(self, message) -> None:
        if message.type == "error":
            location = message.location or {}
            self.errors.append(f"console error: {message.text} ({location.get('url', '')}:{location.get('lineNumber', '')})")

    def allow(self, pattern: str) -> None:
        """Expect console errors matching `pattern` (e.g. the 429 of a lockout page)."""
        self._allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self._allowed)]


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium with `make e2e-deps` (apt-get install chromium)")
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture(params=list(LOCALES), ids=list(LOCALES))
def lang(request) -> str:
    return request.param


@pytest.fixture
def _page_and_console(browser, live_server, lang):
    context = browser.new_context(
        base_url=live_server.url, locale=LOCALES[lang], viewport={"width": 1366, "height": 850},
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    watch = ConsoleWatch(page)
    yield page, watch
    problems = watch.unexpected()
    context.close()
    if problems:
        pytest.fail("the page logged errors:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def page(_page_and_console):
    return _page_and_console[0]


@pytest.fixture
def console(_page_and_console) -> ConsoleWatch:
    return _page_and_console[1]
