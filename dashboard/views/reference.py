"""Reference RDM: rank the selected models' layers by how well they match an uploaded RDM.

The reference (e.g. brain data; one or several subjects' RDMs over the current stimulus set)
is uploaded here through the chunked upload route and read in the limited worker process. Each
selected model's default layers (or only its penultimate one) give an input RDM; each is
compared with every subject's RDM and the mean over subjects is the bar, with, with several
subjects, the noise ceiling as a shaded band. The point estimates come first (a quick job);
the bootstrap (``compute.evaluate_models``: subjects and stimuli resampled, rsatoolbox's
two-factor correction) then adds 95 % intervals and the pairwise tests of the differences
(Benjamini-Hochberg corrected), drawn as a matrix. Bars are coloured by layer depth (the d-th
default layer of each model), or by architecture for penultimate layers; the top 20 are shown
unless all are asked for; scores can be shown divided by the noise ceiling's lower bound.

Rows of other references over the same stimuli may join the ranking as bars of their own
("reference RDMs"): e.g. the monkey-IT RDM of Kriegeskorte et al.'s ``92_modelRDMs.mat``,
uploaded as a reference too, ranked against human IT like a model, by the same fit.
"""
from __future__ import annotations

import re

import numpy as np
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from compute.engine import artifacts
from compute.measures.registry import COMPARE_METHODS
from compute.measures.resampled import WEIGHTED_METHODS
from compute.sources import references
from dashboard import compute_panel, services, url_codec
from dashboard.figures.bars import ranked_bars, ranking
from dashboard.figures.pairwise import pairwise_matrix
from dashboard.figures.scatter import score_against_accuracy
from dashboard.selection import Selection, need_models
from dashboard.view_parts.choices import COMPARE_CHOICES, RDM_CHOICES, method_dropdown, method_words, register_info
from dashboard.view_parts.depths import depth_layers
from dashboard.view_parts.upload_form import file_form, upload_message as refusal_message
from dashboard.widgets import accuracy_text, dropdown, message_figure, notice

PATH = "/reference"
TITLE = "Reference RDM"
SELECTION = ("set", "where", "models", "pooling")  # the parts of the selection panel it reads
_ID = "reference"
_UPLOAD = f"{_ID}-upload"

LAYER_CHOICES = ("default", "penultimate")
BOOT_CHOICES = ("0", "100", "1000")
SHOW_CHOICES = ("top 20", "all")
SCORE_CHOICES = ("raw", "ceiling-normalised")
TOP = 20
# Euclidean input RDMs by default, as in the layer curves: correlation is undefined for the
# all-zero patterns some untrained zoo models have at depth 1.
# Penultimate layers and 100 resamples by default: a bootstrap of every default layer of every
# zoo model at 1000 resamples is hours of CPU; the controls ask for more when wanted.
DEFAULTS = {"ref": "", "rdm": "euclidean", "compare": "spearman", "layers": "penultimate", "boot": "100",
            "cand": "", "show": "top 20", "score": "raw"}
_CANDIDATE = re.compile(r"([0-9a-f]{64}):([0-9]{1,6})")  # a reference's key and row: "<key>:<row>"
MAX_CANDIDATES = 100  # rows of other references ranked at once (each is an RDM in the job)
CHOICES = {"rdm": RDM_CHOICES, "compare": COMPARE_CHOICES, "layers": LAYER_CHOICES, "boot": BOOT_CHOICES,
           "show": SHOW_CHOICES, "score": SCORE_CHOICES}


def reference_options(stimuli) -> list[dict]:
    """The references stored for ``stimuli``, newest first, as dropdown options (value: key)."""
    return [{"label": info.label, "value": info.key} for info in references.list_references(stimuli)]


def candidate_options(stimuli, reference: str | None) -> list[dict]:
    """Every row of the references stored for ``stimuli`` but ``reference``'s own, as options
    (label "<reference> · <row name>", value "<key>:<row>")."""
    return [{"label": f"{info.name} · {info.row_name(row)}", "value": f"{info.key}:{row}"}
            for info in references.list_references(stimuli) if info.key != reference for row in range(info.subjects)]


