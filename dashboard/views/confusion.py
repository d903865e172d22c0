"""A model's input RDM beside its top-1 and top-5 confusion matrices: how its representation's
geometry relates to the mistakes it makes (the RSA-vs-performance paper's comparison).

Below, every model three times: MDS of the models by their input RDMs (as on the model-space
page), and by their top-1 and top-5 confusion matrices (each turned into a class RDM,
``compute.measures.confusion.confusion_rdm``), all compared with Spearman's rho.
"""
from __future__ import annotations

from dash import Input, Output, html

from compute.engine import artifacts
from compute.settings import get_settings
from dashboard import compute_panel, url_codec
from dashboard.figures.heatmap import labelled_heatmap, sorted_heatmap
from dashboard.figures.scatter import with_stress
from dashboard.selection import Selection, best_model, need_models
from dashboard.snippets import prelude
from dashboard.view_parts.choices import (RDM_CHOICES, method_dropdown, method_words, rdm_scale_title, rdm_scale_words,
                                          register_info)
from dashboard.view_parts.model_map import MAP_DEFAULTS, map_specs, models_scatter
from dashboard.widgets import figure_slot, model_dropdown

PATH = "/confusion"
TITLE = "RDM vs confusion"
SELECTION = ("set", "where", "models", "group", "pooling")  # the parts of the selection panel it reads
_ID = "confusion"
_MODELS_ID = "confusion-models"  # the all-models section: a job of its own

TOP_K = (1, 5)
_MODEL_FIGURES = ("rdm", *(f"top{k}" for k in TOP_K))


def defaults(models) -> dict:
    return {"model": best_model(models).name, "rdm": "correlation"}


def read_state(search: str | None, models) -> dict:
    return url_codec.decode(search, defaults(models), {"model": tuple(m.name for m in models), "rdm": RDM_CHOICES})


def specs(model, stimuli, view: dict, pooling: str = "none", max_side: int = 1000) -> dict[str, artifacts.Spec]:
    rdm = artifacts.rdm_spec(model.key, stimuli, "penultimate", pooling, view["rdm"])
    named = {"rdm": rdm, "blocks": artifacts.rdm_blocks_spec(rdm, stimuli, max_side)}
    named.update({f"top{k}": artifacts.confusion_spec(model.key, stimuli, k) for k in TOP_K})
    return named


def figures(stimuli, arrays: dict, view: dict, max_side: int = 1000):
    """The class-sorted input RDM, then one confusion heatmap per k in ``TOP_K``."""
    heatmap = sorted_heatmap(stimuli, arrays["blocks"], max_side,
                             f"Input RDM ({method_words('rdm', view['rdm'])})<br><sup>{view['model']}, penultimate layer; "
                             f"{rdm_scale_words(view['rdm'])}; rows and columns: stimuli sorted by class</sup>", rdm_scale_title(view["rdm"]))
    classes = [str(name) for name in stimuli.class_names]
    confusions = tuple(
        labelled_heatmap(arrays[f"top{k}"], classes, classes,
                         title=f"Top-{k} confusion (rows: true class)<br><sup>{view['model']}</sup>",
                         colorbar_title="share of the true class's stimuli<br>" + (
                             "predicted as this class" if k == 1 else f"with this class in their top {k}"),
                         hover_label=f"fraction in top {k}", zrange=(0.0, 1.0),
                         annotate=len(classes) <= 20, x_title="predicted class", y_title="true class")
        for k in TOP_K
    )
    return (heatmap, *confusions)


def models_specs(models, stimuli, rdm_method: str, pooling: str = "none") -> dict[str, artifacts.Spec]:
    """MDS of ``models`` by input RDM (shared with the model-space page) and by confusion."""
    view = {**MAP_DEFAULTS, "rdm": rdm_method}
    named = {"rdm": map_specs(models, stimuli, view, pooling)[1]}
    for k in TOP_K:
        matrix = artifacts.confusion_model_rdm_spec([m.key for m in models], stimuli, k, view["compare"])
        named[f"top{k}"] = artifacts.mds_spec(matrix, method=view["mds"])
    return {**named, **{f"{name}_stress": artifacts.mds_stress_spec(spec) for name, spec in named.items()}}


