"""Jobs: running and recent background jobs, with their progress, a cancel button each, and the
message of those that failed.

The table is rebuilt from the backend's job records every ``POLL_MS``; :func:`rows` turns the
records into what a row shows and :func:`table` draws them.
"""
from __future__ import annotations

import time
from typing import Mapping

import dash_mantine_components as dmc
from dash import ALL, Input, Output, callback, ctx, html, no_update

from compute.engine.kinds import describe
from compute.engine.records import ACTIVE
from dashboard import services
from dashboard.polling import poll_components, register_poll_callback
from dashboard.widgets import notice, page_frame

PATH = "/jobs"
TITLE = "Jobs"
SELECTION = ()  # the parts of the selection panel it reads (none: no panel)
_ID = "jobs"

POLL_MS = 1000
LIMIT = 50
COLUMNS = ("What", "State", "Progress", "Message", "Submitted", "Run time", "")


def _duration(seconds: float) -> str:
    """ "4 s", "12 min", "3 h", "2 d": the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit}"
    return f"{max(seconds, 0.0):.0f} s"


def rows(jobs: list[dict], names: Mapping[str, str], now: float) -> list[dict]:
    """What each row shows for ``jobs`` (records of :meth:`Backend.jobs`, newest first), at
    time ``now``: queued and running jobs first, then the ended ones, each newest first.

    A row has ``key``, ``what`` (:func:`compute.engine.kinds.describe`), ``state``, ``progress`` in [0, 1],
    ``message``, ``submitted`` ("12 s ago"), ``took`` (run time so far or in all; "" before it
    starts) and ``cancellable`` (queued or running).
    """
    out = []
    for job in sorted(jobs, key=lambda job: job.get("state") not in ACTIVE):  # stable: keeps newest first
        state = job.get("state") or "missing"
        started, finished = job.get("started"), job.get("finished")
        out.append({
            "key": job["key"],
            "what": describe(job["spec"], names) if job.get("spec") else job.get("kind") or "?",
            "state": state,
            "progress": min(max(float(job.get("progress") or 0.0), 0.0), 1.0),
            "message": job.get("message") or state,
            "submitted": f"{_duration(now - job['submitted'])} ago" if job.get("submitted") else "",
            "took": _duration((finished or now) - started) if started and (finished or state == "running") else "",
            "cancellable": state in ACTIVE,
        })
    return out


def _row(row: dict) -> html.Tr:
    message = row["message"]
    if row["state"] == "failed":
        message = notice(message)
    cancel = dmc.Button("Cancel", id={"type": "jobs-cancel", "key": row["key"]}, n_clicks=0, size="compact-sm",
                        variant="default", className="job-cancel") if row["cancellable"] else ""
    return html.Tr(
        [html.Td(row["what"], title=row["key"]),
         html.Td(row["state"], className="job-state"),
         html.Td([html.Progress(value=str(round(row["progress"], 3)), max="1", className="job-progress"),
                  f" {100 * row['progress']:.0f} %"], className="job-progress-cell"),
         html.Td(message, className="job-message"),
         html.Td(row["submitted"]), html.Td(row["took"]), html.Td(cancel)],
        className=f"job-row job-{row['state']}",
    )


def table(shown: list[dict]) -> html.Table | html.P:
    """The jobs table for :func:`rows`, or a line saying there are none."""
    if not shown:
        return html.P("No jobs yet: opening a view that computes something starts one.", className="hint")
    return html.Table([html.Thead(html.Tr([html.Th(name) for name in COLUMNS])),
                       html.Tbody([_row(row) for row in shown])], className="jobs-table")


def layout(search: str | None = None, selection=None) -> html.Div:
    hint = f"The {LIMIT} most recent jobs, running and queued ones first; refreshed every second."
    return page_frame([html.H2(TITLE), html.P(hint, className="hint")],
                      [html.Div(id=f"{_ID}-note", className="progress-area"),
                       html.Div(id=f"{_ID}-table", children="loading…"), *poll_components(_ID, POLL_MS)])


def refreshed_table():
    """The jobs table now, or why the backend cannot say."""
    try:
        jobs = services.backend().jobs(LIMIT)
    except RuntimeError as error:  # the backend is down: say why, keep the page
        return notice(str(error))
    names = {m.key: m.name for m in services.models(None)}
    return table(rows(jobs, names, time.time()))


register_poll_callback(_ID, [Output(f"{_ID}-table", "children")], [], lambda: (refreshed_table(),), at_start=True)


@callback(Output(f"{_ID}-note", "children"), Input({"type": "jobs-cancel", "key": ALL}, "n_clicks"),
          prevent_initial_call=True)
def _cancel(_):
    if not ctx.triggered_id or not ctx.triggered[0]["value"]:  # a button (re)drawn, not clicked
        return no_update
    key = ctx.triggered_id["key"]
    services.backend().cancel(key)
    return f"Asked job {key[:10]} to stop: a running job stops before its next step."