def candidate_rows(values, reference: str, stimuli) -> list[tuple[str, int, str]]:
    """(key, row, label) for each chosen "<key>:<row>"; ValueError for one that is no row of a
    reference over ``stimuli`` other than ``reference``."""
    if len(values or []) > MAX_CANDIDATES:
        raise ValueError(f"at most {MAX_CANDIDATES} reference RDM rows can be ranked at once, got {len(values)}")
    found = []
    for value in values or []:
        match = _CANDIDATE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"{value!r} is not a reference RDM row ('<reference key>:<row>')")
        info, row = references.reference_info(match.group(1)), int(match.group(2))
        if info.stimulus_key != stimuli.key or info.key == reference or row >= info.subjects:
            raise ValueError(f"{info.name!r} row {row} cannot be ranked against this reference: choose a row of "
                             "another reference over the selected stimulus set")
        label = f"{info.name} · {info.row_name(row)}"
        if label in {other for *_, other in found}:  # two rows of one name: bars need distinct labels
            label += f" (row {row + 1})"
        found.append((info.key, row, label))
    return found


def rows(models, layers: str) -> list[tuple]:
    """(model, layer, group) for each bar: every default layer of each model, grouped by depth,
    or each model's penultimate layer, grouped by architecture."""
    if layers == "penultimate":
        return [(m, "penultimate", m.architecture) for m in models]
    return [(m, layer, f"depth {d + 1}") for m in models
            for d, layer in enumerate(depth_layers(services.layers(m.key)))]


def layout(search: str | None = None, selection: Selection = Selection()) -> html.Div:
    view = url_codec.decode(search, DEFAULTS, CHOICES)
    options = reference_options(selection.stimuli)
    keys = [o["value"] for o in options]
    chosen = view["ref"] if view["ref"] in keys else (keys[0] if keys else None)
    cand_options = candidate_options(selection.stimuli, chosen)
    for value in view["cand"].split(","):
        if value and value not in {o["value"] for o in cand_options}:
            url_codec.note_ignored("cand", value)
    upload = file_form(_UPLOAD, "Upload a reference RDM", ",".join(references.SUFFIXES), [
        html.Div([html.Label("Name (optional)", htmlFor=f"{_UPLOAD}-name"),
                  dcc.Input(id=f"{_UPLOAD}-name", type="text", placeholder="the file's name")], className="control"),
    ])
    controls = [
        dropdown(f"{_ID}-ref-choice", "Reference RDM", options, chosen, placeholder="upload one below"),
        upload,
        dropdown(f"{_ID}-cand-choice", "Also rank reference RDMs (rows of other references)", cand_options,
                 [v for v in view["cand"].split(",") if v in {o["value"] for o in cand_options}], multi=True,
                 clearable=True, placeholder="e.g. a model-RDM file's monkey IT"),
        method_dropdown(f"{_ID}-rdm-choice", "Input RDM (per model and layer)", "rdm", view["rdm"]),
        method_dropdown(f"{_ID}-compare-choice", "Compare with the reference by", "compare", view["compare"]),
        dropdown(f"{_ID}-layers-choice", "Layers", LAYER_CHOICES, view["layers"]),
        dropdown(f"{_ID}-boot-choice", "Bootstrap resamples (95 % CI, pairwise tests)", BOOT_CHOICES, view["boot"]),
        dropdown(f"{_ID}-show-choice", "Bars shown", SHOW_CHOICES, view["show"]),
        dropdown(f"{_ID}-score-choice", "Scores", SCORE_CHOICES, view["score"]),
        html.P(EXPLAINED, className="hint"),
    ]
    hint = (f"{references.FORMATS}: (N, N), condensed (K,), or one RDM per subject (S, N, N) / (S, K); "
            f"N = the stimulus set's size. {selection.describe()}.")
    return compute_panel.view_page(_ID, TITLE, controls, hint, {"bars": "fit", "pairs": "square", "accuracy": "wide"})


EXPLAINED = (
    "Score: the comparison of a layer's RDM with each subject's RDM, averaged over subjects. Noise ceiling "
    "(Nili et al. 2014): the band a true model would reach given the subjects' disagreement; lower bound = "
    "each subject against the mean of the others. Ceiling-normalised = score / that lower bound. Intervals: "
    "95 % bootstrap, resampling subjects and stimuli together (stimuli only with one subject), with "
    "rsatoolbox's correction of the two-factor variance. Pairwise tests: t tests of each pair's difference "
    "over the same resamples, Benjamini-Hochberg corrected over all pairs (p < 0.05 marked).")


