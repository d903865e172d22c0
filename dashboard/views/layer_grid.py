"""Layer-by-layer similarity: every layer of model A against every layer of model B.

One similarity measure (CKA, RV, CCA family, Procrustes; see ``compute.MEASURES``) over the
stimuli's activations; "vs random-init twin" compares a trained model with its own
architecture before training (the zoo's untrained models). A permutation null (off, 100 or 1000
permutations of B's stimuli) rings the cells above chance after Benjamini-Hochberg FDR and can
show calibrated scores instead of raw ones; the small multiples share it. Below the grid, each
model's dimensionality per layer (``compute.dimensionality``), a job of its own.
"""
from __future__ import annotations

import numpy as np
from dash import Input, Output, State, callback, html

from compute.engine import artifacts
from compute.engine.recipes import GRID_NULL_FIELDS
from compute.measures.registry import DIMENSIONALITY_METHODS, MEASURES
from dashboard import compute_panel, services, url_codec
from dashboard.figures.curves import depth_curves
from dashboard.figures.heatmap import labelled_heatmap, mark_cells, small_multiples
from dashboard.selection import Selection, best_model
from dashboard.snippets import prelude
from dashboard.view_parts.choices import MEASURE_CHOICES
from dashboard.view_parts.null_choices import ALPHA, NULL_SEED, NULLS, n_perm, options
from dashboard.widgets import dropdown, figure_slot, message_figure, model_dropdown, model_options

PATH = "/layers"
TITLE = "Layer grid"
SELECTION = ("set", "where", "models", "pooling")  # the parts of the selection panel it reads
_ID = "layer-grid"

LAYER_SETS = {"default": "default layers", "all": "every named layer"}
MULTIPLES = {"off": "off", "selected": "A against each selected model", "twins": "each selected model against its random-init twin"}
MAX_MULTIPLES = 8
_MULTIPLES_ID = "layer-grid-multiples"  # the small multiples: a job of their own
_DIMS_ID = "layer-grid-dims"  # the dimensionality curves: another
_ANNOTATE_UP_TO = 20
SHOWS = {"raw": "raw scores", "calibrated": "calibrated scores (0 = chance, 1 = best)"}
CHOICES = {"measure": MEASURE_CHOICES, "layers": tuple(LAYER_SETS), "multiples": tuple(MULTIPLES),
           "null": tuple(NULLS), "show": tuple(SHOWS), "dim": tuple(DIMENSIONALITY_METHODS)}
NULL_WORDS = (
    "Null: the stimuli of B are permuted n times (n = 100 or 1000, seed 0) and every cell's measure "
    "recomputed; p = (1 + #{null at least as extreme}) / (1 + n), one-sided. Ringed cells: p < 0.05 after "
    "Benjamini-Hochberg FDR over the grid's cells (each small multiple over its own). Calibrated = "
    "(s − mean null) / (best − mean null), best = 1 for similarities (for distances the same on the "
    "negated scale, best = 0): 0 = chance, 1 = best."
)


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
    return {"a": best.name, "b": (twin or best).name, "measure": "cka_linear", "layers": "default", "multiples": "off",
            "null": "off", "show": "raw", "dim": "participation_ratio"}


def read_state(search: str | None, selection: Selection) -> dict:
    names = tuple(m.name for m in services.models(selection.stimulus_set))
    return url_codec.decode(search, defaults(selection), {"a": names, "b": names, **CHOICES})


def spec(model_a, model_b, stimuli, view: dict, pooling: str = "none") -> artifacts.Spec:
    layers_a = chosen_layers(services.layers(model_a.key), view["layers"])
    layers_b = chosen_layers(services.layers(model_b.key), view["layers"])
    return artifacts.layer_grid_spec(model_a.key, layers_a, model_b.key, layers_b, stimuli, view["measure"], pooling,
                                     null=n_perm(view), seed=NULL_SEED)


def shown(grid, view: dict) -> tuple:
    """What a grid artifact draws as: (the scores shown, the cells to ring or None, calibrated?).
    A null grid is the stack of GRID_NULL_FIELDS; a plain one the scores alone."""
    grid = np.asarray(grid, dtype=float)
    if grid.ndim == 2:
        return grid, None, False
    fields = dict(zip(GRID_NULL_FIELDS, grid))
    calibrated = view.get("show") == "calibrated"
    with np.errstate(invalid="ignore"):
        marked = fields["q"] < ALPHA
    return fields["calibrated" if calibrated else "values"], marked, calibrated


