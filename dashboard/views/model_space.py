"""Model RDM and model MDS: how the models' representations relate, against their accuracy.

Each model's penultimate-layer input RDM (1 - Pearson r by default) is compared with every
other model's (Spearman by default) into a model RDM; its MDS is coloured by accuracy
(Fig 3 of the RSA-vs-performance paper). A permutation null (off, 100 or 1000 permutations of
the stimuli) rings the entries above chance after BH-FDR and can show calibrated similarities.
"""
from __future__ import annotations

from urllib.parse import urlencode

import dash
import numpy as np
from dash import Input, Output, callback, dcc, html, no_update

from compute.engine import artifacts
from compute.measures.registry import COMPARE_METHODS
from dashboard import compute_panel, url_codec
from dashboard.figures.heatmap import mark_cells, matrix_heatmap
from dashboard.figures.scatter import with_stress
from dashboard.selection import Selection, need_models
from dashboard.snippets import prelude
from dashboard.view_parts.choices import COMPARE_CHOICES, MDS_CHOICES, RDM_CHOICES, method_dropdown, method_words, register_info
from dashboard.view_parts import model_null
from dashboard.view_parts.model_null import dissimilarity_label
from dashboard.view_parts.model_map import MAP_DEFAULTS, highlight, map_specs, models_scatter
from dashboard.widgets import dropdown

PATH = "/"
TITLE = "Model RDM & MDS"
SELECTION = ("set", "where", "models", "group", "pooling")  # the parts of the selection panel it reads
_ID = "model-space"

SORT_CHOICES = {"accuracy": "accuracy", "group": "group, then accuracy", "name": "name"}
DEFAULTS = {**MAP_DEFAULTS, "sort": "accuracy", "null": "off", "show": "raw"}
CHOICES = {"compare": COMPARE_CHOICES, "rdm": RDM_CHOICES, "mds": MDS_CHOICES, "sort": tuple(SORT_CHOICES),
           "null": tuple(model_null.NULLS), "show": tuple(model_null.SHOWS)}


def display_order(models, sort: str, group_of) -> list[int]:
    """Positions of ``models`` (given by accuracy, least accurate first) in the heatmap's order for ``sort``:
    as given, grouped by ``group_of`` (groups in numeric order where they are numbers, else by
    name; accuracy order kept within), or by name."""
    if sort == "group":
        return sorted(range(len(models)), key=lambda i: _group_key(group_of(models[i])))  # stable
    if sort == "name":
        return sorted(range(len(models)), key=lambda i: models[i].name)
    return list(range(len(models)))


def _group_key(value: str) -> tuple:
    """Numbers first, in numeric order (width 2 before 16), then other names alphabetically."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def figures(models, matrix, coords, view: dict, group_of=lambda m: str(m.tags.get("family", m.architecture)),
            null=None, stress=None):
    """The heatmap (models in the order ``view["sort"]`` asks; the matrix and coordinates are in
    ``models``' order) and the MDS scatter for computed arrays; with a ``null`` artifact (the
    stack of recipes.MODEL_NULL_FIELDS) the entries above chance ringed, and calibrated
    similarities shown where ``view["show"]`` asks; with a ``stress`` artifact its stress-1 under the MDS's title."""
    sort = view.get("sort", "accuracy")
    order = display_order(models, sort, group_of)
    calibrated = null is not None and view.get("show") == "calibrated"
    shown = model_null.fields(null)["calibrated"] if calibrated else np.asarray(matrix)
    what = f"calibrated {COMPARE_METHODS[view['compare']].title}" if calibrated else dissimilarity_label(view["compare"])
    labels = [models[i].name for i in order]
    heatmap = matrix_heatmap(
        shown[np.ix_(order, order)], labels,
        title=f"Model RDM ({what})<br><sup>input RDMs compared; models sorted by {SORT_CHOICES[sort]}</sup>",
        colorbar_title=colour_title(view["compare"], calibrated), hover_label=what,
        groups=[group_of(models[i]) for i in order] if sort == "group" else None,
    )
    order_words = "least to most accurate" if sort == "accuracy" else f"sorted by {SORT_CHOICES[sort]}"
    heatmap.update_layout(xaxis_title_text=f"model ({order_words}; hover for names)", yaxis_title_text="model")
    if null is not None:
        mark_cells(heatmap, model_null.ringed(null)[np.ix_(order, order)], labels, labels,
                   model_null.mark_words(view, len(models)))
    mds_title = f"{method_words('mds', view['mds'])} of models, coloured by accuracy"
    return heatmap, models_scatter(models, coords, with_stress(mds_title, stress), group_of)


