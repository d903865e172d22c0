"""Layer-by-layer similarity: every layer of model A against every layer of model B.

One similarity measure (CKA, RV, CCA family, Procrustes; see ``compute.MEASURES``) over the
stimuli's activations, and optionally a second one drawn beside it on the same layers (e.g.
linear CKA beside PWCCA); "vs random-init twin" compares a trained model with its own
architecture before training (the zoo's untrained models). Each model's layers are chosen one by
one (a multi-select each, the preset's layers at first; a link lists them, checked against the
model's layers). A permutation null (off, 100 or 1000 permutations of B's stimuli) rings the
cells above chance after Benjamini-Hochberg FDR and can show calibrated scores instead of raw
ones, on both grids; the small multiples (the preset's layers; drawn only once asked for) share
it. Below the grid, each model's dimensionality per layer (``compute.dimensionality``), a job of
its own.
"""
from __future__ import annotations

import numpy as np
from dash import Input, Output, State, callback, ctx, html, no_update

from compute.engine import artifacts
from compute.engine.recipes import GRID_NULL_FIELDS
from compute.measures.registry import DIMENSIONALITY_METHODS, MEASURES
from dashboard import compute_panel, services, url_codec
from dashboard.figures.curves import depth_curves
from dashboard.figures.heatmap import labelled_heatmap, mark_cells, small_multiples
from dashboard.selection import Selection, best_model
from dashboard.snippets import prelude
from dashboard.view_parts.choices import MEASURE_CHOICES, method_dropdown, register_info
from dashboard.view_parts.layer_lists import check_layers, decode_layers, encode_layers, preset_layers
from dashboard.view_parts.null_choices import ALPHA, NULL_SEED, NULLS, n_perm, options
from dashboard.widgets import (PENDING_FIGURE, dropdown, figure_slot, layer_options, message_figure, model_dropdown, model_options,
                               button, shown_style)

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
CHOICES = {"measure": MEASURE_CHOICES, "measure2": ("none", *MEASURE_CHOICES), "layers": tuple(LAYER_SETS),
           "multiples": tuple(MULTIPLES), "null": tuple(NULLS), "show": tuple(SHOWS), "dim": tuple(DIMENSIONALITY_METHODS)}
SIDES = {"a": "A (rows)", "b": "B (columns)"}
NULL_WORDS = (
    "Null: the stimuli of B are permuted n times (n = 100 or 1000, seed 0) and every cell's measure "
    "recomputed; p = (1 + #{null at least as extreme}) / (1 + n), one-sided. Ringed cells: p < 0.05 after "
    "Benjamini-Hochberg FDR over the grid's cells (each small multiple over its own). Calibrated = "
    "(s − mean null) / (best − mean null), best = 1 for similarities (for distances the same on the "
    "negated scale, best = 0): 0 = chance, 1 = best. With a second measure, the null and the scores "
    "shown apply to both grids."
)


def random_init_twin(model, models):
    """The untrained model (0 epochs) of ``model``'s architecture and hyperparameters: its own
    uploaded initial weights (tag ``twin_of`` = its key) first, then the same seed; None when
    there is none or ``model`` is itself untrained."""
    if model.tags.get("epochs") == 0:
        return None
    twins = [m for m in models if m.key != model.key and m.tags.get("epochs") == 0
             and m.architecture == model.architecture and m.hparams == model.hparams]
    twins.sort(key=lambda m: (m.tags.get("twin_of") != model.key, m.tags.get("seed") != model.tags.get("seed"), m.name))
    return twins[0] if twins else None


def defaults(selection: Selection) -> dict:
    """A: the most accurate selected model; B: its random-init twin (selected or not)."""
    best = best_model(selection.choices)
    twin = random_init_twin(best, services.models(selection.stimulus_set))
    return {"a": best.name, "b": (twin or best).name, "measure": "cka_linear", "measure2": "none", "layers": "default",
            "multiples": "off", "null": "off", "show": "raw", "dim": "participation_ratio", "layers_a": "", "layers_b": ""}


def model_layers(model, layer_set: str) -> tuple[list[str], list[str]]:
    """A model's layer names in order, and the preset's (``layer_set``) among them."""
    layers = services.layers(model.key)
    return [info.name for info in layers], preset_layers(layers, layer_set)


