"""Training dynamics: how each layer converges to its final state, and whether networks that
generalise converge to more similar solutions than networks that memorise (the PWCCA paper,
Morcos et al. 2018: Figs 1 and 6, and Fig 3).

Above: for a checkpoint series (the models tagged ``series``, ordered by their ``step`` tag),
each default layer at every checkpoint against the same layer at the final checkpoint. Below:
for two values of the ``group`` tag (by default the zoo's true-labels vs shuffled-labels) and
one architecture, the similarity of every pair of models within each group and between them,
per layer. Both read every model of the stimulus set: the panel's model filters do not apply.
"""
from __future__ import annotations

import json
from collections import Counter
from itertools import combinations, product

import numpy as np
from dash import Input, Output, State, callback, html

from compute.engine import artifacts
from compute.measures.registry import MEASURES
from dashboard import compute_panel, services, url_codec
from dashboard.figures.training import over_training, within_between
from dashboard.selection import Selection, tag_value
from dashboard.view_parts.choices import MEASURE_CHOICES, method_dropdown, method_words, register_info
from dashboard.view_parts.depths import depth_layers
from dashboard.widgets import dropdown, figure_slot

PATH = "/training"
TITLE = "Training dynamics"
SELECTION = ("set", "pooling")  # the parts of the selection panel it reads
_ID = "training"
_GROUPS_ID = "training-groups"  # the within/between section: a job of its own

GENERALISING, MEMORISING = "true-labels", "shuffled-labels"
_CONTROLS = ("series", "measure", "group1", "group2", "arch")


# ---- what the models offer ----

def series_names(models) -> list[str]:
    """The values of the ``series`` tag among ``models``, sorted."""
    return sorted({tag_value(m, "series") for m in models} - {""})