def colour_title(compare: str, calibrated: bool = False) -> str:
    """The colour bar's title: which value, in words with its direction."""
    if calibrated:
        return f"calibrated {method_words('compare', compare)}<br>(0 = chance, 1 = identical;<br>higher = more alike)"
    return f"{dissimilarity_label(compare)}<br>(dissimilarity:<br>lower = more alike)"


def _dropdown(name: str, label: str, value: str, options=None) -> html.Div:
    return dropdown(f"{_ID}-{name}-choice", label, options or CHOICES[name], value)


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = url_codec.decode(search, DEFAULTS, CHOICES)
    controls = [method_dropdown(f"{_ID}-rdm-choice", "Input RDM (per model)", "rdm", view["rdm"]),
                method_dropdown(f"{_ID}-compare-choice", "Compare RDMs with", "compare", view["compare"]),
                method_dropdown(f"{_ID}-mds-choice", "MDS", "mds", view["mds"]),
                _dropdown("sort", "Sort the model RDM by", view["sort"],
                          [{"label": text, "value": value} for value, text in SORT_CHOICES.items()]),
                _dropdown("null", "Null (permutations of the stimuli)", view["null"], model_null.options(model_null.NULLS)),
                dropdown(f"{_ID}-show-choice", "Show", model_null.options(model_null.SHOWS), view["show"],
                         disabled=view["null"] == "off"),
                html.P(model_null.NULL_WORDS, className="hint"),
                html.Div([html.Label("Find a model in the MDS", htmlFor=f"{_ID}-find"),
                          dcc.Input(id=f"{_ID}-find", type="search", debounce=True, maxLength=80,
                                    value=dict(url_codec.parse(search)).get("find", "")[:80],
                                    placeholder="its name, or part of it (Enter)"),
                          html.Span(id=f"{_ID}-found", className="hint")], className="control")]
    hint = (f"Layer: penultimate. {selection.describe()}. Uploaded models are ringed in orange and named. "
            "Click a model to open its input RDM; lasso-select models to make them the selection.")
    return compute_panel.view_page(_ID, TITLE, controls, hint, {"heatmap": "square", "mds": "square"})


def plan(selection: Selection, rdm_method, compare_method, mds_method, sort="accuracy", null="off", show="raw"):
    """The model RDM and its MDS for the controls' values (with a null, the model RDM's null
    too), and the URL state (the sort only reorders the drawing: the artifacts are the same)."""
    view = {"rdm": rdm_method, "compare": compare_method, "mds": mds_method, "sort": sort, "null": null, "show": show}
    url_codec.check(view, CHOICES)
    models = need_models(selection, 3)
    matrix, embedding = map_specs(models, selection.stimuli, view, selection.pooling)
    specs = {"matrix": matrix, "mds": embedding, "stress": artifacts.mds_stress_spec(embedding)}
    spec = model_null.null_spec(matrix, view)
    if spec is not None:
        specs["null"] = spec
    context = {"view": view, "models": [m.key for m in models], "names": [m.name for m in models]}
    return specs, [name for name in ("stress", "null") if name in specs], context, url_codec.encode(view, DEFAULTS)


def context_models(context: dict, selection: Selection) -> list:
    """The job's models, by name (two names of the same weights, aliases, are two models), or by
    key for a context without names."""
    by_name = {m.name: m for m in selection.available}
    names = context.get("names") or []
    if len(names) == len(context["models"]) and all(name in by_name for name in names):
        return [by_name[name] for name in names]
    return [selection.by_key[key] for key in context["models"]]


