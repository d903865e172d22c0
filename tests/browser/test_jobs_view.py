"""The Jobs page in headless Chromium: jobs started by the model page are listed with their
state, a queued and a running one are cancelled from it, and failed ones show why.

Each test has its own app and cache, so its jobs really compute (the model page's MDS job
extracts and compares the whole zoo), one at a time in the app's single worker.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import AppServer

WAIT_MS = 240_000


@pytest.fixture
def app(zoo_dir, tmp_path):
    server = AppServer(tmp_path / "cache", zoo_dir, tmp_path)
    server.start()
    yield server
    server.stop()


def _start_job(page, url):
    """Open a model-page URL and wait until its job is queued or running."""
    page.goto(url)
    page.wait_for_selector("#model-space-progress .status-running", timeout=WAIT_MS)


def _row(page, what):
    return page.locator(".job-row", has_text=what)


def test_queued_and_running_jobs_are_listed_and_cancelled(app, page):
    _start_job(page, app.url + "/")
    _start_job(page, app.url + "/?compare=kendall_tau_a")  # queued behind the first
    page.goto(app.url + "/jobs")
    running = _row(page, "mds smacof of model_rdm spearman of")
    queued = _row(page, "mds smacof of model_rdm kendall_tau_a of")
    expect(running).to_have_class(re.compile(r"\bjob-running\b"), timeout=WAIT_MS)
    expect(queued).to_have_class(re.compile(r"\bjob-queued\b"))
    expect(queued.locator(".job-state")).to_have_text("queued")

    queued.locator(".job-cancel").click()
    expect(queued).to_have_class(re.compile(r"\bjob-cancelled\b"), timeout=WAIT_MS)
    expect(queued.locator(".job-message")).to_have_text("cancelled before it started")
    running.locator(".job-cancel").click()  # it stops before its next step
    expect(page.locator("#jobs-note")).to_contain_text("Asked job")
    expect(running).to_have_class(re.compile(r"\bjob-cancelled\b"), timeout=WAIT_MS)
    expect(running.locator(".job-message")).to_have_text("cancelled")
    assert page.locator(".job-cancel").count() == 0  # nothing left to cancel
    assert page.locator(".alert-error").count() == 0


def test_jobs_a_restart_interrupted_are_failed_with_the_reason(app, page):
    _start_job(page, app.url + "/?compare=kendall_tau_a")
    page.goto("about:blank")  # no page polling the app while it is down
    app.stop()
    app.start()
    page.goto(app.url + "/jobs")
    failed = _row(page, "mds smacof of model_rdm kendall_tau_a of")
    expect(failed).to_have_class(re.compile(r"\bjob-failed\b"), timeout=WAIT_MS)
    expect(failed.locator(".job-message .alert-error")).to_contain_text("interrupted by a restart of the app")
    assert failed.locator(".job-cancel").count() == 0
    assert page.locator("nav").get_by_text("Jobs").count() == 1


def test_a_view_cancels_its_own_running_job(app, page):
    """Every computed view shows Cancel beside its progress; pressing it cancels the jobs the
    view waits for (planned again on the server) and the view says so."""
    _start_job(page, app.url + "/")
    page.click("#model-space-cancel")
    page.wait_for_selector("#model-space-progress:has-text('cancelled')", timeout=WAIT_MS)
    assert page.locator("#model-space-cancel").count() == 0  # nothing left to cancel
    page.goto(app.url + "/jobs")
    expect(_row(page, "mds smacof of model_rdm spearman of")).to_contain_text("cancelled", timeout=WAIT_MS)