def _step(model) -> int:
    try:
        return int(model.tags["step"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"checkpoint {model.name!r} has no integer 'step' tag "
                         f"(got {model.tags.get('step')!r}); tag every model of a series with its training step") from None


def checkpoints(models, series: str) -> list:
    """The models of ``series`` in order of training step (at least two, steps distinct)."""
    chain = sorted((m for m in models if tag_value(m, "series") == series and series), key=_step)
    if len(chain) < 2:
        known = ", ".join(series_names(models)) or "none: tag models with 'series' and 'step'"
        raise ValueError(f"checkpoint series {series!r} needs at least two checkpoints and has {len(chain)}; "
                         f"series of this stimulus set: {known}")
    steps = [_step(m) for m in chain]
    if len(set(steps)) < len(steps):
        raise ValueError(f"checkpoint series {series!r} has two models at the same step: {steps}")
    return chain


def group_names(models) -> list[str]:
    """The values of the ``group`` tag among ``models``, sorted."""
    return sorted({tag_value(m, "group") for m in models} - {""})


def architecture(model) -> str:
    """A model's architecture with its hyperparameters, as text: equal text, equal layers."""
    params = ",".join(f"{name}={json.dumps(value, separators=(',', ':'), sort_keys=True)}"
                      for name, value in sorted(model.hparams.items()))
    return f"{model.architecture}({params})"


FAMILY_WORDS = {"mlp": "sigmoid MLP", "cnn": "CNN"}


def architecture_words(model) -> str:
    """A model's architecture in words, e.g. "CNN, widths 16-128-64, dropout 0.2, input 1×8×8, 10
    classes" (the zoo's hyperparameters named; any other as "name value")."""
    hparams = {k: v for k, v in model.hparams.items() if v is not None}
    widths = ([hparams.pop("channels")] if "channels" in hparams else []) + list(hparams.pop("hidden", []) or [])
    words = [FAMILY_WORDS.get(model.architecture, model.architecture)]
    if widths:
        words.append(f"width{'s' if len(widths) > 1 else ''} {'-'.join(str(w) for w in widths)}")
    if "dropout" in hparams:
        words.append(f"dropout {hparams.pop('dropout')}")
    if "in_channels" in hparams and "image_size" in hparams:
        size = hparams.pop("image_size")
        words.append(f"input {hparams.pop('in_channels')}×{size}×{size}")
    if "in_features" in hparams:
        words.append(f"{hparams.pop('in_features')} inputs")
    if "num_classes" in hparams:
        words.append(f"{hparams.pop('num_classes')} classes")
    words += [f"{name.replace('_', ' ')} {json.dumps(value) if isinstance(value, (dict, list)) else value}"
              for name, value in sorted(hparams.items())]
    return ", ".join(words)


def arch_words(models, arch: str) -> str:
    """The words of the architecture ``arch`` (an :func:`architecture` text) of one of ``models``."""
    return next((architecture_words(m) for m in models if architecture(m) == arch), arch)


def members(models, group: str, arch: str) -> list:
    """The models of ``group`` with architecture ``arch``, by name."""
    return sorted((m for m in models if tag_value(m, "group") == group and architecture(m) == arch),
                  key=lambda m: m.name)


def _counts(models, group1: str, group2: str) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for model in models:
        group = tag_value(model, "group")
        if group in (group1, group2):
            counts.setdefault(architecture(model), Counter())[group] += 1
    return counts


def shared_architectures(models, group1: str, group2: str) -> list[str]:
    """Architectures with at least two models in each of two different groups (so both have
    pairs within), the most models first."""
    if group1 == group2:
        return []
    counts = _counts(models, group1, group2)
    shared = [a for a, count in counts.items() if count[group1] >= 2 and count[group2] >= 2]
    return sorted(shared, key=lambda a: (-sum(counts[a].values()), a))


def architecture_options(models, group1: str, group2: str) -> list[dict]:
    counts = _counts(models, group1, group2)
    return [{"label": f"{arch_words(models, a)} ({counts[a][group1]} + {counts[a][group2]} models)", "value": a}
            for a in shared_architectures(models, group1, group2)]


# ---- view state ----

def defaults(models) -> dict:
    """The first series; true-labels vs shuffled-labels when there; PWCCA; ``arch`` "" means
    the shared architecture with the most models (:func:`chosen_architecture`)."""
    series, groups = series_names(models), group_names(models)
    group1 = GENERALISING if GENERALISING in groups else (groups[0] if groups else "")
    group2 = MEMORISING if MEMORISING in groups else next((g for g in groups if g != group1), "")
    return {"series": series[0] if series else "", "measure": "pwcca", "group1": group1, "group2": group2,
            "arch": ""}


def chosen_architecture(models, view: dict) -> str:
    """``view["arch"]`` when the groups share it, else the shared one with the most models."""
    shared = shared_architectures(models, view["group1"], view["group2"])
    return view["arch"] if view["arch"] in shared else (shared[0] if shared else "")


def read_state(search: str | None, models) -> dict:
    groups = tuple(group_names(models))
    view = url_codec.decode(search, defaults(models), {"series": tuple(series_names(models)),
                                                       "measure": MEASURE_CHOICES, "group1": groups, "group2": groups})
    return {**view, "arch": chosen_architecture(models, view)}


def _search(models, view: dict) -> str:
    """The URL state: what differs from the defaults (the architecture: from the groups' default)."""
    default_arch = chosen_architecture(models, {**view, "arch": ""})
    return url_codec.encode(view, {**defaults(models), "arch": default_arch})


# ---- artifacts ----

def layers_of(model) -> tuple[list[str], list[str]]:
    """A model's default layers: their names in artifacts (as the other views name them, see
    ``view_parts.depths.depth_layers``) and their own names."""
    infos = services.layers(model.key)
    return depth_layers(infos), [info.name for info in infos if info.default]


def series_spec(chain, stimuli, measure: str, pooling: str = "none") -> artifacts.Spec:
    """Each default layer at every checkpoint of ``chain`` against itself at the last one: a
    vector of L x T entries, layer-major."""
    final = chain[-1].key
    pairs = [((m.key, layer), (final, layer)) for layer in layers_of(chain[-1])[0] for m in chain]
    return artifacts.similarities_spec(pairs, stimuli, measure, pooling)


def group_pairs(first, second) -> list[tuple]:
    """The pairs compared: within ``first``, within ``second`` (each in list order), then
    between (a model of ``first``, a model of ``second``)."""
    return [*combinations(first, 2), *combinations(second, 2), *product(first, second)]


def groups_spec(first, second, stimuli, measure: str, pooling: str = "none") -> artifacts.Spec:
    """Every pair of :func:`group_pairs` at each default layer: L x P entries, layer-major."""
    pairs = [((a.key, layer), (b.key, layer)) for layer in layers_of(first[0])[0]
             for a, b in group_pairs(first, second)]
    return artifacts.similarities_spec(pairs, stimuli, measure, pooling)


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURE_CHOICES)}")