def draw(context: dict, arrays: dict):
    selection = Selection.from_url_params(context["selection"])
    return figures(context_models(context, selection), arrays["matrix"], arrays["mds"],
                   context["view"], selection.group_of, arrays.get("null"), arrays.get("stress"))


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the view's numbers."""
    view = context["view"]
    selection = Selection.from_url_params(context["selection"])
    names = [m.name for m in context_models(context, selection)]
    listing = "".join(f"    {name!r},\n" for name in names)
    return prelude(selection) + f"""models = [  # ordered by accuracy, as the arrays (the heatmap may show another order)
{listing}]
rdms = np.stack([compute.rdm(activations(name, ["penultimate"])[0], method={view["rdm"]!r}, condensed=True)
                 .astype(np.float32) for name in models])
matrix = compute.model_rdm(rdms, method={view["compare"]!r})  # the heatmap
coords = compute.mds(matrix, method={view["mds"]!r})  # the MDS scatter, one row per model
stress = compute.mds_stress(matrix, coords)  # Kruskal's stress-1, in the MDS's subtitle
""" + _null_code(view)


def _null_code(view: dict) -> str:
    if not model_null.n_perm(view):
        return ""
    chosen = "calibrated" if view.get("show") == "calibrated" else "values"
    return f"""
# The null: for each pair, the second RDM's stimuli permuted {model_null.n_perm(view)} times (seed {model_null.NULL_SEED})
null = compute.model_rdm_null(rdms, method={view["compare"]!r}, n_perm={model_null.n_perm(view)}, seed={model_null.NULL_SEED})
shown = null.{chosen}  # null.values: the model RDM; null.calibrated: (r - mean null) / (1 - mean null)
upper = np.triu_indices(len(models), 1)
q = np.full(null.p.shape, np.nan)
q[upper] = q.T[upper] = compute.fdr_bh(null.p[upper])  # Benjamini-Hochberg over the entries above the diagonal
ringed = q < {model_null.ALPHA}
"""


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value")
                                    for name in ("rdm", "compare", "mds", "sort", "null", "show")], plan)


@callback(Output(f"{_ID}-show-choice", "disabled"), Input(f"{_ID}-null-choice", "value"), prevent_initial_call=True)
def _follow_null(null):
    """Calibrated similarities need a null."""
    return null == "off"
compute_panel.register_poll(_ID, [Output(f"{_ID}-heatmap", "figure"), Output(f"{_ID}-mds", "figure")], draw, code)


@callback(
    Output(f"{_ID}-mds", "figure", allow_duplicate=True),
    Output(f"{_ID}-found", "children"),
    Input(f"{_ID}-find", "value"),
    Input(f"{_ID}-mds", "figure"),
    prevent_initial_call=True,
)
def _find(text, figure):
    """Ring the models a search finds (again when a new figure arrives); only the drawing changes."""
    if not isinstance(figure, dict) or not isinstance(text, (str, type(None))):
        return no_update, ""
    marked, words = highlight(figure, text)
    return (no_update if marked["data"] == figure.get("data") else marked), words


def model_link(click_data: dict | None) -> tuple:
    """Where a click on the MDS goes: the input RDM view of the clicked model (its name is the
    point's ``customdata``), as (pathname, search); nothing for a click off the points."""
    points = (click_data or {}).get("points") or []
    name = points[0].get("customdata") if points else None
    if not isinstance(name, str) or not name:
        return no_update, no_update
    return dash.get_relative_path("/rdm"), "?" + urlencode({"model": name})


@callback(
    Output("url", "pathname", allow_duplicate=True),
    Output("url", "search", allow_duplicate=True),
    Input(f"{_ID}-mds", "clickData"),
    prevent_initial_call=True,
)
def _open_clicked_model(click_data):
    return model_link(click_data)


def lassoed_models(selected: dict | None):
    """The names of the models in a lasso or box selection on the MDS (each point's
    ``customdata``), in the order given; no_update for an empty selection."""
    names = [p.get("customdata") for p in (selected or {}).get("points") or []]
    names = [n for n in dict.fromkeys(names) if isinstance(n, str) and n]
    return names or no_update


@callback(
    Output("selection-models", "value", allow_duplicate=True),
    Input(f"{_ID}-mds", "selectedData"),
    prevent_initial_call=True,
)
def _select_lassoed_models(selected):
    """Lasso-selecting models on the MDS makes them the selection of every view."""
    return lassoed_models(selected)
register_info(f"{_ID}-rdm-choice", "rdm")
register_info(f"{_ID}-compare-choice", "compare")
register_info(f"{_ID}-mds-choice", "mds")
