"""The view's poll in a real browser when the server answers slower than the timer ticks: each
answer lands (Dash would drop a response overtaken by the next tick), one request at a time,
and the answer that disables the timer stops it."""
import sys
import time
import urllib.request

import pytest

from tests.browser.slow_poll_app import ANSWERS
from tests.support import free_port, start_process, stop_process, wait_until


@pytest.fixture
def slow_app(tmp_path):
    port = free_port()
    process = start_process([sys.executable, "-m", "tests.browser.slow_poll_app", str(port)], {}, tmp_path / "app.log")
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return urllib.request.urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_until(up, 60, "the slow-poll app")
        yield url
    finally:
        stop_process(process)


def test_a_poll_slower_than_its_timer_still_draws_and_stops(slow_app, page):
    page.goto(slow_app)
    final = f"answer {ANSWERS}, at most 1 at once"
    page.wait_for_function("text => document.querySelector('#slow-out').textContent === text", arg=final,
                           timeout=60_000)
    time.sleep(1.0)  # ten more ticks of the timer, had the last answer not disabled it
    assert page.inner_text("#slow-out") == final
