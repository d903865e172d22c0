"""Shared space (SRM): how far the picked networks are rotations of one shared representation.

At each depth (the d-th default layer of each model, as in the layer curves) a shared response
model with k dimensions (Lu et al. 2018, eq. 1) is fitted on a fixed, class-stratified half of
the stimuli. On the other half the view shows the variance SRM explains, and the paper's test
of the alignment (Fig. 1B, 2): the Pearson r between the inter-network RSM (iRSM) and the mean
within-network RSM (wRSM), in the native spaces and in the shared space.
"""
from __future__ import annotations

import math

from dash import Input, Output, html

from compute.engine import artifacts
from compute.engine.recipes import SRM_FIT_FIELDS
from dashboard import compute_panel, url_codec
from dashboard.figures.grouped_bars import grouped_bars
from dashboard.selection import Selection, most_accurate, need_models, ordered
from dashboard.view_parts.depths import depths
from dashboard.widgets import dropdown, model_options

PATH = "/srm"
TITLE = "Shared space (SRM)"
SELECTION = ("set", "where", "models", "pooling")  # the parts of the selection panel it reads
_ID = "srm"

MAX_MODELS = 12
TRAIN_FRACTION = 0.5
SEED = 0
BAR_WORDS = ("Variance explained = 1 − Σ‖X − W·S‖² / Σ‖X‖²: each model's centred activations X rebuilt from "
             "the shared response S through its map W (1 = every model a rotation of one shared response; below "
             "0 = worse than predicting its mean). iRSM: stimulus × stimulus cosine similarity between one "
             "network's patterns and the mean of the others' (in its native space, or in the shared space); "
             "wRSM: each network's own, averaged; bars: Pearson r of the two over stimulus pairs (higher = the "
             "networks' geometries line up better).")
N_ITER = 10
K_CHOICES = ("2", "5", "10", "20", "50", "100")
DEFAULTS = {"k": "10", "align": ""}
_FIELD = {name: i for i, name in enumerate(SRM_FIT_FIELDS)}


def comparable(models, cap: int = MAX_MODELS) -> list:
    """The default models to align: instances of one architecture trained alike, as in the SRM
    paper (e.g. the zoo's seeds of one family, width and number of epochs).

    The largest group of ``models`` with the same architecture, hyperparameters and ``epochs``
    and ``labels`` tags (ties: the group holding the most accurate model), its ``cap`` most
    accurate members; when no two models are alike, the ``cap`` most accurate models.
    """
    groups: dict[tuple, list] = {}
    for model in models:
        alike = (model.architecture, repr(sorted(model.hparams.items())), str(model.tags.get("epochs")),
                 str(model.tags.get("labels")))
        groups.setdefault(alike, []).append(model)
    best = max(groups.values(), default=[],
               key=lambda group: (len(group), max((m.accuracy or 0.0) for m in group)))
    return most_accurate(best if len(best) >= 2 else models, cap)


def picked(selection: Selection, align: str) -> list:
    """The models named in ``align`` (comma-separated) that the selection holds, or, when it
    names none of them, the selection's :func:`comparable` models."""
    wanted = {name for name in (align or "").split(",") if name}
    chosen = [m for m in selection.models if m.name in wanted]
    return chosen or comparable(selection.models)


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = url_codec.decode(search, DEFAULTS, {"k": K_CHOICES})
    controls = [
        dropdown(f"{_ID}-models-choice", "Models to align", model_options(selection.models),
                 [m.name for m in picked(selection, view["align"])], multi=True, clearable=True,
                 searchable=True, placeholder="pick at least two models"),
        dropdown(f"{_ID}-k-choice", "Shared dimensions k", K_CHOICES, view["k"]),
    ]
    hint = (f"Depth d: each model's d-th default layer. SRM is fitted on {TRAIN_FRACTION:.0%} of each class's "
            f"stimuli (seed {SEED}) and evaluated on the rest; k is capped by the smallest layer width and "
            f"the fitting stimuli. At most {MAX_MODELS} models (the most accurate of those picked); by default "
            f"the most accurate models of one architecture trained alike. {selection.describe()}. {BAR_WORDS}")
    return compute_panel.view_page(_ID, TITLE, controls, hint, ["variance", "agreement"])