def colour_scale(measure: str, calibrated: bool, values) -> tuple[str, tuple[float, float]]:
    """The colour bar's title (which score, in words with its direction) and range."""
    m = MEASURES[measure]
    if not calibrated:
        return f"{m.name}<br>({m.kind}: {'higher' if m.kind == 'similarity' else 'lower'} = more alike)", m.range
    low = np.nanmin(values) if np.isfinite(values).any() else 0.0
    return f"calibrated {m.name}<br>(0 = chance, 1 = best;<br>higher = more alike)", (min(0.0, float(low)), 1.0)


def mark_words(view: dict, cells: str) -> str:
    """The rings' legend: what they mean, over which ``cells``."""
    return f"ringed: p < {ALPHA} after BH-FDR over {cells} ({view['null']} permutations of B's stimuli)"


def figure(grid, layers_a, layers_b, view: dict):
    """The L_A x L_B heatmap: raw scores on the measure's own range, or calibrated ones; with a
    null, the cells above chance ringed."""
    measure = MEASURES[view["measure"]]
    values, marked, calibrated = shown(grid, view)
    rows, cols = [f"A: {name}" for name in layers_a], [f"B: {name}" for name in layers_b]
    title = f"{measure.name}: {view['a']} (rows) × {view['b']} (columns)"
    colorbar, zrange = colour_scale(view["measure"], calibrated, values)
    small = len(layers_a) <= _ANNOTATE_UP_TO and len(layers_b) <= _ANNOTATE_UP_TO
    fig = labelled_heatmap(values, rows, cols, title=title, colorbar_title=colorbar,
                           hover_label=("calibrated " if calibrated else "") + measure.name, zrange=zrange,
                           annotate=small)
    if marked is not None:
        mark_cells(fig, marked, rows, cols, mark_words(view, f"the {marked.size} cells"))
    return fig


def _twin_button(model, models) -> tuple[bool, str]:
    twin = random_init_twin(model, models)
    if twin is None:
        return True, "no untrained twin (no zoo network of this architecture before training)"
    return False, f"B = its untrained twin: {twin.name} (the same architecture, random init, no training)"


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
        dropdown(f"{_ID}-null-choice", "Null (permutations of B's stimuli)", options(NULLS), view["null"]),
        dropdown(f"{_ID}-show-choice", "Show", options(SHOWS), view["show"], disabled=view["null"] == "off"),
        html.P(NULL_WORDS, className="hint"),
        dropdown(f"{_ID}-dim-choice", "Dimensionality per layer",
                 [{"label": text.split(" (")[0], "value": value} for value, text in DIMENSIONALITY_METHODS.items()],
                 view["dim"]),
    ]
    more = [html.H3("Dimensionality per layer"), *compute_panel.job_components(_DIMS_ID),
            figure_slot(f"{_DIMS_ID}-curve"),
            html.H3("Small multiples"), *compute_panel.job_components(_MULTIPLES_ID), figure_slot(f"{_MULTIPLES_ID}-grid", "fit")]
    return compute_panel.view_page(_ID, TITLE, controls,
                             f"Stimuli: {selection.stimulus_set}; pooling: {selection.pooling}.", ["heatmap"], more)


@callback(Output(f"{_ID}-show-choice", "disabled"), Input(f"{_ID}-null-choice", "value"), prevent_initial_call=True)
def follow_null(null):
    """Calibrated scores need a null."""
    return null == "off"


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


def plan(selection: Selection, a, b, measure, layer_set, multiples="off", null="off", show="raw",
         dim="participation_ratio"):
    view = {"a": a, "b": b, "measure": measure, "layers": layer_set, "multiples": multiples, "null": null,
            "show": show, "dim": dim}
    url_codec.check(view, CHOICES)
    grid = spec(selection.named(a), selection.named(b), selection.stimuli, view, selection.pooling)
    context = {"view": view, "layers_a": grid.params["layers_a"], "layers_b": grid.params["layers_b"]}
    # Both models are always written: the defaults (most accurate, its twin) may change.
    search = url_codec.encode(view, {**defaults(selection), "a": None, "b": None})
    return {"grid": grid}, ["grid"], context, search


def draw(context: dict, arrays: dict):
    return (figure(arrays["grid"], context["layers_a"], context["layers_b"], context["view"]),)


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value")
                              for name in ("a", "b", "measure", "layers", "multiples", "null", "show", "dim")], plan)


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the grid (and its null)."""
    view = context["view"]
    head = prelude(Selection.from_url_params(context["selection"])) + f"""layers_a = {context["layers_a"]!r}
