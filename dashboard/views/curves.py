"""Layer curves: how unlike the other models each model is, against its accuracy, per depth.

At each depth (the d-th of each model's default layers: the zoo's activations after each
block) the models' input RDMs are compared into a model RDM; each model's mean dissimilarity
to all others is plotted against its accuracy, a scatter per depth with its least-squares
quadratic trend in accuracy. With the null on (100 or 1000 permutations of the stimuli,
dashboard/view_parts/model_null.py), each depth gets its chance band: per model, the 2.5-97.5 %
range of the same mean under the model RDM's null, a bar at the model's accuracy.
"""
from __future__ import annotations

from dash import Input, Output, html

from compute.engine import artifacts
from compute.measures.summaries import mean_dissimilarity
from dashboard import compute_panel, url_codec
from dashboard.figures.curves import layer_curves
from dashboard.selection import Selection, need_models
from dashboard.snippets import prelude
from dashboard.view_parts import model_null
from dashboard.view_parts.choices import COMPARE_CHOICES, RDM_CHOICES, method_dropdown, method_words, register_info
from dashboard.view_parts.depths import depths
from dashboard.widgets import dropdown

PATH = "/curves"
TITLE = "Layer curves"
SELECTION = ("set", "where", "models", "pooling")  # the parts of the selection panel it reads
_ID = "curves"

# Euclidean by default: correlation-type RDMs are undefined for all-zero patterns, which the
# zoo's cnn-w2-s0-untrained has at depth 1 (55 stimuli silent after its first ReLU).
DEFAULTS = {"rdm": "euclidean", "compare": "spearman", "null": "off"}
CHOICES = {"rdm": RDM_CHOICES, "compare": COMPARE_CHOICES, "null": tuple(model_null.NULLS)}
BAND_NAME = "chance band (95 % of the null)"
BAND_WORDS = (
    "Chance band (null on): for each model, the 2.5-97.5 % range of its mean dissimilarity to the others "
    "when every entry of the depth's model RDM is replaced by its permutation-null sample (the stimuli of "
    "the second RDM of each pair permuted, n = 100 or 1000, seed 0). A point above its band is more unlike "
    "the others than chance would make it; below, more alike (each band is a shaded bar at the model's "
    "accuracy). The line through a depth's points is their least-squares quadratic in accuracy."
)


def specs(models, stimuli, view: dict, pooling: str = "none") -> dict[str, artifacts.Spec]:
    """Each depth's model RDM ("depth<d>") and, with the null on, its null ("null<d>")."""
    named = {}
    for d, pairs in enumerate(depths(models)):
        if len(pairs) < 2:
            continue
        named[f"depth{d + 1}"] = artifacts.model_rdm_spec([m.key for m, _ in pairs], stimuli,
                                                          [layer for _, layer in pairs], pooling,
                                                          view["rdm"], view["compare"])
        null = model_null.null_spec(named[f"depth{d + 1}"], view)
        if null is not None:
            named[f"null{d + 1}"] = null
    return named


def figure(models_by_depth: dict, arrays: dict, view: dict):
    curves = [(f"depth {name.removeprefix('depth')}", [m.accuracy for m in models],
               mean_dissimilarity(arrays[name]).tolist(), [m.name for m in models])
              for name, models in models_by_depth.items()]
    nulls = [arrays.get(name.replace("depth", "null")) for name in models_by_depth]
    bands = [None if null is None else model_null.chance_band(null) for null in nulls]
    return layer_curves(curves, title=f"How unlike the other models each model is, per depth, against its accuracy"
                        f"<br><sup>input RDMs: {method_words('rdm', view['rdm'])}; compared by "
                        f"{method_words('compare', view['compare'])}</sup>", y_title=y_title(view["compare"]),
                        bands=bands, band_name=BAND_NAME, quantity="mean dissimilarity")


