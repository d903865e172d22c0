"""Small pieces shared by every view: the page's frame, labelled controls, notices and the job
progress line. Layout, cards and notices are Mantine's (dash-mantine-components, its CSS inside
its JS bundle: nothing from a CDN); only the figures' sizing is our own CSS."""
from __future__ import annotations

import dash_mantine_components as dmc
from dash import dcc, html


def dropdown(component_id: str, label: str, options, value, clearable: bool = False, **kwargs) -> html.Div:
    """A labelled dropdown (not clearable unless asked); ``options`` are values or
    ``{"label", "value"}`` dicts."""
    return html.Div(
        [html.Label(label, htmlFor=component_id),
         dcc.Dropdown(id=component_id, options=list(options), value=value, clearable=clearable, **kwargs)],
        className="control",
    )


def button(label, component_id: str, wrap: bool = False, **kwargs) -> dmc.Button:
    """A form's button (Mantine's, compact, the default variant; ``n_clicks`` counted); ``wrap``:
    a long label (one that names a model) breaks over lines, left-aligned, instead of being cut."""
    wrapped = {"h": "auto", "py": 4, "fw": 400, "justify": "flex-start",
               "styles": {"label": {"whiteSpace": "normal", "textAlign": "left"}}} if wrap else {}
    return dmc.Button(label, id=component_id, n_clicks=0, size="compact-sm", variant="default",
                      **{**wrapped, **kwargs})


def page_frame(panel: list, main: list, panel_width: int = 260) -> dmc.Flex:
    """A page: its panel of controls (``panel_width`` px) beside the main area, or above it on a
    narrow window (below Mantine's ``sm`` breakpoint); classes ``view-frame``, ``view-panel``, ``main``."""
    return dmc.Flex(
        [dmc.Paper(panel, className="view-panel", w={"base": "100%", "sm": panel_width}, p="md", radius="md",
                   shadow="xs", style={"flexShrink": 0}),
         dmc.Box(main, className="main", flex=1, miw=0)],
        direction={"base": "column", "sm": "row"}, align={"base": "stretch", "sm": "flex-start"}, gap="md",
        py="md", className="view-frame")


# A notice's kind: its colour and the classes tests and status checks look for.
NOTICES = {"error": ("red", "alert alert-error"), "note": ("yellow", "alert alert-note"),
           "done": ("green", "alert status-done")}


def notice(children, kind: str = "error", className: str = "", **style) -> dmc.Alert:
    """A notice in the page (Mantine's Alert, role "alert") of ``kind`` (one of :data:`NOTICES`):
    a refusal or a failure, a note, a success; ``style``: Mantine's style props (``mt="md"``)."""
    color, classes = NOTICES[kind]
    return dmc.Alert(children, color=color, className=f"{classes} {className}".strip(), py=6, px="sm", radius="sm",
                     **style)


def message_figure(text: str) -> dict:
    """An empty figure that says ``text`` where the plot would be."""
    return {"data": [],
            "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False}, "template": "plotly_white",
                       "annotations": [{"text": text, "showarrow": False, "font": {"size": 15, "color": "#6b7385"},
                                        "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]}}


# What a figure shows until its job's arrays are drawn: never a blank plot.
PENDING_FIGURE = message_figure("Computing… (progress above)")


# How a graph takes its size from the window (assets/style.css ``.figure-<shape>``): ``square``
# (heatmaps with square cells, MDS maps) and ``wide`` (curves, bars, rectangular grids) fill
# their column's width at a fixed aspect, no taller than the viewport; ``fit`` keeps the height
# its figure sets (one row per model, one panel row per few layers) at the column's width.
SHAPES = ("square", "wide", "fit")


def figure_slot(component_id: str, shape: str = "wide", hidden: bool = False) -> dcc.Graph:
    """A view's graph of ``shape`` (one of :data:`SHAPES`), showing :data:`PENDING_FIGURE` until
    its figure arrives, resized with its box (Plotly's ``responsive``); not shown at all while
    ``hidden`` (a figure drawn only on request)."""
    if shape not in SHAPES:
        raise ValueError(f"figure shape {shape!r} is not one of {SHAPES}")
    return dcc.Graph(id=component_id, className=f"figure figure-{shape}", figure=PENDING_FIGURE,
                     responsive="auto" if shape == "fit" else True, config={"responsive": True},
                     style=shown_style(not hidden, shape))


def shown_style(shown: bool, shape: str = "wide") -> dict:
    """The style of a graph of ``shape`` shown or hidden (a callback's output for a figure drawn
    on request). A "fit" figure's own height counts (Dash's "auto"); the others fill the box the
    CSS sizes."""
    style = {} if shape == "fit" else {"height": "auto"}
    return style if shown else {**style, "display": "none"}


def progress_area(prefix: str) -> html.Div:
    """Where a view shows the state of its background job (id ``<prefix>-progress``)."""
    return html.Div(id=f"{prefix}-progress", className="progress-area", children="waiting…")


def describe_status(status: dict) -> html.Div:
    """A progress bar and a one-line message for a job status record."""
    state = status.get("state", "missing")
    fraction = float(status.get("progress") or 0.0)
    message = status.get("message") or state
    if state == "failed":
        return notice(f"Failed: {message}", "error", "status-failed")
    if state == "done":
        return dmc.Text("Up to date", size="sm", c="green.8", className="status-done")
    return html.Div(
        [html.Progress(value=str(round(fraction, 3)), max="1", className="job-progress"),
         html.Span(f" {state}: {message} ({100 * fraction:.0f} %)")],
        className="status-running",
    )


def accuracy_text(model) -> str:
    """A model's top-1 accuracy as shown everywhere: "94.6 %", or "n/a" when unknown."""
    return "n/a" if model.accuracy is None else f"{100 * model.accuracy:.1f} %"


def model_options(models) -> list[dict]:
    """Dropdown options for models: the name (the URL's vocabulary), accuracy in the label."""
    return [{"label": f"{m.name} ({accuracy_text(m)})", "value": m.name} for m in models]


def model_dropdown(component_id: str, label: str, models, value: str) -> html.Div:
    """A searchable dropdown of models."""
    return dropdown(component_id, label, model_options(models), value, searchable=True)


def layer_options(layers, penultimate_first: bool = True) -> list[dict]:
    """"penultimate" (naming the layer it is) first unless not asked, then every layer of a
    model's LayerInfo list."""
    penultimate = next((info.name for info in layers if info.penultimate and penultimate_first), None)
    first = [{"label": f"penultimate ({penultimate})", "value": "penultimate"}] if penultimate else []
    return first + [{"label": f"{info.name} ({info.kind})", "value": info.name} for info in layers]
