"""An upload form (a file slot that ``assets/upload.js`` fills, controls, a button and progress)
and what the server's answer to an upload means: the Models page's checkpoints and stimulus sets
and the Reference page's RDMs go through it."""
from __future__ import annotations

import dash_mantine_components as dmc
from dash import dcc, html

from dashboard.widgets import notice


def upload_message(result: dict | None, links=lambda name: []) -> dmc.Alert | str:
    """What an upload's answer from the server means, in one line; a model's with the other names
    of its weights (aliases), its uploaded twin, and ``links(name)`` (components) to open it."""
    if not result:
        return ""
    if not result.get("ok"):
        return notice(f"Refused: {result.get('error')}")
    if "model" in result:
        notes = [html.Div(f"Note: {note}", className="hint") for note in result.get("warnings") or []]
        if result.get("aliases"):
            notes.append(html.Div(f"The same weights are also known as {', '.join(result['aliases'])} "
                                  "(every name kept)", className="hint"))
        twin = result.get("twin")
        if twin and twin.get("ok"):
            notes.append(html.Div(f"Its initial weights: {twin['model']} (its untrained twin)", className="hint"))
        elif twin:
            notes.append(notice(f"Initial weights refused: {twin.get('error')}"))
        return notice([f"Registered model {result['model']} ({result['architecture']})", *notes,
                       *links(result["model"])], "done")
    return notice(f"Stimulus set ready: {result['images']} images in {result['num_classes']} classes "
                  f"({result['stimulus_set']})", "done")


def form_section(title: str, children: list) -> dmc.Stack:
    """A form of the panel under a rule and its title."""
    return dmc.Stack([dmc.Divider(), dmc.Title(title, order=3, size="sm"), *children], gap=6, mb="sm")


def file_form(prefix: str, label: str, accept: str, controls: list) -> dmc.Stack:
    """A file slot (upload.js puts the <input type=file> in it), controls, a button and progress;
    ids ``<prefix>-file``, ``-send``, ``-progress``, ``-progress-text``, ``-message``, ``-result``.
    The slot is a plain <div>: Mantine's FileInput never hands the browser's File to our chunked
    upload, and ``dcc.Upload`` holds the whole file base64-encoded in memory."""
    return form_section(label, [
        html.Div(id=f"{prefix}-file", className="file-slot", **{"data-accept": accept}),
        *controls,
        dmc.Button("Upload", id=f"{prefix}-send", n_clicks=0, size="compact-sm", variant="default", fullWidth=True),
        html.Progress(id=f"{prefix}-progress", value="0", max="1", style={"width": "100%"}),
        html.Span(id=f"{prefix}-progress-text", className="hint"),
        html.Div(id=f"{prefix}-message"),
        dcc.Store(id=f"{prefix}-result")])