def y_title(compare: str) -> str:
    """The y axis: the quantity, what it is made of, and its direction."""
    return (f"mean dissimilarity to the other models<br>(mean {model_null.dissimilarity_label(compare)} "
            "of input RDMs; higher = more unlike them)")


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = url_codec.decode(search, DEFAULTS, CHOICES)
    controls = [method_dropdown(f"{_ID}-rdm-choice", "Input RDM (per model and layer)", "rdm", view["rdm"]),
                method_dropdown(f"{_ID}-compare-choice", "Compare RDMs with", "compare", view["compare"]),
                dropdown(f"{_ID}-null-choice", "Null (permutations of the stimuli)", model_null.options(model_null.NULLS),
                         view["null"]),
                html.P(BAND_WORDS, className="hint")]
    hint = f"Depth d: each model's d-th default layer (the last is the penultimate). {selection.describe()}."
    return compute_panel.view_page(_ID, TITLE, controls, hint, ["curves"])


def plan(selection: Selection, rdm_method, compare_method, null="off"):
    view = {"rdm": rdm_method, "compare": compare_method, "null": null}
    url_codec.check(view, CHOICES)
    models = need_models(selection, 3)
    named = specs(models, selection.stimuli, view, selection.pooling)
    by_depth = {f"depth{d + 1}": pairs for d, pairs in enumerate(depths(models))}
    shown = [name for name in named if name.startswith("depth")]
    context = {"view": view, "models": {name: [m.key for m, _ in by_depth[name]] for name in shown},
               "pairs": {name: [(m.key, layer) for m, layer in by_depth[name]] for name in shown}}
    return named, list(named), context, url_codec.encode(view, DEFAULTS)


def draw(context: dict, arrays: dict):
    by_key = Selection.from_url_params(context["selection"]).by_key
    models = {name: [by_key[key] for key in keys] for name, keys in context["models"].items()}
    return (figure(models, arrays, context["view"]),)


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value") for name in ("rdm", "compare", "null")],
                              plan)


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the curves."""
    view = context["view"]
    selection = Selection.from_url_params(context["selection"])
    depths = {name: [(selection.by_key[key].name, layer) for key, layer in pairs]
              for name, pairs in context["pairs"].items()}
    listing = "".join(f"    {name!r}: {pairs!r},\n" for name, pairs in depths.items())
    accuracy = {name: selection.named(name).accuracy for pairs in depths.values() for name, _ in pairs}
    return prelude(selection) + f"""depths = {{  # depth -> (model, layer) pairs, models ordered by accuracy
{listing}}}
accuracy = {accuracy!r}  # top-1, as a fraction (None: unknown, left out of the figure)
curves, trends, bands = {{}}, {{}}, {{}}
for depth, pairs in depths.items():
    rdms = np.stack([compute.rdm(activations(name, [layer])[0], method={view["rdm"]!r}, condensed=True)
                     .astype(np.float32) for name, layer in pairs])
    matrix = compute.model_rdm(rdms, method={view["compare"]!r})
    curves[depth] = (matrix.sum(axis=1) - np.diag(matrix)) / (len(pairs) - 1)  # mean dissimilarity to the others
    known = [i for i, (name, _) in enumerate(pairs) if accuracy[name] is not None]
    # The trend line: least squares in accuracy, quadratic (linear for 2 or 3 models), highest power first
    trends[depth] = np.polyfit([accuracy[pairs[i][0]] for i in known], curves[depth][known],
                               min(2, max(1, len(known) - 2)))
""" + _band_code(view)


def _band_code(view: dict) -> str:
    if not model_null.n_perm(view):
        return ""
    return f"""    # The chance band: each model's mean dissimilarity under the null, 2.5-97.5 % over the permutations
    null = compute.model_rdm_null(rdms, method={view["compare"]!r}, n_perm={model_null.n_perm(view)}, seed={model_null.NULL_SEED})
    bands[depth] = np.quantile(null.mean_null, [0.025, 0.975], axis=1)  # (2, models): low, high
"""


compute_panel.register_poll(_ID, [Output(f"{_ID}-curves", "figure")], draw, code)
register_info(f"{_ID}-rdm-choice", "rdm")
register_info(f"{_ID}-compare-choice", "compare")
