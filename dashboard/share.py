"""Sharing a computed view: a "Copy link" button (the full URL, query string included), a
"Download data" button (every array of the view's job as ``.npy`` in a ``.zip``, and as ``.csv``
when it has at most :data:`CSV_MAX_CELLS` cells, with the view state as JSON), a "Download SVG"
button (every figure of the view as a vector image; the Plotly toolbar gives PNG) and a
collapsible "Show code" snippet that reproduces the numbers with the public ``compute`` API. :func:`share_components` goes into a view's layout (``compute_panel.job_components``
adds it), :func:`register_share` once per view (``compute_panel.register_poll`` calls it).

Component ids: ``<prefix>-link`` (the URL, the clipboard's target), ``<prefix>-copy-link``,
``<prefix>-download-button``, ``<prefix>-download``, ``<prefix>-svg``, ``<prefix>-code-box``,
``<prefix>-code``.
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Callable

import dash_mantine_components as dmc
import numpy as np
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dashboard import services

CSV_MAX_CELLS = 1_000_000  # beyond, a text table is no use to anyone: the .npy is there

# Every figure of the view (the graphs whose id starts with the prefix) as an SVG file.
_SVG_JS = """function(clicks, prefix) {
    if (!clicks) { return window.dash_clientside.no_update; }
    document.querySelectorAll('[id^="' + prefix + '-"] > .js-plotly-plot').forEach(function(el) {
        if (el.data && el.data.length) {
            window.Plotly.downloadImage(el, {format: 'svg', filename: el.parentElement.id});
        }
    });
    return '';
}"""

_LINK_JS = """function(pathname, search, _job) {
    return window.location.origin + (pathname || window.location.pathname) + (search || '');
}"""


def share_components(prefix: str) -> dmc.Group:
    """The view's share bar: copy link, download data, show code (hidden until a view gives code)."""
    return dmc.Group(
        [
            dmc.Text("Link:", size="sm", className="share-label"),
            dmc.Text(id=f"{prefix}-link", className="share-link", ff="monospace", size="sm", c="dimmed",
                     truncate="end", maw="40rem"),
            dcc.Clipboard(id=f"{prefix}-copy-link", target_id=f"{prefix}-link", title="Copy link",
                          className="share-copy", style={"display": "inline-block", "cursor": "pointer"}),
            dmc.Button("Download data", id=f"{prefix}-download-button", className="share-download",
                       size="compact-sm", variant="default"),
            dmc.Button("Download SVG", id=f"{prefix}-svg", className="share-download", size="compact-sm",
                       variant="default"),
            dcc.Store(id=f"{prefix}-svg-prefix", data=prefix),
            dcc.Download(id=f"{prefix}-download"),
            html.Details([html.Summary("Show code"), dmc.Code(id=f"{prefix}-code", className="share-code", block=True)],
                         id=f"{prefix}-code-box", style={"display": "none", "flexBasis": "100%"}),
        ],
        gap="xs", my="xs", className="share-bar",
    )


def archive(job: dict, arrays: dict) -> bytes:
    """A zip of ``<name>.npy`` per array and ``view.json`` (the view's context and targets)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for name, array in arrays.items():
            data = io.BytesIO()
            np.save(data, np.asarray(array), allow_pickle=False)
            archive_file.writestr(f"{name}.npy", data.getvalue())
            if np.ndim(array) <= 2 and np.size(array) <= CSV_MAX_CELLS:
                text = io.StringIO()
                np.savetxt(text, np.atleast_2d(np.asarray(array)) if np.ndim(array) else np.reshape(array, (1, 1)),
                           delimiter=",", fmt="%.9g")
                archive_file.writestr(f"{name}.csv", text.getvalue())
        state = {"context": job.get("context", {}), "targets": job.get("targets", []),
                 "arrays": sorted(arrays)}
        archive_file.writestr("view.json", json.dumps(state, indent=2, default=str))
    return buffer.getvalue()


def job_arrays(specs: dict, names=None) -> dict | None:
    """The arrays of the named ``specs`` (``names``, or all), or ``None`` while one is not
    there (not computed yet, or evicted)."""
    backend = services.backend()
    arrays = {}
    for name, spec in specs.items():
        if names is not None and name not in names:
            continue
        array = backend.result(spec)
        if array is None:
            return None
        arrays[name] = array
    return arrays


def download(job, prefix: str, planned: Callable):
    """What the download callback sends: the arrays of the job's view state (``planned(job)``:
    its specs, targets and context, planned by the server) once they are all computed."""
    try:
        specs, targets, context = planned(job) if job else (None, None, None)
    except ValueError:
        return no_update
    arrays = job_arrays(specs) if specs else None
    if arrays is None:
        return no_update
    return dcc.send_bytes(archive({"context": context, "targets": targets}, arrays), f"{prefix}-data.zip")


def register_share(prefix: str, code: Callable[[dict], str] | None, planned: Callable) -> None:
    """The link, download and (when the view gives ``code(context)``) code callbacks of a view;
    ``planned(job record)`` is the view's specs, targets and context for the record's view state
    (the record comes from the browser: nothing else in it is read)."""
    clientside_callback(
        _SVG_JS,
        Output(f"{prefix}-svg", "title"),
        Input(f"{prefix}-svg", "n_clicks"),
        State(f"{prefix}-svg-prefix", "data"),
        prevent_initial_call=True,
    )
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
        return download(job, prefix, planned)

    if code is None:
        return

    @callback(
        Output(f"{prefix}-code", "children"),
        Output(f"{prefix}-code-box", "style"),
        Input(f"{prefix}-job", "data"),
        prevent_initial_call=True,
    )
    def _code(job):
        if not job or "values" not in job:
            return no_update, no_update
        try:
            _, _, context = planned(job)
        except ValueError:
            return no_update, no_update
        return code(context), {"flexBasis": "100%"}
