"""The view's poll in a real browser when the server answers slower than the timer ticks: each
answer lands (Dash would drop a response overtaken by the next tick), one request at a time,
and the answer that disables the timer stops it; an answer lost to a server error holds the poll
up only until its tick goes stale."""
import sys
import time
import urllib.request

import pytest

from tests.browser.slow_poll_app import ANSWERS
from tests.support import free_port, start_process, stop_process, wait_until


# The element may not exist yet: Dash draws its layout after the page has loaded.
SHOWS = "([id, text]) => { const el = document.getElementById(id); return !!el && el.textContent === text; }"


@pytest.fixture
def poll_app(tmp_path):
    """Start the test app with the named poll (see tests/browser/slow_poll_app.py); its URL."""
    processes = []

    def start(poll):
        port = free_port()
        processes.append(start_process([sys.executable, "-m", "tests.browser.slow_poll_app", str(port), poll], {},
                                       tmp_path / f"{poll}.log"))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: up(url), 60, f"the {poll}-poll app")
        return url

    try:
        yield start
    finally:
        for process in processes:
            stop_process(process)


def up(url):
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def test_a_poll_slower_than_its_timer_still_draws_and_stops(poll_app, page):
    page.goto(poll_app("slow"))
    final = f"answer {ANSWERS}, at most 1 at once"
    page.wait_for_function(SHOWS, arg=["slow-out", final], timeout=60_000)
    time.sleep(1.0)  # ten more ticks of the timer, had the last answer not disabled it
    assert page.inner_text("#slow-out") == final


def test_a_lost_answer_is_given_up_and_the_poll_goes_on(poll_app, page):
    page.allowed_errors = ["500", "Callback error updating"]  # the lost answer, as the browser reports it
    page.goto(poll_app("lost"))
    page.wait_for_function(SHOWS, arg=["lost-out", "answered call 2"], timeout=60_000)
