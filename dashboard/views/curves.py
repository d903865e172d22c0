"""Layer curves: how unlike the other models each model is, against its accuracy, per depth.

At each depth (the d-th of each model's default layers: the zoo's activations after each
block) the models' input RDMs are compared into a model RDM; each model's mean dissimilarity
to all others is plotted against its accuracy, one curve per depth.
"""
from __future__ import annotations

from dash import Input, Output, html

from compute.engine import artifacts
from compute.measures.summaries import mean_dissimilarity
from dashboard import compute_panel, url_codec
from dashboard.figures.curves import layer_curves
from dashboard.selection import Selection, need_models
from dashboard.snippets import prelude
from dashboard.view_parts.choices import COMPARE_CHOICES, RDM_CHOICES
from dashboard.view_parts.depths import depths
from dashboard.widgets import dropdown

PATH = "/curves"
TITLE = "Layer curves"
_ID = "curves"

# Euclidean by default: correlation-type RDMs are undefined for all-zero patterns, which the
# zoo's cnn-w2-s0-untrained has at depth 1 (55 stimuli silent after its first ReLU).
DEFAULTS = {"rdm": "euclidean", "compare": "spearman"}
CHOICES = {"rdm": RDM_CHOICES, "compare": COMPARE_CHOICES}


def specs(models, stimuli, view: dict, pooling: str = "none") -> dict[str, artifacts.Spec]:
    named = {}
    for d, pairs in enumerate(depths(models)):
        if len(pairs) < 2:
            continue
        named[f"depth{d + 1}"] = artifacts.model_rdm_spec([m.key for m, _ in pairs], stimuli,
                                                          [layer for _, layer in pairs], pooling,
                                                          view["rdm"], view["compare"])
    return named


def figure(models_by_depth: dict, arrays: dict, view: dict):
    curves = [(f"depth {name.removeprefix('depth')}", [m.accuracy for m in models],
               mean_dissimilarity(arrays[name]).tolist(), [m.name for m in models])
              for name, models in models_by_depth.items()]
    return layer_curves(curves, title=f"Mean dissimilarity to all other models ({view['rdm']} RDMs, "
                        f"{view['compare']}) against accuracy", y_title="mean dissimilarity")


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = url_codec.decode(search, DEFAULTS, CHOICES)
    controls = [dropdown(f"{_ID}-rdm-choice", "Input RDM (per model and layer)", RDM_CHOICES, view["rdm"]),
                dropdown(f"{_ID}-compare-choice", "Compare RDMs with", COMPARE_CHOICES, view["compare"])]
    hint = f"Depth d: each model's d-th default layer (the last is the penultimate). {selection.describe()}."
    return compute_panel.view_page(_ID, TITLE, controls, hint, ["curves"])


def plan(selection: Selection, rdm_method, compare_method):
    view = {"rdm": rdm_method, "compare": compare_method}
    url_codec.check(view, CHOICES)
    models = need_models(selection, 3)
    named = specs(models, selection.stimuli, view, selection.pooling)
    by_depth = {f"depth{d + 1}": pairs for d, pairs in enumerate(depths(models))}
    context = {"view": view, "models": {name: [m.key for m, _ in by_depth[name]] for name in named},
               "pairs": {name: [(m.key, layer) for m, layer in by_depth[name]] for name in named}}
    return named, list(named), context, url_codec.encode(view, DEFAULTS)


def draw(context: dict, arrays: dict):
    by_key = Selection.from_url_params(context["selection"]).by_key
    models = {name: [by_key[key] for key in keys] for name, keys in context["models"].items()}
    return (figure(models, arrays, context["view"]),)


compute_panel.register_submit(_ID, [Input(f"{_ID}-rdm-choice", "value"), Input(f"{_ID}-compare-choice", "value")], plan)
def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the curves."""
    view = context["view"]
    selection = Selection.from_url_params(context["selection"])
    depths = {name: [(selection.by_key[key].name, layer) for key, layer in pairs]
              for name, pairs in context["pairs"].items()}
    listing = "".join(f"    {name!r}: {pairs!r},\n" for name, pairs in depths.items())
    return prelude(selection) + f"""depths = {{  # depth -> (model, layer) pairs, models ordered by accuracy
{listing}}}
curves = {{}}
for depth, pairs in depths.items():
    rdms = np.stack([compute.rdm(activations(name, [layer])[0], method={view["rdm"]!r}, condensed=True)
                     .astype(np.float32) for name, layer in pairs])
    matrix = compute.model_rdm(rdms, method={view["compare"]!r})
    curves[depth] = (matrix.sum(axis=1) - np.diag(matrix)) / (len(pairs) - 1)  # mean dissimilarity to the others
"""


compute_panel.register_poll(_ID, [Output(f"{_ID}-curves", "figure")], draw, code)