def plan(selection: Selection, reference, rdm_method, compare_method, layers, n_boot, candidates=None,
         show="top 20", score="raw"):
    """The point estimates of every (model, layer), and of the chosen rows of other references,
    against the reference, then their bootstrap (an evaluation of all of them together, or for a
    comparison without a batched bootstrap the per-candidate fit), for the controls' values; with
    no reference chosen, nothing to compute (the figure asks for an upload)."""
    candidates = list(candidates or []) if isinstance(candidates, (list, type(None))) else [candidates]
    show, score = show or DEFAULTS["show"], score or DEFAULTS["score"]  # a control not sent: its default
    view = {"ref": reference or "", "rdm": rdm_method, "compare": compare_method, "layers": layers,
            "boot": str(n_boot), "cand": ",".join(map(str, candidates)), "show": show, "score": score}
    url_codec.check(view, CHOICES)  # a crafted request asking n_boot=20000 is refused
    search = url_codec.encode(view, DEFAULTS)
    if not reference:
        return {}, [], {"view": view, "rows": [], "stimulus_set": selection.stimulus_set}, search
    info = references.reference_info(reference)
    stimuli = selection.stimuli
    if info.stimulus_key != stimuli.key:
        raise ValueError(f"the reference {info.name!r} is over stimulus set {info.stimulus_set!r} ({info.stimuli} "
                         f"stimuli), not the selected {stimuli.name!r} ({len(stimuli)} stimuli); choose that set "
                         "in the left panel or upload a reference for this one")
    bars = rows(need_models(selection, 1), layers)
    extra = candidate_rows(candidates, reference, stimuli)
    rdms = [artifacts.rdm_spec(m.key, stimuli, layer, selection.pooling, rdm_method) for m, layer, _ in bars]
    pairs = [(key, row) for key, row, _ in extra]
    specs = {"fit": artifacts.reference_fit_spec(reference, rdms, compare_method, 0, candidates=pairs)}
    if view["boot"] != "0" and compare_method in WEIGHTED_METHODS:
        specs["eval"] = artifacts.reference_eval_spec(reference, rdms, compare_method, int(n_boot), candidates=pairs)
    elif view["boot"] != "0":  # no batched bootstrap for this comparison: each candidate's own, over stimuli
        specs["boot"] = artifacts.reference_fit_spec(reference, rdms, compare_method, int(n_boot), candidates=pairs)
    context = {"view": view, "reference": {"name": info.name, "subjects": info.subjects},
               "rows": [[m.key, layer, group] for m, layer, group in bars],
               "candidates": [list(c) for c in extra]}
    return specs, list(specs), context, search


CANDIDATE_GROUP = "reference RDM"
PENDING = "95 % intervals and pairwise tests pending (see the progress line)"


def normalising(view: dict, reference: dict, arrays: dict) -> bool:
    """Whether the scores are shown divided by the noise ceiling's lower bound: asked for, a
    similarity, several subjects and a positive lower bound (else raw, as the titles then say)."""
    fit = arrays["fit"]
    return (view["score"] == "ceiling-normalised" and COMPARE_METHODS[view["compare"]].kind == "similarity"
            and reference["subjects"] > 1 and len(fit) > 0 and np.isfinite(fit[0, 3]) and fit[0, 3] > 0)


def scores(arrays: dict, view: dict, normalised: bool) -> tuple:
    """(values, low, high, band, pairwise p or None, what the intervals are) of every candidate
    from the arrays at hand: the point estimates always, the bootstrap's intervals and tests once
    computed; divided by the noise ceiling's lower bound when ``normalised``."""
    fit = arrays["fit"]
    values, band = fit[:, 0].copy(), (fit[0, 3], fit[0, 4]) if len(fit) else (np.nan, np.nan)
    low = high = np.full(len(fit), np.nan)
    pairwise, intervals = None, "no bootstrap"
    if "eval" in arrays:
        low, high, pairwise = arrays["eval"][:, 1], arrays["eval"][:, 2], arrays["eval"][:, 4:]
        intervals = f"95 % bootstrap CI ({view['boot']} resamples of subjects and stimuli)"
    elif "boot" in arrays:
        low, high = arrays["boot"][:, 1], arrays["boot"][:, 2]
        intervals = f"95 % percentile CI over stimuli ({view['boot']} resamples)"
    elif view["boot"] != "0":
        intervals = PENDING  # computing, or waiting for the Compute button (the progress line says which)
    if normalised:
        lower = band[0]
        values, low, high, band = values / lower, low / lower, high / lower, (1.0, band[1] / lower)
    return values, low, high, band, pairwise, intervals


