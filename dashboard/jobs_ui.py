"""The submit-and-poll pattern every view shares: artifacts asked of the job backend, a
``dcc.Interval`` polling their status, and the view's figures drawn once they are all there.

A view calls :func:`job_components` in its layout and, once at import, :func:`register_submit`
with its control inputs and a pure ``plan`` function (which artifacts, and the URL state) and
:func:`register_poll` with its figure outputs and a pure ``draw`` function.
Component ids: ``<prefix>-job`` (the job record), ``<prefix>-poll``, ``<prefix>-progress``.
"""
from __future__ import annotations

from typing import Callable, Mapping

from dash import Input, Output, State, callback, dcc, html, no_update
from flask import has_request_context, request

from compute.engine import artifacts
from compute.engine.limits import LimitExceeded
from dashboard import services
from dashboard.share import job_arrays, register_share, share_components
from dashboard.widgets import describe_status, progress_area

POLL_MS = 400
_FINISHED = ("failed", "cancelled")


def _client() -> str | None:
    """Who asks, for the per-client job cap: the remote address of the current request."""
    return request.remote_addr if has_request_context() else None


def job_components(prefix: str) -> list:
    """The progress line, the share bar (copy link, download data, show code), the job record
    and the poll timer of one view."""
    return [progress_area(prefix), share_components(prefix), dcc.Store(id=f"{prefix}-job"),
            dcc.Interval(id=f"{prefix}-poll", interval=POLL_MS, disabled=True)]


def view_page(prefix: str, title: str, controls: list, hint: str, figures: list[str], more=()) -> html.Div:
    """The page every computed view shares: a panel of controls ending in a hint, then the job's
    progress and one graph per name in ``figures`` (id ``<prefix>-<name>``), then ``more``."""
    graphs = [dcc.Graph(id=f"{prefix}-{name}", className="figure") for name in figures]
    return html.Div(
        [html.Div([html.H2(title), *controls, html.P(hint, className="hint")], className="panel"),
         html.Div([*job_components(prefix), html.Div(graphs, className="figures"), *more], className="main")],
        className="view",
    )


def start(specs: Mapping[str, artifacts.Spec], targets, context: dict | None = None) -> dict:
    """Submit the ``targets`` (names in ``specs``; their inputs come with them) and return the
    job record the poll reads: every named spec, the targets, and the view's ``context``.

    A backend that is down, or a job over the client's cap or the memory budget, gives a record
    with ``error`` (shown by the poll), never an exception.
    """
    try:
        for name in targets:
            services.backend().submit(specs[name], client=_client())
    except (RuntimeError, LimitExceeded) as error:  # say why, keep the page alive
        return {"error": str(error)}
    return {"specs": {name: spec.to_json() for name, spec in specs.items()}, "targets": list(targets),
            "context": context or {}}


def combined_status(statuses: list[dict]) -> dict:
    """One status for several jobs: failed/cancelled if any is, done when all are, otherwise
    running at their mean progress with the message of the first one not done."""
    for status in statuses:
        if status["state"] in _FINISHED:
            return status
    pending = [s for s in statuses if s["state"] != "done"]
    if not pending:
        return {"state": "done", "progress": 1.0, "message": "done"}
    progress = sum(float(s.get("progress") or 0.0) if s["state"] != "done" else 1.0 for s in statuses)
    return {**pending[0], "progress": progress / len(statuses)}


def poll(job: dict | None, n_figures: int, draw: Callable[[dict, dict], tuple]) -> tuple:
    """What the poll callback returns: ``n_figures`` figures (or no_update), the progress line,
    and whether to stop polling. ``draw(context, arrays)`` gets every named spec's array."""
    unchanged = (no_update,) * n_figures
    if not job:
        return (*unchanged, no_update, True)
    if "error" in job:
        return (*unchanged, describe_status({"state": "failed", "message": job["error"]}), True)
    backend = services.backend()
    specs = {name: artifacts.Spec.from_json(data) for name, data in job["specs"].items()}
    status = combined_status([backend.status(specs[name].key) for name in job["targets"]])
    if status["state"] != "done":
        return (*unchanged, describe_status(status), status["state"] in _FINISHED)
    arrays = job_arrays(job)
    if arrays is None:  # evicted between status and read
        for name in job["targets"]:
            backend.submit(specs[name], client=_client())
        return (*unchanged, "recomputing an evicted result…", False)
    figures = draw(job["context"], arrays)
    return (*figures, describe_status(status), True)


def register_poll(prefix: str, outputs: list[Output], draw: Callable[[dict, dict], tuple],
                  code: Callable[[dict], str] | None = None) -> None:
    """The view's poll callback: on each tick, the job's progress, then its figures; and its
    share callbacks (see :mod:`dashboard.share`), with ``code(context)`` the "Show code" snippet."""
    register_share(prefix, code)

    @callback(
        *outputs,
        Output(f"{prefix}-progress", "children"),
        Output(f"{prefix}-poll", "disabled", allow_duplicate=True),
        Input(f"{prefix}-poll", "n_intervals"),
        State(f"{prefix}-job", "data"),
        prevent_initial_call=True,
    )
    def _poll(_, job):
        return poll(job, len(outputs), draw)


def register_submit(prefix: str, inputs: list[Input], plan: Callable[..., tuple]) -> None:
    """The view's submit callback: on any control change, ``plan(*values)`` returns
    ``(specs, targets, context, search)``; the targets are submitted, polling starts and the
    URL query string becomes ``search``. Several views write the URL, hence the duplicate."""

    @callback(
        Output(f"{prefix}-job", "data"),
        Output(f"{prefix}-poll", "disabled"),
        Output("url", "search", allow_duplicate=True),
        *inputs,
        prevent_initial_call="initial_duplicate",
    )
    def _submit(*values):
        specs, targets, context, search = plan(*values)
        return start(specs, targets, context), False, search