def read_state(search: str | None, selection: Selection) -> dict:
    """The view a link asks for; ``layers_a`` and ``layers_b`` become lists: the link's layers
    of each model, or the preset's when the link names none or a layer the model lacks (noted)."""
    names = tuple(m.name for m in services.models(selection.stimulus_set))
    view = url_codec.decode(search, defaults(selection), {"a": names, "b": names, **CHOICES})
    for side in SIDES:
        known, preset = model_layers(selection.named(view[side]), view["layers"])
        asked = view[f"layers_{side}"]
        chosen = decode_layers(asked, known) if asked else preset
        if chosen is None:
            url_codec.note_ignored(f"layers_{side}", asked)
        view[f"layers_{side}"] = chosen or preset
    return view


def chosen_layers(model, asked, layer_set: str, side: str) -> list[str]:
    """The layers of ``model`` a client asked for (None: the preset's), checked against its own."""
    known, preset = model_layers(model, layer_set)
    return preset if asked is None else check_layers(asked, known, model.name, SIDES.get(side, side))


def spec(model_a, layers_a, model_b, layers_b, stimuli, measure: str, view: dict, pooling: str = "none"):
    """The grid of ``measure`` over these layers, with the view's null."""
    return artifacts.layer_grid_spec(model_a.key, layers_a, model_b.key, layers_b, stimuli, measure, pooling,
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
    """The colour bar's title (which score, in the registry's words with its direction) and range."""
    m = MEASURES[measure]
    if not calibrated:
        return f"{m.title}<br>({m.kind}: {m.direction})", m.range
    low = np.nanmin(values) if np.isfinite(values).any() else 0.0
    return f"calibrated {m.title}<br>(0 = chance, 1 = best;<br>higher = more alike)", (min(0.0, float(low)), 1.0)


def mark_words(view: dict, cells: str) -> str:
    """The rings' legend: what they mean, over which ``cells``."""
    return f"ringed: p < {ALPHA} after BH-FDR over {cells} ({view['null']} permutations of B's stimuli)"


def figure(grid, layers_a, layers_b, view: dict, key: str = "measure"):
    """The L_A x L_B heatmap of the view's measure (``key`` "measure2": its second): raw scores
    on the measure's own range, or calibrated ones; with a null, the cells above chance ringed."""
    measure = MEASURES[view[key]]
    values, marked, calibrated = shown(grid, view)
    rows, cols = [f"A: {name}" for name in layers_a], [f"B: {name}" for name in layers_b]
    title = f"{measure.title}: {view['a']} (rows) × {view['b']} (columns)"
    colorbar, zrange = colour_scale(view[key], calibrated, values)
    small = len(layers_a) <= _ANNOTATE_UP_TO and len(layers_b) <= _ANNOTATE_UP_TO
    fig = labelled_heatmap(values, rows, cols, title=title, colorbar_title=colorbar,
                           hover_label=("calibrated " if calibrated else "") + measure.title, zrange=zrange,
                           annotate=small, x_title=f"layer of B ({view['b']})", y_title=f"layer of A ({view['a']})")
    if marked is not None:
        mark_cells(fig, marked, rows, cols, mark_words(view, f"the {marked.size} cells"))
    return fig


def _twin_button(model, models) -> tuple[bool, str]:
    twin = random_init_twin(model, models)
    if twin is None:
        return True, "no untrained twin (no zoo network of this architecture before training)"
    if twin.tags.get("twin_of") == model.key:
        return False, f"B = its untrained twin: {twin.name} (its own uploaded initial weights)"
    return False, f"B = its untrained twin: {twin.name} (the same architecture, random init, no training)"


def _layer_choice(side: str, model, chosen: list[str]) -> html.Div:
    """A multi-select of a model's layers (all offered, ``chosen`` selected)."""
    return dropdown(f"{_ID}-layers-{side}-choice", f"Layers of {SIDES[side]}",
                    layer_options(services.layers(model.key), penultimate_first=False), chosen, multi=True)


def multiples_section() -> list:
    """The small multiples' heading, progress, share bar and figure: on the page only once asked for."""
    return [html.H3("Small multiples"), *compute_panel.job_components(_MULTIPLES_ID),
            figure_slot(f"{_MULTIPLES_ID}-grid", "fit")]


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = read_state(search, selection)
    chosen = [selection.named(view[side]) for side in ("a", "b")]
    models = selection.choices + [m for m in chosen if m not in selection.choices]  # a twin left out
    disabled, label = _twin_button(chosen[0], services.models(selection.stimulus_set))
    controls = [
        model_dropdown(f"{_ID}-a-choice", "Model A (rows)", models, view["a"]),
        model_dropdown(f"{_ID}-b-choice", "Model B (columns)", models, view["b"]),
        button(label, f"{_ID}-twin", wrap=True, disabled=disabled, fullWidth=True, className="control"),
        method_dropdown(f"{_ID}-measure-choice", "Measure", "measure", view["measure"]),
        method_dropdown(f"{_ID}-measure2-choice", "Second measure, drawn beside the first on the same layers",
                        "measure", view["measure2"], none="none"),
        dropdown(f"{_ID}-layers-choice", "Layer preset (sets both lists below; the small multiples use it)",
                 [{"label": text, "value": value} for value, text in LAYER_SETS.items()], view["layers"]),
        _layer_choice("a", chosen[0], view["layers_a"]),
        _layer_choice("b", chosen[1], view["layers_b"]),
        dropdown(f"{_ID}-multiples-choice", f"Small multiples (up to {MAX_MULTIPLES}; drawn below once chosen)",
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
            html.Div(multiples_section() if view["multiples"] != "off" else [], id=f"{_MULTIPLES_ID}-section")]
    return compute_panel.view_page(_ID, TITLE, controls, f"Stimuli: {selection.stimulus_set}; pooling: {selection.pooling}.",
                                   ["heatmap", "heatmap2"], more, hidden=("heatmap2",) if view["measure2"] == "none" else ())


@callback(Output(f"{_ID}-show-choice", "disabled"), Input(f"{_ID}-null-choice", "value"), prevent_initial_call=True)
def follow_null(null):
    """Calibrated scores need a null."""
    return null == "off"


@callback(Output(f"{_ID}-heatmap2", "style"), Input(f"{_ID}-measure2-choice", "value"), prevent_initial_call=True)
def follow_measure2(measure2):
    """The second grid is on the page while a second measure is chosen."""
    return shown_style(measure2 in MEASURES)


@callback(Output(f"{_MULTIPLES_ID}-section", "children"), Input(f"{_ID}-multiples-choice", "value"),
          State(f"{_MULTIPLES_ID}-section", "children"), prevent_initial_call=True)
def follow_multiples(multiples, section):
    """The small multiples' section appears when they are asked for (and goes when they are not)."""
    if multiples not in MULTIPLES or multiples == "off":
        return []
    return no_update if section else multiples_section()


def _follow_layers(side: str) -> None:
    @callback(
        Output(f"{_ID}-layers-{side}-choice", "options"),
        Output(f"{_ID}-layers-{side}-choice", "value"),
        Input(f"{_ID}-{side}-choice", "value"),
        Input(f"{_ID}-layers-choice", "value"),
        State(f"{_ID}-layers-{side}-choice", "value"),
        State("selection", "data"),
        prevent_initial_call=True,
    )
    def follow_model(name, layer_set, current, selection):
        """The model's layers offered; the preset's chosen, or the current choice when the new model
        has every layer of it (a model of the same architecture) and the preset did not change."""
        try:
            layers = services.layers(Selection.from_url_params(selection).named(name).key)
        except KeyError:
            return no_update, no_update
        known = [info.name for info in layers]
        keep = (ctx.triggered_id == f"{_ID}-{side}-choice" and isinstance(current, list) and current
                and all(n in known for n in current))
        return (layer_options(layers, penultimate_first=False),
                current if keep else preset_layers(layers, layer_set if layer_set in LAYER_SETS else "default"))


for _side in SIDES:
    _follow_layers(_side)


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
         dim="participation_ratio", measure2="none", layers_a=None, layers_b=None):
    """The grid of each chosen measure over the chosen layers (None: the preset's), every layer
    checked against its model's own; the link lists the layers only where they are not the preset's."""
    view = {"a": a, "b": b, "measure": measure, "measure2": measure2, "layers": layer_set, "multiples": multiples,
            "null": null, "show": show, "dim": dim}
    url_codec.check(view, CHOICES)
    model_a, model_b = selection.named(a), selection.named(b)
    chosen = {"a": chosen_layers(model_a, layers_a, layer_set, "a"), "b": chosen_layers(model_b, layers_b, layer_set, "b")}
    measures = {"grid": measure, **({"grid2": measure2} if measure2 != "none" else {})}
    specs = {name: spec(model_a, chosen["a"], model_b, chosen["b"], selection.stimuli, m, view, selection.pooling)
             for name, m in measures.items()}
    context = {"view": view, "layers_a": chosen["a"], "layers_b": chosen["b"]}
    links = {f"layers_{side}": encode_layers(chosen[side], model_layers(model, layer_set)[1])
             for side, model in (("a", model_a), ("b", model_b))}
    # Both models are always written: the defaults (most accurate, its twin) may change.
    search = url_codec.encode({**view, **links}, {**defaults(selection), "a": None, "b": None})
    return specs, list(specs), context, search


def draw(context: dict, arrays: dict):
    layers = context["layers_a"], context["layers_b"]
    second = figure(arrays["grid2"], *layers, context["view"], "measure2") if "grid2" in arrays else PENDING_FIGURE
    return figure(arrays["grid"], *layers, context["view"]), second


_CONTROLS = ("a", "b", "measure", "layers", "multiples", "null", "show", "dim", "measure2", "layers-a", "layers-b")
compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value") for name in _CONTROLS], plan)
register_info(f"{_ID}-measure-choice", "measure")
register_info(f"{_ID}-measure2-choice", "measure")


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the grids (and their null):
    ``grid`` (and ``grid2`` for a second measure)."""
    view = context["view"]
    head = prelude(Selection.from_url_params(context["selection"])) + f"""layers_a = {context["layers_a"]!r}
layers_b = {context["layers_b"]!r}
acts_a = dict(zip(layers_a, activations({view["a"]!r}, layers_a)))
acts_b = dict(zip(layers_b, activations({view["b"]!r}, layers_b)))
"""
    grids = [(view["measure"], "")] + ([(view["measure2"], "2")] if view["measure2"] != "none" else [])
    if not n_perm(view):
        return head + "".join(f"grid{s} = compute.layer_grid(acts_a, acts_b, measure={m!r})  "
                              f"# rows: A's layers, columns: B's{_direction(m)}\n" for m, s in grids)
    chosen = "calibrated" if view["show"] == "calibrated" else "values"
    return head + "".join(f"""# rows: A's layers, columns: B's{_direction(m)}; B's stimuli permuted {n_perm(view)} times
result{s} = compute.layer_grid(acts_a, acts_b, measure={m!r}, null={n_perm(view)}, null_seed={NULL_SEED})
q{s} = compute.fdr_bh(result{s}.p)  # Benjamini-Hochberg over the grid's cells
ringed{s} = q{s} < {ALPHA}
grid{s} = result{s}.{chosen}  # result.values: raw scores; result.calibrated: (s - mean null) / (best - mean null)
""" for m, s in grids)


def _direction(measure: str) -> str:
    """For a measure whose argument order matters, which way the grid reads."""
    return "" if MEASURES[measure].symmetric else "; not symmetric: each row's layer is X, the column's Y"


compute_panel.register_poll(_ID, [Output(f"{_ID}-heatmap", "figure"), Output(f"{_ID}-heatmap2", "figure")], draw, code)


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
    named = {f"grid{i}": spec(ma, model_layers(ma, layer_set)[1], mb, model_layers(mb, layer_set)[1], selection.stimuli,
                              measure, view, selection.pooling) for i, (ma, mb) in enumerate(pairs)}
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
    title = f"{MEASURES[view['measure']].title}, layers (rows) × layers (columns), one panel per pair"
    null = marks[0] is not None
    return (small_multiples(panels, colorbar, zrange, title, marks=marks if null else None,
                            mark_name=mark_words(view, "each panel's cells") if null else ""),)


compute_panel.register_submit(_MULTIPLES_ID, [Input(f"{_ID}-{name}-choice", "value")
                                        for name in ("a", "measure", "layers", "multiples", "null", "show")],
                              plan_multiples, writes_url=False)  # runs only while its section is on the page
compute_panel.register_poll(_MULTIPLES_ID, [Output(f"{_MULTIPLES_ID}-grid", "figure")], draw_multiples)


def plan_dims(selection: Selection, a, b, layer_set, dim, layers_a=None, layers_b=None):
    """Each of models A and B (once if the same, over both lists' layers): its chosen layers'
    dimensionality, one artifact each."""
    view = {"a": a, "b": b, "layers": layer_set, "dim": dim}
    url_codec.check(view, CHOICES)
    chosen = {}
    for side, name, asked in (("a", a, layers_a), ("b", b, layers_b)):
        model = selection.named(name)
        both = set(chosen.get(name, [])) | set(chosen_layers(model, asked, layer_set, side))
        chosen[name] = [layer for layer in model_layers(model, layer_set)[0] if layer in both]
    models, layers = [selection.named(name) for name in chosen], list(chosen.values())
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


compute_panel.register_submit(_DIMS_ID, [Input(f"{_ID}-{name}-choice", "value")
                                         for name in ("a", "b", "layers", "dim", "layers-a", "layers-b")], plan_dims)
compute_panel.register_poll(_DIMS_ID, [Output(f"{_DIMS_ID}-curve", "figure")], draw_dims, code_dims)
