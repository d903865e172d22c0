"""Fixtures: a real app process and a real headless Debian Chromium (never a downloaded one)."""
import pytest

from tests.browser.support import running_app
from tests.support import require_program

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]


@pytest.fixture(scope="module")
def app_server(zoo_dir, tmp_path_factory):
    with running_app(zoo_dir, tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    chromium = require_program("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context; fails the test on any console error or page error, except those
    containing a text the test lists in ``page.allowed_errors`` (e.g. an HTTP status it provokes)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.allowed_errors = []
    yield page
    context.close()
    errors = [e for e in errors if not any(allowed in e for allowed in page.allowed_errors)]
    assert errors == [], f"browser console errors: {errors}"
