"""Layer-by-layer similarity: every layer of model A against every layer of model B.

One similarity measure (CKA, RV, CCA family, Procrustes; see ``compute.MEASURES``) over the
stimuli's activations; "vs random-init twin" compares a trained model with its own
architecture before training (the zoo's untrained models).
"""
from __future__ import annotations

from dash import Input, Output, State, callback, html

from compute.engine import artifacts
from compute.measures.registry import MEASURES
from dashboard import compute_panel, services, url_codec
from dashboard.figures.heatmap import labelled_heatmap, small_multiples
from dashboard.selection import Selection, best_model
from dashboard.snippets import prelude
from dashboard.view_parts.choices import MEASURE_CHOICES
from dashboard.widgets import dropdown, figure_slot, message_figure, model_dropdown, model_options

PATH = "/layers"
TITLE = "Layer grid"
_ID = "layer-grid"

LAYER_SETS = {"default": "default layers", "all": "every named layer"}
MULTIPLES = {"off": "off", "selected": "A against each selected model", "twins": "each selected model against its random-init twin"}
MAX_MULTIPLES = 8
_MULTIPLES_ID = "layer-grid-multiples"  # the small multiples: a job of their own
_ANNOTATE_UP_TO = 20
CHOICES = {"measure": MEASURE_CHOICES, "layers": tuple(LAYER_SETS), "multiples": tuple(MULTIPLES)}


def random_init_twin(model, models):
    """The untrained model (0 epochs) of ``model``'s architecture and hyperparameters, the same
    seed preferred; None when there is none or ``model`` is itself untrained."""
    if model.tags.get("epochs") == 0:
        return None
    twins = [m for m in models if m.key != model.key and m.tags.get("epochs") == 0
             and m.architecture == model.architecture and m.hparams == model.hparams]
    twins.sort(key=lambda m: (m.tags.get("seed") != model.tags.get("seed"), m.name))
    return twins[0] if twins else None


def chosen_layers(layers, layer_set: str) -> list[str]:
    """Names of a model's layers in registration order: its default selection, or all of them."""
    return [info.name for info in layers if layer_set == "all" or info.default]


def defaults(selection: Selection) -> dict:
    """A: the most accurate selected model; B: its random-init twin (selected or not)."""
    best = best_model(selection.choices)
    twin = random_init_twin(best, services.models(selection.stimulus_set))
    return {"a": best.name, "b": (twin or best).name, "measure": "cka_linear", "layers": "default", "multiples": "off"}


def read_state(search: str | None, selection: Selection) -> dict:
    names = tuple(m.name for m in services.models(selection.stimulus_set))
    return url_codec.decode(search, defaults(selection), {"a": names, "b": names, **CHOICES})


def spec(model_a, model_b, stimuli, view: dict, pooling: str = "none") -> artifacts.Spec:
    layers_a = chosen_layers(services.layers(model_a.key), view["layers"])
    layers_b = chosen_layers(services.layers(model_b.key), view["layers"])
    return artifacts.layer_grid_spec(model_a.key, layers_a, model_b.key, layers_b, stimuli, view["measure"], pooling)


def figure(grid, layers_a, layers_b, view: dict):
    """The L_A x L_B heatmap on the measure's own range."""
    measure = MEASURES[view["measure"]]
    small = len(layers_a) <= _ANNOTATE_UP_TO and len(layers_b) <= _ANNOTATE_UP_TO
    return labelled_heatmap(
        grid, [f"A: {name}" for name in layers_a], [f"B: {name}" for name in layers_b],
        title=f"{measure.name}: {view['a']} (rows) × {view['b']} (columns)",
        colorbar_title=f"{measure.name} ({measure.kind})", hover_label=measure.name,
        zrange=measure.range, annotate=small,
    )


def _twin_button(model, models) -> tuple[bool, str]:
    twin = random_init_twin(model, models)
    return twin is None, f"B = random-init twin ({twin.name})" if twin else "no random-init twin"


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = read_state(search, selection)
    chosen = [selection.named(view[side]) for side in ("a", "b")]
    models = selection.choices + [m for m in chosen if m not in selection.choices]  # a twin left out
    disabled, label = _twin_button(chosen[0], services.models(selection.stimulus_set))
    controls = [
        model_dropdown(f"{_ID}-a-choice", "Model A (rows)", models, view["a"]),
        model_dropdown(f"{_ID}-b-choice", "Model B (columns)", models, view["b"]),
        html.Button(label, id=f"{_ID}-twin", disabled=disabled, className="control button"),
        dropdown(f"{_ID}-measure-choice", "Measure", MEASURE_CHOICES, view["measure"]),
        dropdown(f"{_ID}-layers-choice", "Layers",
                 [{"label": text, "value": value} for value, text in LAYER_SETS.items()], view["layers"]),
        dropdown(f"{_ID}-multiples-choice", f"Small multiples (up to {MAX_MULTIPLES})",
                 [{"label": text, "value": value} for value, text in MULTIPLES.items()], view["multiples"]),
    ]
    more = [html.H3("Small multiples"), *compute_panel.job_components(_MULTIPLES_ID), figure_slot(f"{_MULTIPLES_ID}-grid")]
    return compute_panel.view_page(_ID, TITLE, controls,
                             f"Stimuli: {selection.stimulus_set}; pooling: {selection.pooling}.", ["heatmap"], more)