def plan(selection: Selection, names, k):
    """One srm_fit per depth shared by at least two of the picked models, and the URL state."""
    if str(k) not in K_CHOICES:
        raise ValueError(f"k must be one of {', '.join(K_CHOICES)} shared dimensions, got {k!r}")
    try:
        chosen = ordered({m.key: m for m in (selection.named(name) for name in names or [])}.values())
    except KeyError as error:
        raise ValueError(f"{error.args[0]}; pick the models to align from the list") from None
    if len(chosen) < 2:
        need_models(selection, 2)
        raise ValueError("SRM aligns at least two models: pick two or more in 'Models to align'")
    note = ""
    if len(chosen) > MAX_MODELS:
        note = f"the {MAX_MODELS} most accurate of the {len(chosen)} models picked"
        chosen = most_accurate(chosen, MAX_MODELS)
    named, layers = {}, {}
    for d, pairs in enumerate(depths(chosen)):
        if len(pairs) >= 2:
            name = f"depth{d + 1}"
            named[name] = artifacts.srm_fit_spec([m.key for m, _ in pairs], selection.stimuli,
                                                 [layer for _, layer in pairs], selection.pooling, int(k),
                                                 TRAIN_FRACTION, SEED, N_ITER)
            layers[name] = [[m.key, layer] for m, layer in pairs]
    if not named:
        raise ValueError("no depth has a default layer in two of the picked models")
    view = {"k": str(k), "align": ",".join(m.name for m in chosen)}
    context = {"view": view, "layers": layers, "note": note}
    # The models are always written: the default choice follows the registry, which may change.
    return named, list(named), context, url_codec.encode(view, {**DEFAULTS, "align": None})


def draw(context: dict, arrays: dict):
    """The variance-explained bars and the iRSM-wRSM agreement bars, one group per depth."""
    depth_names = list(context["layers"])
    values = {name: arrays[name] for name in depth_names}
    categories = [f"depth {name.removeprefix('depth')}" for name in depth_names]
    hover = []
    for name in depth_names:
        members = context["layers"][name]
        layers = ", ".join(dict.fromkeys(layer for _, layer in members))
        hover.append(f"k = {int(values[name][_FIELD['k']])}; {len(members)} models; layers: {layers}")

    def column(field):
        return [float(values[name][_FIELD[field]]) for name in depth_names]

    used = sorted({int(values[name][_FIELD["k"]]) for name in depth_names})
    k = f"k = {used[0]}" + (f"–{used[-1]}" if len(used) > 1 else "")
    if used[0] < int(context["view"]["k"]):
        k += f" (of {context['view']['k']} asked: capped by layer widths or stimuli)"
    models = len(context["view"]["align"].split(","))
    about = f"{models} models, {k}" + (f"; {context['note']}" if context["note"] else "")
    explained = [column("variance_explained"), column("train_variance_explained")]
    low = min([0.0, *(v for series in explained for v in series if not math.isnan(v))])
    variance = grouped_bars(
        categories, [("held-out stimuli", explained[0], hover), ("fitting stimuli", explained[1], hover)],
        title=f"Variance explained by SRM<br><sup>{about}</sup>",
        y_title="variance explained (higher = more shared)", y_range=(low, 1.12))
    native = column("native_agreement")
    why = "; native: n/a where layer widths differ" if any(math.isnan(v) for v in native) else ""
    agreement = grouped_bars(
        categories, [("native space", native, hover), ("shared space", column("shared_agreement"), hover)],
        title=f"iRSM vs mean wRSM (Lu et al. 2018, Fig. 2)<br><sup>held-out stimuli{why}</sup>",
        y_title="Pearson r(iRSM, wRSM) (higher = better aligned)", y_range=(-1.0, 1.12))
    return variance, agreement


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the view's numbers."""
    selection = Selection.from_url_params(context["selection"])
    listing = ""
    for name, members in context["layers"].items():
        pairs = ", ".join(repr((selection.by_key[key].name, layer)) for key, layer in members)
        listing += f"    'depth {name.removeprefix('depth')}': [{pairs}],\n"
    k = int(context["view"]["k"])
    return f"""import compute
from compute.measures.srm import shared_space_rsm_agreement, srm_variance_explained, stratified_split
from compute.sources.representations import model_activations
from compute.sources.stimuli import get_stimulus_set

stimuli = get_stimulus_set({selection.stimulus_set!r})
train, test = stratified_split(stimuli.labels, {TRAIN_FRACTION!r}, seed={SEED})
depths = {{  # (model, layer) at each depth
{listing}}}
for depth, pairs in depths.items():
    Xs = [model_activations(name, stimuli, [layer], pooling={selection.pooling!r})[0] for name, layer in pairs]
    k = min({k}, train.size, *(X.shape[1] for X in Xs))
    fit = compute.fit_srm([X[train] for X in Xs], k, n_iter={N_ITER}, seed={SEED})
    held_out = [X[test] for X in Xs]
    agreement = shared_space_rsm_agreement(fit, held_out)  # native is None when widths differ
    print(depth, "k", k, "variance explained: held out", srm_variance_explained(fit, held_out),
          "fitting", fit.variance_explained, "r(iRSM, wRSM): native", agreement.native,
          "shared", agreement.shared)
"""


compute_panel.register_submit(_ID, [Input(f"{_ID}-models-choice", "value"), Input(f"{_ID}-k-choice", "value")], plan)
compute_panel.register_poll(_ID, [Output(f"{_ID}-variance", "figure"), Output(f"{_ID}-agreement", "figure")], draw, code)