layers_b = {context["layers_b"]!r}
acts_a = dict(zip(layers_a, activations({view["a"]!r}, layers_a)))
acts_b = dict(zip(layers_b, activations({view["b"]!r}, layers_b)))
"""
    rows = f"# rows: A's layers, columns: B's{_direction(view['measure'])}"
    if not n_perm(view):
        return head + f"grid = compute.layer_grid(acts_a, acts_b, measure={view['measure']!r})  {rows}\n"
    chosen = "calibrated" if view["show"] == "calibrated" else "values"
    return head + f"""{rows}; B's stimuli permuted {n_perm(view)} times
result = compute.layer_grid(acts_a, acts_b, measure={view["measure"]!r}, null={n_perm(view)}, null_seed={NULL_SEED})
q = compute.fdr_bh(result.p)  # Benjamini-Hochberg over the grid's cells
ringed = q < {ALPHA}
grid = result.{chosen}  # result.values: raw scores; result.calibrated: (s - mean null) / (best - mean null)
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


def plan_multiples(selection: Selection, a, measure, layer_set, multiples, null="off", show="raw"):
    view = {"a": a, "measure": measure, "layers": layer_set, "multiples": multiples, "null": null, "show": show}
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
    view = context["view"]
    drawn = [shown(arrays[f"grid{i}"], view) for i in range(len(context["pairs"]))]
    panels = [(values, [f"A: {n}" for n in la], [f"B: {n}" for n in lb], f"{a} × {b}")
              for (values, _, _), (a, b), (la, lb) in zip(drawn, context["pairs"], context["layers"])]
    calibrated, marks = drawn[0][2], [marked for _, marked, _ in drawn]
    colorbar, zrange = colour_scale(view["measure"], calibrated, np.concatenate([p[0].ravel() for p in panels]))
    title = f"{MEASURES[view['measure']].name}, layers (rows) × layers (columns), one panel per pair"
    null = marks[0] is not None
    return (small_multiples(panels, colorbar, zrange, title, marks=marks if null else None,
                            mark_name=mark_words(view, "each panel's cells") if null else ""),)


compute_panel.register_submit(_MULTIPLES_ID, [Input(f"{_ID}-{name}-choice", "value")
                                        for name in ("a", "measure", "layers", "multiples", "null", "show")],
                              plan_multiples)
compute_panel.register_poll(_MULTIPLES_ID, [Output(f"{_MULTIPLES_ID}-grid", "figure")], draw_multiples)


def plan_dims(selection: Selection, a, b, layer_set, dim):
    """Each of models A and B (once if the same): its layers' dimensionality, one artifact each."""
    view = {"a": a, "b": b, "layers": layer_set, "dim": dim}
    url_codec.check(view, CHOICES)
    models = [selection.named(name) for name in dict.fromkeys((a, b))]
    layers = [chosen_layers(services.layers(m.key), layer_set) for m in models]
    named = {f"model{i}": artifacts.dimensionality_spec(m.key, names, selection.stimuli, dim, selection.pooling)
             for i, (m, names) in enumerate(zip(models, layers))}
    return named, list(named), {"view": view, "models": [m.name for m in models], "layers": layers}, None


def draw_dims(context: dict, arrays: dict):
    words = DIMENSIONALITY_METHODS[context["view"]["dim"]]
    curves = [(name, layers, arrays[f"model{i}"])
              for i, (name, layers) in enumerate(zip(context["models"], context["layers"]))]
    return (depth_curves(curves, f"{words.split(' (')[0]} of each layer's activations", words),)


def code_dims(context: dict) -> str:
    """A snippet that reproduces the dimensionality curves."""
    layers = dict(zip(context["models"], context["layers"]))
    return prelude(Selection.from_url_params(context["selection"])) + f"""layers = {layers!r}
dims = {{name: [compute.dimensionality(x, method={context["view"]["dim"]!r}) for x in activations(name, names)]
        for name, names in layers.items()}}  # one value per layer, in depth order
"""


compute_panel.register_submit(_DIMS_ID, [Input(f"{_ID}-{name}-choice", "value") for name in ("a", "b", "layers", "dim")],
                              plan_dims)
compute_panel.register_poll(_DIMS_ID, [Output(f"{_DIMS_ID}-curve", "figure")], draw_dims, code_dims)
