"""A Dash app for the browser test of :mod:`dashboard.polling`: one poll answers six times
slower than its timer ticks; another loses its first answer to a server error and gives that
tick up after ``LOST_STALE_MS``. Run as ``python -m tests.browser.slow_poll_app PORT slow|lost``."""
import sys
import threading
import time

from dash import Dash, Output, html

from dashboard.polling import poll_components, register_poll_callback

INTERVAL_MS, ANSWER_S, ANSWERS = 100, 0.6, 3
LOST_STALE_MS = 1_500
_lock = threading.Lock()
_state = {"answers": 0, "running": 0, "most_at_once": 0, "lost_calls": 0}


def respond():
    with _lock:
        _state["running"] += 1
        _state["most_at_once"] = max(_state["most_at_once"], _state["running"])
    time.sleep(ANSWER_S)
    with _lock:
        _state["running"] -= 1
        _state["answers"] += 1
        done = _state["answers"] >= ANSWERS
        return f"answer {_state['answers']}, at most {_state['most_at_once']} at once", done


def respond_after_a_lost_answer():
    with _lock:
        _state["lost_calls"] += 1
        if _state["lost_calls"] == 1:
            raise RuntimeError("the first answer is lost")
        return f"answered call {_state['lost_calls']}", True


def app_with(poll: str) -> Dash:
    """The app showing the poll named ``slow`` or ``lost``."""
    respond_to = {"slow": (respond, {}), "lost": (respond_after_a_lost_answer, {"stale_ms": LOST_STALE_MS})}
    answer, options = respond_to[poll]
    register_poll_callback(poll, [Output(f"{poll}-out", "children"), Output(f"{poll}-poll", "disabled")], [],
                           answer, at_start=True, **options)
    app = Dash(__name__)
    app.layout = html.Div([*poll_components(poll, INTERVAL_MS), html.Div("waiting", id=f"{poll}-out")])
    return app


if __name__ == "__main__":
    app_with(sys.argv[2]).run(host="127.0.0.1", port=int(sys.argv[1]), debug=False)