def _axis(measure: str) -> str:
    higher = MEASURES[measure].kind == "similarity"
    return f"{method_words('measure', measure)} ({'higher' if higher else 'lower'} = more alike)"


# ---- the series: each layer against its final state ----

def plan(selection: Selection, series, measure, group1, group2, arch):
    """The series' similarities; the URL holds every control (the groups' job writes none)."""
    models = services.models(selection.stimulus_set)
    view = {"series": series or "", "measure": measure, "group1": group1 or "", "group2": group2 or "",
            "arch": arch or ""}
    view["arch"] = chosen_architecture(models, view)
    _check_measure(measure)
    chain = checkpoints(models, view["series"])
    context = {"view": view, "steps": [_step(m) for m in chain], "names": [m.name for m in chain],
               "layers": layers_of(chain[-1])[1]}
    spec = series_spec(chain, selection.stimuli, measure, selection.pooling)
    return {"curves": spec}, ["curves"], context, _search(models, view)


def draw(context: dict, arrays: dict):
    view, steps, layers = context["view"], context["steps"], context["layers"]
    values = np.asarray(arrays["curves"]).reshape(len(layers), len(steps))
    title = (f"Each layer vs itself at the final checkpoint: {view['series']}"
             f"<br><sup>{method_words('measure', view['measure'])} of the layer at each step with the same layer "
             f"at step {steps[-1]}</sup>")
    return (over_training(steps, values, layers, context["names"], title, _axis(view["measure"])),)


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the curves."""
    selection = Selection.from_url_params(context["selection"])
    listing = "".join(f"    {step}: {name!r},\n" for step, name in zip(context["steps"], context["names"]))
    return f"""import numpy as np

import compute
from compute.sources.representations import model_activations
from compute.sources.stimuli import get_stimulus_set

stimuli = get_stimulus_set({selection.stimulus_set!r})
layers = {context["layers"]!r}
checkpoints = {{  # training step -> model
{listing}}}
acts = {{step: dict(zip(layers, model_activations(name, stimuli, layers, pooling={selection.pooling!r})))
        for step, name in checkpoints.items()}}
final = acts[max(acts)]
# One row per layer (a curve), one column per checkpoint
curves = np.array([[compute.similarity(acts[step][layer], final[layer], measure={context["view"]["measure"]!r})
                    for step in checkpoints] for layer in layers])
"""


# ---- the groups: pairs within and between ----

def plan_groups(selection: Selection, measure, group1, group2, arch):
    """Every pair within and between the groups' models of ``arch`` (by default, or when the
    groups do not share it: the shared architecture with the most models)."""
    models = services.models(selection.stimulus_set)
    _check_measure(measure)
    if not group1 or group1 == group2:
        raise ValueError("choose two different groups to compare (the group tag's values)")
    arch = chosen_architecture(models, {"group1": group1, "group2": group2, "arch": arch or ""})
    if not arch:
        raise ValueError(f"groups {group1!r} and {group2!r} share no architecture with at least two models in "
                         "each; choose other groups")
    first, second = members(models, group1, arch), members(models, group2, arch)
    context = {"view": {"measure": measure, "group1": group1, "group2": group2, "arch": arch},
               "first": [m.name for m in first], "second": [m.name for m in second],
               "layers": layers_of(first[0])[1], "arch_words": architecture_words(first[0])}
    return {"pairs": groups_spec(first, second, selection.stimuli, measure, selection.pooling)}, ["pairs"], context, None


def split_pairs(values, n_first: int, n_second: int, n_layers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layers x pairs blocks of a :func:`groups_spec` vector: within first, within second, between."""
    within1, within2 = n_first * (n_first - 1) // 2, n_second * (n_second - 1) // 2
    values = np.asarray(values).reshape(n_layers, within1 + within2 + n_first * n_second)
    return values[:, :within1], values[:, within1:within1 + within2], values[:, within1 + within2:]


