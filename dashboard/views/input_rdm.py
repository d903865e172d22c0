"""Input RDM of one model and layer: the stimuli sorted by class, beside their MDS.

The RDM is drawn as block means, at most ``REPSCOPE_RDM_MAX_SIDE`` (1,000) per side, computed by
the job (the browser never gets an N x N matrix with N in the thousands, and a cached view never
reads the whole RDM); zooming in redraws the window at full resolution from the condensed RDM.
The zoom is part of the view's state (URL key ``zoom``, e.g. ``40-91x10-71``: sorted rows 40 to 90
by columns 10 to 70), so a link opens on the same window and it stays put across models and layers.
The MDS embeds every stimulus, coloured by class, its thumbnail shown on hover.
"""
from __future__ import annotations

import re

from dash import Input, Output, State, callback, dcc, html, no_update

from compute.engine import artifacts
from compute.measures.blocks import block_factor, block_layout, sorted_window
from compute.settings import get_settings
from dashboard import compute_panel, services, url_codec
from dashboard.figures.heatmap import replace_heatmap, sorted_heatmap
from dashboard.figures.scatter import class_scatter, with_stress
from dashboard.selection import Selection, best_model
from dashboard.snippets import prelude
from dashboard.view_parts.choices import (MDS_CHOICES, RDM_CHOICES, method_dropdown, method_words, rdm_scale_title,
                                          rdm_scale_words, register_info)
from dashboard.widgets import dropdown, layer_options, model_dropdown

PATH = "/rdm"
TITLE = "Input RDM"
SELECTION = ("set", "where", "models", "pooling")  # the parts of the selection panel it reads
_ID = "input-rdm"
CHOICES = {"rdm": RDM_CHOICES, "mds": MDS_CHOICES}

def defaults(models) -> dict:
    return {"model": best_model(models).name, "layer": "penultimate", "rdm": "correlation", "mds": "classical",
            "zoom": ""}


def read_state(search: str | None, selection: Selection) -> dict:
    """The view state from the URL; a layer the model does not have falls back to penultimate."""
    models = selection.choices
    view = url_codec.decode(search, defaults(models), {"model": tuple(m.name for m in models), **CHOICES})
    layer = valid_layer(selection.named(view["model"]), view["layer"])
    if layer != view["layer"]:
        url_codec.note_ignored("layer", view["layer"])
    return {**view, "layer": layer, "zoom": window_text(parse_window(view["zoom"], len(selection.stimuli)))}


def valid_layer(model, layer: str | None) -> str:
    names = {o["value"] for o in layer_options(services.layers(model.key))}
    return layer if layer in names else "penultimate"


def specs(model, stimuli, view: dict, pooling: str = "none", max_side: int = 1000) -> dict[str, artifacts.Spec]:
    matrix = artifacts.rdm_spec(model.key, stimuli, view["layer"], pooling, view["rdm"])
    embedding = artifacts.mds_spec(matrix, method=view["mds"])
    return {"rdm": matrix, "mds": embedding, "stress": artifacts.mds_stress_spec(embedding),
            "blocks": artifacts.rdm_blocks_spec(matrix, stimuli, max_side)}


def figures(stimuli, blocks, coords, view: dict, max_side: int = 1000, stress=None):
    """The class-sorted RDM heatmap and the stimulus MDS for computed arrays (with its
    ``stress`` artifact, when given, in its subtitle)."""
    where = f"{view['model']}, layer {view['layer']}"
    heatmap = sorted_heatmap(stimuli, blocks, max_side,
                             f"Input RDM ({method_words('rdm', view['rdm'])}), sorted by class<br><sup>{where}; "
                             f"{rdm_scale_words(view['rdm'])}; rows and columns: stimuli sorted by class</sup>", rdm_scale_title(view["rdm"]))
    hover = [f"{stimulus}<br>class {stimuli.class_names[label]}" for stimulus, label in zip(stimuli.ids, stimuli.labels)]
    scatter = class_scatter(coords, stimuli.labels, stimuli.class_names, hover,
                            title=with_stress(f"{method_words('mds', view['mds'])} of the stimuli<br><sup>{where}</sup>", stress))
    return heatmap, scatter


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = read_state(search, selection)
    layers = services.layers(selection.named(view["model"]).key)
    controls = [model_dropdown(f"{_ID}-model-choice", "Model", selection.choices, view["model"]),
                dropdown(f"{_ID}-layer-choice", "Layer", layer_options(layers), view["layer"]),
                method_dropdown(f"{_ID}-rdm-choice", "RDM method", "rdm", view["rdm"]),
                method_dropdown(f"{_ID}-mds-choice", "MDS", "mds", view["mds"])]
    hint = (f"Stimuli: {selection.stimulus_set}; pooling: {selection.pooling}. Large RDMs are "
            f"block-averaged to ≤ {get_settings().rdm_max_side} per side; zoom in for full resolution.")
    thumbnail = html.Figure([html.Img(id=f"{_ID}-thumbnail", alt=""), html.Figcaption(id=f"{_ID}-thumbnail-caption")],
                            className="thumbnail")
    zoom = dcc.Store(id=f"{_ID}-zoom", data=view["zoom"])
    return compute_panel.view_page(_ID, TITLE, controls + [thumbnail, zoom], hint, {"heatmap": "square", "mds": "square"})