@callback(
    Output(f"{_ID}-twin", "disabled"),
    Output(f"{_ID}-twin", "children"),
    Input(f"{_ID}-a-choice", "value"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def follow_model_a(name, selection):
    selection = Selection.from_url_params(selection)
    return _twin_button(selection.named(name), services.models(selection.stimulus_set))


@callback(
    Output(f"{_ID}-b-choice", "options"),
    Output(f"{_ID}-b-choice", "value"),
    Input(f"{_ID}-twin", "n_clicks"),
    State(f"{_ID}-a-choice", "value"),
    State(f"{_ID}-b-choice", "options"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def use_twin(_, name, options, selection):
    """B becomes A's random-init twin (offered in B's list even when the selection leaves it out)."""
    selection = Selection.from_url_params(selection)
    model = selection.named(name)
    twin = random_init_twin(model, services.models(selection.stimulus_set)) or model
    offered = {o["value"] for o in options}
    return options + ([] if twin.name in offered else model_options([twin])), twin.name


def plan(selection: Selection, a, b, measure, layer_set, multiples="off"):
    view = {"a": a, "b": b, "measure": measure, "layers": layer_set, "multiples": multiples}
    url_codec.check(view, CHOICES)
    grid = spec(selection.named(a), selection.named(b), selection.stimuli, view, selection.pooling)
    context = {"view": view, "layers_a": grid.params["layers_a"], "layers_b": grid.params["layers_b"]}
    # Both models are always written: the defaults (most accurate, its twin) may change.
    search = url_codec.encode(view, {**defaults(selection), "a": None, "b": None})
    return {"grid": grid}, ["grid"], context, search


def draw(context: dict, arrays: dict):
    return (figure(arrays["grid"], context["layers_a"], context["layers_b"], context["view"]),)


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value")
                              for name in ("a", "b", "measure", "layers", "multiples")], plan)
def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the grid."""
    view = context["view"]
    return prelude(Selection.from_url_params(context["selection"])) + f"""layers_a = {context["layers_a"]!r}
layers_b = {context["layers_b"]!r}
acts_a = dict(zip(layers_a, activations({view["a"]!r}, layers_a)))
acts_b = dict(zip(layers_b, activations({view["b"]!r}, layers_b)))
grid = compute.layer_grid(acts_a, acts_b, measure={view["measure"]!r})  # rows: A's layers, columns: B's{_direction(view["measure"])}
"""


def _direction(measure: str) -> str:
    """For a measure whose argument order matters, which way the grid reads."""
    return "" if MEASURES[measure].symmetric else "; not symmetric: each row's layer is X, the column's Y"


compute_panel.register_poll(_ID, [Output(f"{_ID}-heatmap", "figure")], draw, code)


def multiple_pairs(selection: Selection, a: str, multiples: str) -> list[tuple]:
    """The (model A, model B) pairs of the small multiples: A against each selected model, or
    each selected model with a random-init twin against it; at most ``MAX_MULTIPLES``."""
    everything = services.models(selection.stimulus_set)
    if multiples == "selected":
        model_a = selection.named(a)
        pairs = [(model_a, m) for m in selection.models if m.key != model_a.key]
    elif multiples == "twins":
        pairs = [(m, twin) for m in selection.models if (twin := random_init_twin(m, everything))]
    else:
        return []
    return pairs[-MAX_MULTIPLES:]  # the most accurate (models are ordered by accuracy)


def plan_multiples(selection: Selection, a, measure, layer_set, multiples):
    view = {"a": a, "measure": measure, "layers": layer_set, "multiples": multiples}
    url_codec.check(view, CHOICES)
    pairs = multiple_pairs(selection, a, multiples)
    if multiples != "off" and not pairs:
        raise ValueError("no pairs for small multiples: select more models (or models with a random-init twin)")
    named = {f"grid{i}": spec(ma, mb, selection.stimuli, view, selection.pooling) for i, (ma, mb) in enumerate(pairs)}
    context = {"view": view, "pairs": [[ma.name, mb.name] for ma, mb in pairs],
               "layers": [[g.params["layers_a"], g.params["layers_b"]] for g in named.values()]}
    return named, list(named), context, None


def draw_multiples(context: dict, arrays: dict):
    if not context["pairs"]:
        return (message_figure("Choose small multiples in the panel to compare several pairs at once."),)
    measure = MEASURES[context["view"]["measure"]]
    panels = [(arrays[f"grid{i}"], [f"A: {n}" for n in la], [f"B: {n}" for n in lb], f"{a} × {b}")
              for i, ((a, b), (la, lb)) in enumerate(zip(context["pairs"], context["layers"]))]
    return (small_multiples(panels, f"{measure.name} ({measure.kind})", measure.range,
                            f"{measure.name}, layers (rows) × layers (columns), one panel per pair"),)


compute_panel.register_submit(_MULTIPLES_ID, [Input(f"{_ID}-{name}-choice", "value")
                                        for name in ("a", "measure", "layers", "multiples")], plan_multiples)
compute_panel.register_poll(_MULTIPLES_ID, [Output(f"{_MULTIPLES_ID}-grid", "figure")], draw_multiples)