def draw_groups(context: dict, arrays: dict):
    view, layers = context["view"], context["layers"]
    within1, within2, between = split_pairs(arrays["pairs"], len(context["first"]), len(context["second"]),
                                            len(layers))
    groups = [(f"within {view['group1']}", within1), (f"within {view['group2']}", within2),
              (f"between {view['group1']} and {view['group2']}", between)]
    title = (f"Pairs of models within and between groups, per layer ({method_words('measure', view['measure'])})"
             f"<br><sup>{context.get('arch_words', view['arch'])}: bars are the mean over pairs, whiskers the min and max</sup>")
    return (within_between(layers, groups, title, _axis(view["measure"])),)


def code_groups(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the bars."""
    selection = Selection.from_url_params(context["selection"])
    return f"""from itertools import combinations, product

import numpy as np

import compute
from compute.sources.representations import model_activations
from compute.sources.stimuli import get_stimulus_set

stimuli = get_stimulus_set({selection.stimulus_set!r})
layers = {context["layers"]!r}
group1 = {context["first"]!r}
group2 = {context["second"]!r}
acts = {{name: dict(zip(layers, model_activations(name, stimuli, layers, pooling={selection.pooling!r})))
        for name in group1 + group2}}


def similarities(pairs, layer):
    return np.array([compute.similarity(acts[a][layer], acts[b][layer], measure={context["view"]["measure"]!r})
                     for a, b in pairs])


# layer -> one value per pair; a bar is the mean, its whiskers the min and max
within1 = {{layer: similarities(combinations(group1, 2), layer) for layer in layers}}
within2 = {{layer: similarities(combinations(group2, 2), layer) for layer in layers}}
between = {{layer: similarities(product(group1, group2), layer) for layer in layers}}
"""


# ---- layout and callbacks ----

def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    models = services.models(selection.stimulus_set)
    view = read_state(search, models)
    groups = group_names(models)
    controls = [
        dropdown(f"{_ID}-series-choice", "Checkpoint series", series_names(models), view["series"]),
        method_dropdown(f"{_ID}-measure-choice", "Measure", "measure", view["measure"]),
        dropdown(f"{_ID}-group1-choice", "Group 1 (e.g. generalising)", groups, view["group1"]),
        dropdown(f"{_ID}-group2-choice", "Group 2 (e.g. memorising)", groups, view["group2"]),
        dropdown(f"{_ID}-arch-choice", "Architecture of the pairs",
                 architecture_options(models, view["group1"], view["group2"]), view["arch"]),
    ]
    hint = ("Every model of the stimulus set is read here (the model filters do not apply): a series is "
            "the models with that series tag, by step; groups are values of the group tag. Layers: "
            f"the default ones. Stimuli: {selection.stimulus_set}; pooling: {selection.pooling}.")
    more = [html.H3("Within and between groups"), *compute_panel.job_components(_GROUPS_ID),
            html.Div([figure_slot(f"{_GROUPS_ID}-bars")], className="figures")]
    return compute_panel.view_page(_ID, TITLE, controls, hint, ["curves"], more)


@callback(
    Output(f"{_ID}-arch-choice", "options"),
    Output(f"{_ID}-arch-choice", "value"),
    Input(f"{_ID}-group1-choice", "value"),
    Input(f"{_ID}-group2-choice", "value"),
    State(f"{_ID}-arch-choice", "value"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def _follow_groups(group1, group2, arch, selection):
    """The architectures the two groups share; the current one kept when it still is."""
    models = services.models(Selection.from_url_params(selection).stimulus_set)
    view = {"group1": group1 or "", "group2": group2 or "", "arch": arch or ""}
    return architecture_options(models, view["group1"], view["group2"]), chosen_architecture(models, view)


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value") for name in _CONTROLS], plan)
compute_panel.register_poll(_ID, [Output(f"{_ID}-curves", "figure")], draw, code)
register_info(f"{_ID}-measure-choice", "measure")
compute_panel.register_submit(_GROUPS_ID, [Input(f"{_ID}-{name}-choice", "value") for name in _CONTROLS[1:]], plan_groups)
compute_panel.register_poll(_GROUPS_ID, [Output(f"{_GROUPS_ID}-bars", "figure")], draw_groups, code_groups)