@callback(
    Output(f"{_ID}-layer-choice", "options"),
    Output(f"{_ID}-layer-choice", "value"),
    Input(f"{_ID}-model-choice", "value"),
    State(f"{_ID}-layer-choice", "value"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def follow_model(model_name, layer, selection):
    """Another model has other layers: offer them, keeping the layer when it has one so named."""
    model = Selection.from_url_params(selection).named(model_name)
    return layer_options(services.layers(model.key)), valid_layer(model, layer)


def hovered_stimulus(hover: dict | None, selection: Selection) -> tuple:
    """The thumbnail (a PNG data URI) and caption of the stimulus under the pointer on the MDS
    (its index in the stimulus set is the point's ``customdata``)."""
    points = (hover or {}).get("points") or []
    index = points[0].get("customdata") if points else None
    stimuli = selection.stimuli
    if not isinstance(index, int) or not 0 <= index < len(stimuli):
        return no_update, no_update
    label = stimuli.class_names[stimuli.labels[index]]
    return stimuli.thumbnails(64, [index])[0], f"{stimuli.ids[index]} (class {label})"


@callback(
    Output(f"{_ID}-thumbnail", "src"),
    Output(f"{_ID}-thumbnail-caption", "children"),
    Input(f"{_ID}-mds", "hoverData"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def _show_thumbnail(hover, selection):
    try:
        chosen = Selection.from_store(selection)
    except ValueError as error:  # a set the registry does not list: say so, read nothing
        return "", str(error)
    return hovered_stimulus(hover, chosen)


def plan(selection: Selection, model_name, layer, rdm_method, mds_method, zoom=""):
    url_codec.check({"rdm": rdm_method, "mds": mds_method}, CHOICES)
    model = selection.named(model_name)
    view = {"model": model_name, "layer": valid_layer(model, layer), "rdm": rdm_method, "mds": mds_method,
            "zoom": window_text(parse_window(zoom, len(selection.stimuli)))}
    max_side = get_settings().rdm_max_side
    named = specs(model, selection.stimuli, view, selection.pooling, max_side)
    # The model is always written: the default (the most accurate) may change as models are added.
    context = {"view": view, "max_side": max_side, "rdm": named["rdm"].to_json()}
    return named, ["stress", "blocks"], context, url_codec.encode(view, {**defaults(selection.choices), "model": None})


def draw(context: dict, arrays: dict):
    stimuli = Selection.from_url_params(context["selection"]).stimuli
    heatmap, scatter = figures(stimuli, arrays["blocks"], arrays["mds"], context["view"], context["max_side"],
                               arrays.get("stress"))
    window = parse_window(context["view"].get("zoom"), len(stimuli))
    if window is not None:  # opened on a zoom (a link, or another model or layer at the same window)
        (r0, r1), (c0, c1) = window
        condensed = None
        if len(stimuli) > context["max_side"]:  # else the blocks are the cells themselves
            condensed = services.backend().result(artifacts.Spec.from_json(context["rdm"]))
        if condensed is not None:  # (an evicted RDM: the window is shown in blocks)
            z, rows, cols = sorted_window(condensed, stimuli.labels, *window, max_side=context["max_side"])
            heatmap.update_traces(z=z, x=cols, y=rows)
        heatmap.update_layout(xaxis={"range": [c0 - 0.5, c1 - 0.5], "autorange": False},
                              yaxis={"range": [r1 - 0.5, r0 - 0.5], "autorange": False})  # rows down
    return heatmap, scatter


def window_text(window) -> str:
    """A zoom window ``((r0, r1), (c0, c1))`` (sorted positions, stop excluded) as the URL writes
    it, "40-91x10-71"; "" for none."""
    if window is None:
        return ""
    (r0, r1), (c0, c1) = window
    return f"{r0}-{r1}x{c0}-{c1}"


def parse_window(text: str | None, n: int):
    """The zoom window that ``text`` (see :func:`window_text`) names within ``n`` stimuli, or None
    (nothing, or something else: an edited link falls back to the whole RDM)."""
    match = re.fullmatch(r"(\d+)-(\d+)x(\d+)-(\d+)", text or "")
    if not match:
        return None
    r0, r1, c0, c1 = map(int, match.groups())
    return ((r0, r1), (c0, c1)) if 0 <= r0 < r1 <= n and 0 <= c0 < c1 <= n else None


def zoom_window(relayout: dict | None, n: int):
    """What a zoom (Plotly's ``relayoutData``) asks of a heatmap over ``n`` sorted stimuli:
    ``"overview"`` (autorange: the whole RDM again), a ``((r0, r1), (c0, c1))`` window in sorted
    positions, or None (no range in it, or none inside the matrix: nothing to redraw)."""
    relayout = relayout or {}
    if relayout.get("xaxis.autorange") or relayout.get("yaxis.autorange"):
        return "overview"
    spans = []
    for axis in ("yaxis", "xaxis"):  # rows, columns
        ends = [relayout.get(f"{axis}.range[0]"), relayout.get(f"{axis}.range[1]")]
        if None in ends:
            ends = relayout.get(f"{axis}.range") or [None, None]
        if None in ends:
            spans.append((0, n))
        else:
            low, high = sorted(float(e) for e in ends)
            spans.append((int(max(0, low + 0.5)), min(n, int(max(0, high + 0.5)) + 1)))
    if spans == [(0, n), (0, n)] or any(stop <= start for start, stop in spans):
        return None
    return tuple(spans)


def zoomed(job: dict | None, relayout: dict | None, search: str | None):
    """What a zoom changes: the heatmap (a patch with the window at full resolution, block means
    while it is wider than the view's ``max_side``, or the blocks back for an autorange; no
    update where nothing was averaged or the array is gone), the view's zoom state, and the
    URL's query string. The RDM is read only when a window must be cut from it."""
    if not job or "values" not in job or "error" in job:
        return no_update, no_update, no_update
    try:
        specs, _, context = compute_panel.planned(plan, job)  # the record is the browser's: plan again
    except ValueError:
        return no_update, no_update, no_update
    stimuli = Selection.from_url_params(context["selection"]).stimuli
    n, max_side = len(stimuli), context["max_side"]
    wanted = zoom_window(relayout, n)
    if wanted is None:
        return no_update, no_update, no_update
    text = "" if wanted == "overview" else window_text(wanted)
    zoom_and_url = (text, url_codec.replace(search, "zoom", text))
    if n <= max_side:
        return (no_update, *zoom_and_url)
    name = "blocks" if wanted == "overview" else "rdm"
    array = services.backend().result(specs[name])
    if array is None:
        return (no_update, *zoom_and_url)
    if wanted == "overview":
        _, _, centres = block_layout(n, block_factor(n, max_side))
        return (replace_heatmap(array, centres, centres), *zoom_and_url)
    return (replace_heatmap(*sorted_window(array, stimuli.labels, *wanted, max_side=max_side)), *zoom_and_url)


@callback(
    Output(f"{_ID}-heatmap", "figure", allow_duplicate=True),
    Output(f"{_ID}-zoom", "data"),
    Output("url", "search", allow_duplicate=True),
    Input(f"{_ID}-heatmap", "relayoutData"),
    State(f"{_ID}-job", "data"),
    State("url", "search"),
    prevent_initial_call=True,
)
def _zoom(relayout, job, search):
    return zoomed(job, relayout, search)


def code(context: dict) -> str:
    """A Python snippet, on the public ``compute`` API, that reproduces the view's numbers."""
    view = context["view"]
    return prelude(Selection.from_url_params(context["selection"])) + f"""(acts,) = activations({view["model"]!r}, [{view["layer"]!r}])
rdm = compute.rdm(acts, method={view["rdm"]!r})  # N x N, in stimulus order
order = np.argsort(stimuli.labels, kind="stable")
heatmap = rdm[np.ix_(order, order)]  # sorted by class, as drawn (block-averaged when N > {context["max_side"]})
coords = compute.mds(rdm, method={view["mds"]!r})  # the stimulus MDS, one row per stimulus
stress = compute.mds_stress(rdm, coords)  # Kruskal's stress-1, in the MDS's subtitle
"""


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value") for name in ("model", "layer", "rdm", "mds")],
                        plan, states=[State(f"{_ID}-zoom", "data")])
compute_panel.register_poll(_ID, [Output(f"{_ID}-heatmap", "figure"), Output(f"{_ID}-mds", "figure")], draw, code,
                      needs=("blocks", "mds", "stress"))
register_info(f"{_ID}-rdm-choice", "rdm")
register_info(f"{_ID}-mds-choice", "mds")