def models_figures(models, arrays: dict, rdm_method: str, group_of):
    titles = {"rdm": f"Models by input RDM ({method_words('rdm', rdm_method)})",
              **{f"top{k}": f"Models by top-{k} confusion" for k in TOP_K}}
    return tuple(models_scatter(models, arrays[name], with_stress(title, arrays.get(f"{name}_stress")), group_of)
                 for name, title in titles.items())


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    models = selection.choices
    view = read_state(search, models)
    controls = [model_dropdown(f"{_ID}-model-choice", "Model", models, view["model"]),
                method_dropdown(f"{_ID}-rdm-choice", "RDM method", "rdm", view["rdm"])]
    hint = (f"Layer: penultimate. {selection.describe()}. Confusion rows are the true class, "
            "normalised: each row of top-k sums to k.")
    more = [html.H3("All models: MDS by input RDM and by confusion (Spearman, SMACOF)"),
            *compute_panel.job_components(_MODELS_ID),
            html.Div([figure_slot(f"{_MODELS_ID}-{name}", "square") for name in _MODEL_FIGURES],
                     className="figures")]
    return compute_panel.view_page(_ID, TITLE, controls, hint, dict.fromkeys(["rdm", *(f"top{k}" for k in TOP_K)], "square"),
                                   more)


def plan(selection: Selection, model_name, rdm_method):
    view = {"model": model_name, "rdm": rdm_method}
    url_codec.check(view, {"rdm": RDM_CHOICES})
    max_side = get_settings().rdm_max_side
    named = specs(selection.named(model_name), selection.stimuli, view, selection.pooling, max_side)
    # The model is always written: the default (the most accurate) may change as models are added.
    search = url_codec.encode(view, {**defaults(selection.choices), "model": None})
    return named, ["blocks", *(f"top{k}" for k in TOP_K)], {"view": view, "max_side": max_side}, search


def draw(context: dict, arrays: dict):
    return figures(Selection.from_url_params(context["selection"]).stimuli, arrays, context["view"], context["max_side"])


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the RDM and confusions."""
    view = context["view"]
    return prelude(Selection.from_url_params(context["selection"]),
                   "from compute.sources.representations import model_scores") + f"""(acts,) = activations({view["model"]!r}, ["penultimate"])
rdm = compute.rdm(acts, method={view["rdm"]!r})  # drawn sorted by class
scores = model_scores({view["model"]!r}, stimuli)
confusions = {{k: compute.confusion_matrix(scores, stimuli.labels, k=k) for k in {TOP_K!r}}}  # rows: true class
"""


compute_panel.register_submit(_ID, [Input(f"{_ID}-model-choice", "value"), Input(f"{_ID}-rdm-choice", "value")], plan)
register_info(f"{_ID}-rdm-choice", "rdm")
compute_panel.register_poll(_ID, [Output(f"{_ID}-rdm", "figure")] + [Output(f"{_ID}-top{k}", "figure") for k in TOP_K],
                      draw, code, needs=("blocks", *(f"top{k}" for k in TOP_K)))


def plan_models(selection: Selection, rdm_method):
    url_codec.check({"rdm": rdm_method}, {"rdm": RDM_CHOICES})
    models = [m for m in need_models(selection, 3) if m.num_classes]  # uploaded activations may have no scores
    if len(models) < 3:
        raise ValueError("this view needs at least 3 selected models with output scores (class logits); "
                         "uploaded activations without 'logits' have none: select more models")
    named = models_specs(models, selection.stimuli, rdm_method, selection.pooling)
    return named, [name for name in named if name.endswith("_stress")], {"rdm": rdm_method, "models": [m.key for m in models]}, None


def draw_models(context: dict, arrays: dict):
    selection = Selection.from_url_params(context["selection"])
    return models_figures([selection.by_key[key] for key in context["models"]], arrays, context["rdm"],
                          selection.group_of)


compute_panel.register_submit(_MODELS_ID, [Input(f"{_ID}-rdm-choice", "value")], plan_models)
compute_panel.register_poll(_MODELS_ID, [Output(f"{_MODELS_ID}-{name}", "figure") for name in _MODEL_FIGURES], draw_models)