def figures(bars: list[tuple], arrays: dict, view: dict, reference: dict, candidates=()) -> tuple:
    """The ranked bars, the pairwise-test matrix and the score-against-accuracy scatter for
    ``bars`` ((model, layer, group)) then ``candidates`` ((key, row, label): rows of other
    references), in that order, from the fit (and the bootstrap once there)."""
    method = COMPARE_METHODS[view["compare"]].title  # in words: "Spearman ρ"
    distance = COMPARE_METHODS[view["compare"]].kind == "distance"
    normalised = normalising(view, reference, arrays)
    values, low, high, band, pairwise, intervals = scores(arrays, view, normalised)
    labels = [f"{m.name} · {layer}" for m, layer, _ in bars] + [label for _, _, label in candidates]
    groups = [group for _, _, group in bars] + [CANDIDATE_GROUP] * len(candidates)
    heads = ([f"<b>{m.name}</b><br>layer {layer}<br>accuracy {accuracy_text(m)}" for m, layer, _ in bars]
             + [f"<b>{label}</b><br>a row of another reference" for _, _, label in candidates])
    quantity = f"{method} / noise ceiling (lower bound)" if normalised else method
    hover = [f"{head}<br>{quantity} {v:.4f}" + (f"<br>95 % CI [{a:.4f}, {b:.4f}]" if np.isfinite(a) else "")
             for head, v, a, b in zip(heads, values, low, high)]
    order = ranking(values, not distance)
    shown = order[:TOP] if view["show"] == "top 20" else order
    subjects = reference["subjects"]
    ceiling = "; band: noise ceiling (lower–upper)" if subjects > 1 else ""
    which = f"top {len(shown)} of {len(order)}" if len(shown) < len(order) else f"all {len(order)}"
    pick = lambda seq: [seq[i] for i in shown]  # noqa: E731
    direction = "lower" if distance else "higher"
    x_title = (f"{method} with the reference, divided by the noise ceiling's lower bound (1 = as good as the "
               "subjects agree; higher = more similar)" if normalised else
               f"{method} with the reference, mean over subjects ({direction} = more similar)")
    bars_figure = ranked_bars(
        pick(labels), values[shown], low[shown], high[shown], pick(groups), pick(hover),
        title=f"Layers ranked by {method} with {reference['name']} ({subjects} subject{'s' if subjects > 1 else ''}), "
              f"{which}<br><sup>input RDMs: {method_words('rdm', view['rdm'])}; bars: {intervals}{ceiling}</sup>",
        x_title=x_title, higher_is_better=not distance, band=band if len(shown) else None,
        band_label="noise ceiling", legend_title="layer depth" if view["layers"] == "default" else "architecture",
        y_title="model · layer (best at the top)",
    )
    if pairwise is None:
        why = (intervals if intervals == PENDING else
               f"Pairwise tests need the bootstrap of a batched comparison "
               f"({', '.join(method_words('compare', name) for name in WEIGHTED_METHODS)}) "
               "with 100 or 1000 resamples")
        pairs_figure = message_figure(why)
    else:
        m = len(order)
        pairs_figure = pairwise_matrix(
            pick(labels), values[shown], pairwise[np.ix_(shown, shown)], 0.05, not distance,
            f"Which differences are significant ({which}, ranked)",
            f"two-sided t tests of each difference over the bootstrap, Benjamini-Hochberg corrected over all "
            f"{m * (m - 1) // 2} pairs")
    models = range(len(bars))
    accuracy_figure = score_against_accuracy(
        [labels[i] for i in models], [bars[i][0].accuracy for i in models], values[:len(bars)],
        low[:len(bars)], high[:len(bars)], groups[:len(bars)],
        f"{quantity} with {reference['name']} against accuracy (every model)",
        f"{quantity} ({direction} = more similar)", legend_title="layer depth" if view["layers"] == "default"
        else "architecture")
    return bars_figure, pairs_figure, accuracy_figure


def draw(context: dict, arrays: dict):
    if not context["rows"] and not context.get("candidates"):
        text = f"No reference RDM chosen for {context['stimulus_set']}: upload one (left)"
        return message_figure(text), message_figure(text), message_figure(text)
    by_key = Selection.from_url_params(context["selection"]).by_key
    bars = [(by_key[key], layer, group) for key, layer, group in context["rows"]]
    return figures(bars, arrays, context["view"], context["reference"], context.get("candidates", ()))


