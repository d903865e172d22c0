"""Sharing a computed view: a "Copy link" button (the full URL, query string included), a
"Download data" button (every array of the view's job as ``.npy`` in a ``.zip``, with the view
state as JSON) and a collapsible "Show code" snippet that reproduces the numbers with the public
``compute`` API. :func:`share_components` goes into a view's layout (``jobs_ui.job_components``
adds it), :func:`register_share` once per view (``jobs_ui.register_poll`` calls it).

Component ids: ``<prefix>-link`` (the URL, the clipboard's target), ``<prefix>-copy-link``,
``<prefix>-download-button``, ``<prefix>-download``, ``<prefix>-code-box``, ``<prefix>-code``.
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Callable

import numpy as np
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from compute.engine import artifacts
from dashboard import services

_LINK_JS = """function(pathname, search, _job) {
    return window.location.origin + (pathname || window.location.pathname) + (search || '');
}"""


def share_components(prefix: str) -> html.Div:
    """The view's share bar: copy link, download data, show code (hidden until a view gives code)."""
    return html.Div(
        [
            html.Span("Link:", className="share-label"),
            html.Code(id=f"{prefix}-link", className="share-link"),
            dcc.Clipboard(id=f"{prefix}-copy-link", target_id=f"{prefix}-link", title="Copy link",
                          className="share-copy", style={"display": "inline-block", "cursor": "pointer"}),
            html.Button("Download data", id=f"{prefix}-download-button", className="share-download"),
            dcc.Download(id=f"{prefix}-download"),
            html.Details([html.Summary("Show code"), html.Pre(id=f"{prefix}-code", className="share-code")],
                         id=f"{prefix}-code-box", style={"display": "none"}),
        ],
        className="share-bar",
    )


def archive(job: dict, arrays: dict) -> bytes:
    """A zip of ``<name>.npy`` per array and ``view.json`` (the view's context and targets)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for name, array in arrays.items():
            data = io.BytesIO()
            np.save(data, np.asarray(array), allow_pickle=False)
            archive_file.writestr(f"{name}.npy", data.getvalue())
        state = {"context": job.get("context", {}), "targets": job.get("targets", []),
                 "arrays": sorted(arrays)}
        archive_file.writestr("view.json", json.dumps(state, indent=2, default=str))
    return buffer.getvalue()


def job_arrays(job: dict, names=None) -> dict | None:
    """The arrays of a job record's named specs (``names``, or all), or ``None`` while one is
    not there (not computed yet, or evicted)."""
    backend = services.backend()
    arrays = {}
    for name, data in job["specs"].items():
        if names is not None and name not in names:
            continue
        array = backend.result(artifacts.Spec.from_json(data))
        if array is None:
            return None
        arrays[name] = array
    return arrays


def download(job: dict | None, prefix: str):
    """What the download callback sends: the job's arrays once they are all computed."""
    arrays = job_arrays(job) if job and "specs" in job else None
    if arrays is None:
        return no_update
    return dcc.send_bytes(archive(job, arrays), f"{prefix}-data.zip")


def register_share(prefix: str, code: Callable[[dict], str] | None = None) -> None:
    """The link, download and (when the view gives ``code(context)``) code callbacks of a view."""
    clientside_callback(
        _LINK_JS,
        Output(f"{prefix}-link", "children"),
        Input("url", "pathname"), Input("url", "search"), Input(f"{prefix}-job", "data"),
    )

    @callback(
        Output(f"{prefix}-download", "data"),
        Input(f"{prefix}-download-button", "n_clicks"),
        State(f"{prefix}-job", "data"),
        prevent_initial_call=True,
    )
    def _download(_, job):
        return download(job, prefix)

    if code is None:
        return

    @callback(
        Output(f"{prefix}-code", "children"),
        Output(f"{prefix}-code-box", "style"),
        Input(f"{prefix}-job", "data"),
        prevent_initial_call=True,
    )
    def _code(job):
        if not job or "context" not in job:
            return no_update, no_update
        return code(job["context"]), {}
