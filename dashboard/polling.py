"""A poll that never outruns the server: a ``dcc.Interval`` ticks, but a tick reaches the
server only once the previous one was answered.

Dash drops the response of a callback that is fired again before it returned
(plotly/dash#941, #1769), so a plain Interval whose callback takes longer than one interval
never updates the page, nor can it disable itself: on a busy server a view whose figures take
longer than a tick to draw would poll forever and never show them. Here the Interval drives a
client-side gate that writes ``<prefix>-tick`` only when ``<prefix>-answered`` holds the last
tick (or it is older than ``stale_ms``, ``STALE_MS`` by default: an answer lost to a server error
or restart is not waited for forever), and the server callback answers each tick.
"""
from __future__ import annotations

from typing import Callable

from dash import Input, Output, State, callback, clientside_callback, dcc, no_update

STALE_MS = 30_000

_GATE_JS = """function (_, tick, answered) {
    const now = Date.now();
    if (tick && answered !== tick.n && now - tick.at < %d) {
        return window.dash_clientside.no_update;
    }
    return {n: tick ? tick.n + 1 : 1, at: now};
}"""


def poll_components(prefix: str, interval_ms: int, disabled: bool = False) -> list:
    """The timer ``<prefix>-poll`` (enable or disable it as any Interval) and the gate's stores."""
    return [dcc.Interval(id=f"{prefix}-poll", interval=interval_ms, disabled=disabled),
            dcc.Store(id=f"{prefix}-tick"), dcc.Store(id=f"{prefix}-answered")]


def register_poll_callback(prefix: str, outputs: list[Output], states: list[State], respond: Callable[..., tuple],
                           at_start: bool = False, stale_ms: int = STALE_MS) -> None:
    """Call ``respond(*state values)`` on each answered tick, its values going to ``outputs``;
    with ``at_start`` the first call comes as the page is drawn, not one interval later; a tick
    left unanswered for ``stale_ms`` is given up and the next one sent."""
    clientside_callback(_GATE_JS % int(stale_ms), Output(f"{prefix}-tick", "data"),
                        Input(f"{prefix}-poll", "n_intervals"), State(f"{prefix}-tick", "data"),
                        State(f"{prefix}-answered", "data"), prevent_initial_call=not at_start)

    @callback(*outputs, Output(f"{prefix}-answered", "data"), Input(f"{prefix}-tick", "data"), *states,
              prevent_initial_call=True)
    def _answer(tick, *values):
        return (*respond(*values), tick["n"] if tick else no_update)
