"""A Dash app whose poll answers six times slower than its timer ticks, for the test of
:mod:`dashboard.polling`: ``python -m tests.browser.slow_poll_app PORT``."""
import sys
import threading
import time

from dash import Dash, Output, html

from dashboard.polling import poll_components, register_poll_callback

INTERVAL_MS, ANSWER_S, ANSWERS = 100, 0.6, 3
_lock = threading.Lock()
_state = {"answers": 0, "running": 0, "most_at_once": 0}


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


register_poll_callback("slow", [Output("slow-out", "children"), Output("slow-poll", "disabled")], [], respond,
                       at_start=True)
app = Dash(__name__)
app.layout = html.Div([*poll_components("slow", INTERVAL_MS), html.Div("waiting", id="slow-out")])

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=False)
