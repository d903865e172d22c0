"""Input RDM of one model and layer: the stimuli sorted by class, beside their MDS.

The RDM is drawn block-averaged to at most ``MAX_SIDE`` stimuli per side (the browser never
gets an N x N matrix with N in the thousands); the MDS embeds every stimulus, coloured by class.
"""
from __future__ import annotations

from dash import Input, Output, State, callback, html
from scipy.spatial.distance import squareform

from compute.engine import artifacts
from dashboard import jobs_ui, services, state as url_state
from dashboard.figures.heatmap import rdm_heatmap
from dashboard.figures.scatter import class_scatter
from dashboard.widgets import dropdown, layer_options, model_dropdown

PATH = "/rdm"
TITLE = "Input RDM"
_ID = "input-rdm"

RDM_CHOICES = ("correlation", "cosine", "euclidean", "sqeuclidean", "spearman")
MDS_CHOICES = ("classical", "smacof")
MAX_SIDE = 1000


def best_model(models):
    """The default model of a view: the most accurate (by name among equals)."""
    return min(models, key=lambda m: (m.accuracy is None, -(m.accuracy or 0.0), m.name))


def defaults(models) -> dict:
    return {"model": best_model(models).name, "layer": "penultimate", "rdm": "correlation", "mds": "classical"}


def read_state(search: str | None, models) -> dict:
    """The view state from the URL; a layer the model does not have falls back to penultimate."""
    view = url_state.decode(search, defaults(models),
                            {"model": tuple(m.name for m in models), "rdm": RDM_CHOICES, "mds": MDS_CHOICES})
    return {**view, "layer": valid_layer(view["model"], view["layer"])}


def valid_layer(model_name: str, layer: str | None) -> str:
    names = {o["value"] for o in layer_options(services.layers(services.model_named(model_name).key))}
    return layer if layer in names else "penultimate"


def specs(model, stimuli, view: dict) -> dict[str, artifacts.Spec]:
    matrix = artifacts.rdm_spec(model.key, stimuli, view["layer"], "none", view["rdm"])
    return {"rdm": matrix, "mds": artifacts.mds_spec(matrix, method=view["mds"])}


def figures(stimuli, condensed, coords, view: dict):
    """The class-sorted RDM heatmap and the stimulus MDS for computed arrays."""
    where = f"{view['model']}, layer {view['layer']}"
    heatmap = rdm_heatmap(squareform(condensed, checks=False), stimuli.labels, stimuli.class_names,
                          title=f"Input RDM ({view['rdm']}), sorted by class<br><sup>{where}</sup>",
                          colorbar_title=view["rdm"], max_side=MAX_SIDE)
    hover = [f"{stimulus}<br>class {stimuli.class_names[label]}" for stimulus, label in zip(stimuli.ids, stimuli.labels)]
    scatter = class_scatter(coords, stimuli.labels, stimuli.class_names, hover,
                            title=f"MDS of the stimuli ({view['mds']})<br><sup>{where}</sup>")
    return heatmap, scatter


def layout(search: str | None = None) -> html.Div:
    models = services.models()
    view = read_state(search, models)
    layers = services.layers(services.model_named(view["model"]).key)
    controls = [model_dropdown(f"{_ID}-model-choice", "Model", models, view["model"]),
                dropdown(f"{_ID}-layer-choice", "Layer", layer_options(layers), view["layer"]),
                dropdown(f"{_ID}-rdm-choice", "RDM method", RDM_CHOICES, view["rdm"]),
                dropdown(f"{_ID}-mds-choice", "MDS", MDS_CHOICES, view["mds"])]
    hint = f"Stimuli: digits test set. Large RDMs are block-averaged to ≤ {MAX_SIDE} per side."
    return jobs_ui.view_page(_ID, TITLE, controls, hint, ["heatmap", "mds"])


@callback(
    Output(f"{_ID}-layer-choice", "options"),
    Output(f"{_ID}-layer-choice", "value"),
    Input(f"{_ID}-model-choice", "value"),
    State(f"{_ID}-layer-choice", "value"),
    prevent_initial_call=True,
)
def follow_model(model_name, layer):
    """Another model has other layers: offer them, keeping the layer when it has one so named."""
    return layer_options(services.layers(services.model_named(model_name).key)), valid_layer(model_name, layer)


def plan(model_name, layer, rdm_method, mds_method):
    models = services.models()
    view = {"model": model_name, "layer": valid_layer(model_name, layer), "rdm": rdm_method, "mds": mds_method}
    named = specs(services.model_named(model_name), services.stimuli(), view)
    # The model is always written: the default (the most accurate) may change as models are added.
    return named, ["mds"], {"view": view}, url_state.encode(view, {**defaults(models), "model": None})


def draw(context: dict, arrays: dict):
    return figures(services.stimuli(), arrays["rdm"], arrays["mds"], context["view"])


jobs_ui.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value") for name in ("model", "layer", "rdm", "mds")],
                        plan)
jobs_ui.register_poll(_ID, [Output(f"{_ID}-heatmap", "figure"), Output(f"{_ID}-mds", "figure")], draw)