def code(context: dict) -> str:
    """A Python snippet, on the ``compute`` API, that reproduces the bars' numbers."""
    if not context["rows"]:
        return "# Upload a reference RDM first."
    view, selection = context["view"], Selection.from_url_params(context["selection"])
    listing = "".join(f"    ({selection.by_key[key].name!r}, {layer!r}),\n" for key, layer, _ in context["rows"])
    extra = "".join(f"rdms.append(load_reference({key!r})[{row}])  # {label}\n"
                    for key, row, label in context.get("candidates", ()))
    return f"""import numpy as np

import compute
from compute.measures.reference import fit_reference
from compute.sources.references import load_reference
from compute.sources.representations import model_activations
from compute.sources.stimuli import get_stimulus_set

stimuli = get_stimulus_set({selection.stimulus_set!r})
subjects = load_reference({view["ref"]!r})  # (S, K): each subject's condensed RDM
bars = [  # (model, layer), one per bar
{listing}]
rdms = []
for name, layer in bars:
    (acts,) = model_activations(name, stimuli, [layer], pooling={selection.pooling!r})
    rdms.append(compute.rdm(acts, method={view["rdm"]!r}, condensed=True).astype(np.float32))
{extra}# One row per bar: mean {view["compare"]} over subjects, (no CI,) noise ceiling lower, upper.
fit = fit_reference(rdms, subjects, method={view["compare"]!r}, n_boot=0)
{_bootstrap_code(view, context["reference"]["subjects"])}"""


def _bootstrap_code(view: dict, subjects: int) -> str:
    """The snippet's lines for the view's intervals (and pairwise tests)."""
    if view["boot"] == "0":
        return ""
    if view["compare"] not in WEIGHTED_METHODS:
        return (f"# Each bar's 95 % percentile interval over stimulus resamples (columns 1, 2).\n"
                f"boot = fit_reference(rdms, subjects, method={view['compare']!r}, n_boot={int(view['boot'])}, seed=0)\n")
    over = ("subjects", "stimuli") if subjects > 1 else ("stimuli",)
    return (f"# All bars evaluated together: 95 % CIs, ceiling-normalised scores, BH-corrected pairwise p.\n"
            f"evaluation = compute.evaluate_models(subjects, {{str(i): rdm for i, rdm in enumerate(rdms)}}, "
            f"method={view['compare']!r}, n_boot={int(view['boot'])}, over={over!r}, seed=0)\n")


def upload_message(result: dict | None):
    """What a reference upload's answer means, in one line."""
    if result and result.get("ok"):
        names = result.get("subject_names") or []
        shown = f": {', '.join(names[:8])}{' …' if len(names) > 8 else ''}" if names else ""
        return notice(f"Reference ready: {result['name']} ({result['subjects']} subject(s) over "
                      f"{result['stimuli']} stimuli of {result['stimulus_set']}){shown}", "done")
    return refusal_message(result)


compute_panel.register_submit(_ID, [Input(f"{_ID}-{name}-choice", "value")
                              for name in ("ref", "rdm", "compare", "layers", "boot", "cand", "show", "score")], plan)
compute_panel.register_poll(_ID, [Output(f"{_ID}-{name}", "figure") for name in ("bars", "pairs", "accuracy")],
                            draw, code, early=("fit",))
register_info(f"{_ID}-rdm-choice", "rdm")
register_info(f"{_ID}-compare-choice", "compare")

clientside_callback(
    ClientsideFunction("repscope", "uploadReference"),
    Output(f"{_UPLOAD}-result", "data"),
    Input(f"{_UPLOAD}-send", "n_clicks"),
    State("selection", "data"),
    State(f"{_UPLOAD}-name", "value"),
    prevent_initial_call=True,
)


@callback(
    Output(f"{_UPLOAD}-message", "children"),
    Output(f"{_ID}-ref-choice", "options"),
    Output(f"{_ID}-ref-choice", "value"),
    Input(f"{_UPLOAD}-result", "data"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def _uploaded(result, selection):
    """The upload's message, the references now stored, and the new one chosen."""
    options = reference_options(Selection.from_url_params(selection).stimuli)
    chosen = result["reference"] if result and result.get("ok") else no_update
    return upload_message(result), options, chosen


@callback(
    Output(f"{_ID}-cand-choice", "options"),
    Output(f"{_ID}-cand-choice", "value"),
    Input(f"{_ID}-ref-choice", "value"),
    Input(f"{_ID}-ref-choice", "options"),
    State(f"{_ID}-cand-choice", "value"),
    State("selection", "data"),
    prevent_initial_call=True,
)
def _candidates(reference, _options, chosen, selection):
    """The rows other references offer once the reference (or the list of them) changes; the
    chosen ones that are still offered stay chosen."""
    options = candidate_options(Selection.from_url_params(selection).stimuli, reference)
    offered = {o["value"] for o in options}
    return options, [v for v in chosen or [] if v in offered]
