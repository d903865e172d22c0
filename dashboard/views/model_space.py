"""Model RDM and model MDS: how the models' representations relate, against their accuracy.

Each model's penultimate-layer input RDM (1 - Pearson r by default) is compared with every
other model's (Spearman by default) into a model RDM; its MDS is coloured by accuracy
(Fig 3 of the RSA-vs-performance paper).
"""
from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import Input, Output, callback, html, no_update

from compute.engine import artifacts
from dashboard import jobs_ui, services, state as url_state
from dashboard.figures.heatmap import matrix_heatmap
from dashboard.figures.scatter import embedding_scatter
from dashboard.widgets import accuracy_text, dropdown

PATH = "/"
TITLE = "Model RDM & MDS"
_ID = "model-space"

COMPARE_CHOICES = ("spearman", "pearson", "kendall_tau_a", "rho_a", "cosine", "euclidean", "manhattan")
RDM_CHOICES = ("correlation", "cosine", "euclidean", "sqeuclidean", "spearman")
DEFAULTS = {"compare": "spearman", "rdm": "correlation", "mds": "smacof"}
CHOICES = {"compare": COMPARE_CHOICES, "rdm": RDM_CHOICES, "mds": ("smacof", "classical")}


def ordered_models(models):
    """Models in the order every figure shows them: by accuracy (unknown last), then name."""
    return sorted(models, key=lambda m: (m.accuracy is None, m.accuracy or 0.0, m.name))


def specs(models, stimuli, view: dict) -> tuple[artifacts.Spec, artifacts.Spec]:
    """The model RDM and its MDS for ``models`` (already ordered) under ``view``."""
    matrix = artifacts.model_rdm_spec([m.key for m in models], stimuli, "penultimate", "none",
                                      view["rdm"], view["compare"])
    return matrix, artifacts.mds_spec(matrix, method=view["mds"])


def figures(models, matrix, coords, view: dict):
    """The heatmap and the MDS scatter for computed arrays."""
    names = [m.name for m in models]
    direction = "distance" if view["compare"] in ("euclidean", "manhattan") else f"1 − {view['compare']}"
    heatmap = matrix_heatmap(
        matrix, names, title=f"Model RDM ({direction} of input RDMs), sorted by accuracy",
        colorbar_title=direction,
    )
    return heatmap, models_scatter(models, coords, f"MDS of models ({view['mds']}), coloured by accuracy")


def models_scatter(models, coords, title: str):
    """An embedding of models (n x 2), coloured by accuracy, one symbol per family."""
    hover = [
        f"<b>{m.name}</b><br>architecture: {m.architecture}<br>accuracy: {accuracy_text(m)}"
        + "".join(f"<br>{k}: {v}" for k, v in sorted(m.tags.items()) if k != "family")
        for m in models
    ]
    return embedding_scatter(
        coords, [m.name for m in models], [m.accuracy for m in models], "accuracy",
        groups=[str(m.tags.get("family", m.architecture)) for m in models], hover=hover, title=title,
    )


def _dropdown(name: str, label: str, value: str) -> html.Div:
    return dropdown(f"{_ID}-{name}-choice", label, CHOICES[name], value)


def layout(search: str | None = None) -> html.Div:
    view = url_state.decode(search, DEFAULTS, CHOICES)
    controls = [_dropdown("rdm", "Input RDM (per model)", view["rdm"]),
                _dropdown("compare", "Compare RDMs with", view["compare"]),
                _dropdown("mds", "MDS", view["mds"])]
    return jobs_ui.view_page(_ID, TITLE, controls, "Layer: penultimate. Stimuli: digits test set.",
                             ["heatmap", "mds"])


def plan(rdm_method, compare_method, mds_method):
    """The model RDM and its MDS for the controls' values, and the URL state."""
    view = {"rdm": rdm_method, "compare": compare_method, "mds": mds_method}
    models = ordered_models(services.models())
    matrix, embedding = specs(models, services.stimuli(), view)
    context = {"view": view, "models": [m.key for m in models]}
    return {"matrix": matrix, "mds": embedding}, ["mds"], context, url_state.encode(view, DEFAULTS)


def draw(context: dict, arrays: dict):
    by_key = {m.key: m for m in services.models()}
    return figures([by_key[key] for key in context["models"]], arrays["matrix"], arrays["mds"], context["view"])


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the view's numbers."""
    view = context["view"]
    by_key = {m.key: m.name for m in services.models()}
    names = [by_key.get(key, key) for key in context["models"]]
    listing = "".join(f"    {name!r},\n" for name in names)
    return f"""import numpy as np

import compute
from compute.sources.activations import extract
from compute.sources.models import list_layers, load_model
from compute.sources.stimuli import get_stimulus_set

stimuli = get_stimulus_set("digits")
models = [  # ordered by accuracy, as in the figures
{listing}]
rdms = []
for name in models:
    model = load_model(name)
    layer = next(info.name for info in list_layers(model) if info.penultimate)
    acts = extract(model, stimuli.images, [layer])[layer]
    rdms.append(compute.rdm(acts, method={view["rdm"]!r}, condensed=True).astype(np.float32))
matrix = compute.model_rdm(np.stack(rdms), method={view["compare"]!r})  # the heatmap
coords = compute.mds(matrix, method={view["mds"]!r})  # the MDS scatter, one row per model
"""


jobs_ui.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value") for name in ("rdm", "compare", "mds")], plan)
jobs_ui.register_poll(_ID, [Output(f"{_ID}-heatmap", "figure"), Output(f"{_ID}-mds", "figure")], draw, code)


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
