"""The recipes: how each artifact kind is computed from its inputs' arrays.

A recipe is ``recipe(spec, inputs, ctx) -> (array, meta)``: ``inputs`` are its input specs'
arrays in order, ``meta`` a JSON-able dict stored with the array. The activations recipe is the
one batch recipe: it takes every activations spec of one model, stimulus set and pooling, and
runs one forward pass for all their layers. Heavy libraries (torch, scipy, the measures) are
imported inside the recipes, so reading this module costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from compute.errors import Cancelled

# The entries of an srm_fit artifact (a float64 vector), in order.
SRM_FIT_FIELDS = ("variance_explained", "native_agreement", "shared_agreement", "train_variance_explained", "k")
# A layer grid with a permutation null stacks these (L_A x L_B) arrays, in order: the scores, their
# p-values, Benjamini-Hochberg q-values over the grid's cells, z and calibrated scores.
GRID_NULL_FIELDS = ("values", "p", "q", "z", "calibrated")
# How many permutations a layer grid's null may have (0: none), and its seeds' bound: a job's
# cost is bounded whatever spec reaches a worker.
NULL_PERMUTATIONS = (0, 100, 1000)
MAX_SEED = 2**32 - 1
# A model RDM's null stacks these (M x M) arrays: the model RDM, each entry's p, BH q over the
# entries above the diagonal, z and calibrated (NaN diagonals); then, on their diagonals, each
# model's chance band: the 2.5 and 97.5 % quantiles of its mean dissimilarity to the others
# across the permutations' model RDMs.
MODEL_NULL_FIELDS = ("values", "p", "q", "z", "calibrated", "chance_low", "chance_high")


def check_null(n_perm, seed) -> None:
    """Raise ValueError unless ``n_perm`` is one of :data:`NULL_PERMUTATIONS` and ``seed`` an
    integer in [0, :data:`MAX_SEED`]."""
    if isinstance(n_perm, bool) or not isinstance(n_perm, int) or n_perm not in NULL_PERMUTATIONS:
        raise ValueError(f"null must be one of {', '.join(map(str, NULL_PERMUTATIONS))} permutations, "
                         f"not {str(n_perm)[:20]!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], not {str(seed)[:20]!r}")


@dataclass
class Context:
    """What a recipe may use besides its inputs: progress reports and the cancel flag."""

    report: Callable[[float, str], None] = lambda fraction, message: None
    should_stop: Callable[[], bool] = lambda: False

    def check(self) -> None:
        if self.should_stop():
            raise Cancelled("cancelled")


def stimuli_of(spec):
    from compute.sources.stimuli import stimulus_set_named

    # A registry name only: a crafted spec naming a path is refused before any file is read.
    stimuli = stimulus_set_named(spec.locate.get("stimuli", "digits"))
    if stimuli.key != spec.params["stimuli"]:
        raise ValueError(
            f"stimulus set {stimuli.name!r} has changed since this job was asked for "
            "(its content hash differs); reload the page to use the current set"
        )
    return stimuli


def activations(specs: list, ctx: Context, model=None) -> list[tuple[np.ndarray, dict]]:
    """Activations for several layers (``specs``) of one model on one stimulus set and pooling,
    in one forward pass: one (array, meta) per spec. ``model``: that model already open (a
    batch of models opens them together, compute/engine/batches.py)."""
    from compute.sources.representations import open_model, resolve

    first = specs[0]
    model = model if model is not None else open_model(first.params["model"])
    stimuli = stimuli_of(first)
    layers = [resolve(model, s.params["layer"]) for s in specs]
    acts = model.extract(stimuli, sorted(set(layers)), pooling=first.params["pooling"],
                         progress=lambda f: ctx.report(f, "extracting activations"), should_stop=ctx.should_stop)
    return [(acts[layer], {"layer": layer, "stimuli": stimuli.name}) for layer in layers]


def predictions(spec, inputs, ctx: Context):
    from compute.sources.representations import open_model

    stimuli = stimuli_of(spec)
    scores = open_model(spec.params["model"]).scores(stimuli)
    return scores.astype(np.float32), {"stimuli": stimuli.name}


def rdm(spec, inputs, ctx: Context):
    from compute.measures.rdm import rdm as measure

    return measure(inputs[0], method=spec.params["method"], condensed=True), {"n": int(inputs[0].shape[0])}


def rdm_blocks(spec, inputs, ctx: Context):
    from compute.measures.blocks import sorted_blocks

    blocks, _ = sorted_blocks(inputs[0], stimuli_of(spec).labels, spec.params["max_side"])
    return blocks, {}


def model_rdm(spec, inputs, ctx: Context):
    from compute.measures.compare import model_rdm as measure

    return measure(np.stack([np.asarray(x) for x in inputs]), method=spec.params["method"]), {}


def model_rdm_null(spec, inputs, ctx: Context):
    """The (7, M, M) stack of :data:`MODEL_NULL_FIELDS` (params ``method``, ``null``, ``seed``)."""
    from compute.measures.nulls import model_rdm_null as null_of
    from compute.measures.stats import fdr_bh

    p = spec.params
    check_null(p["null"], p["seed"])
    if not p["null"]:
        raise ValueError("a model RDM's null needs 100 or 1000 permutations, not 0")
    result = null_of(np.stack([np.asarray(x) for x in inputs]), p["method"], n_perm=p["null"], seed=p["seed"],
                     should_stop=ctx.should_stop)
    m = len(inputs)
    rows, cols = np.triu_indices(m, 1)
    q = np.full((m, m), np.nan)
    q[rows, cols] = q[cols, rows] = fdr_bh(result.p[rows, cols])
    low, high = np.quantile(result.mean_null, [0.025, 0.975], axis=1)
    stack = np.stack([result.values, result.p, q, result.z, result.calibrated, np.diag(low), np.diag(high)])
    return stack, {"fields": list(MODEL_NULL_FIELDS), "n_perm": p["null"], "seed": p["seed"]}


def mds(spec, inputs, ctx: Context):
    from compute.measures.embed import mds as embed

    matrix = np.asarray(inputs[0], dtype=np.float64)
    if matrix.ndim == 1:  # a condensed input RDM: the stimuli themselves are embedded
        from scipy.spatial.distance import squareform

        matrix = squareform(matrix, checks=False)
    coords = embed(matrix, method=spec.params["method"], seed=spec.params["seed"])
    return coords.astype(np.float32), {}


def mds_stress(spec, inputs, ctx: Context):
    """Stress-1 of an MDS (inputs: the dissimilarities it embeds, then its coordinates), as (1,)."""
    from compute.measures.embed import mds_stress as stress

    return np.array([stress(inputs[0], inputs[1])]), {}


def layer_grid(spec, inputs, ctx: Context):
    """The L_A x L_B grid; with a null (params ``null``, ``seed``) the (5, L_A, L_B) stack of
    :data:`GRID_NULL_FIELDS`."""
    from compute.measures.similarity import layer_grid as grid

    p = spec.params
    names_a, names_b = p["layers_a"], p["layers_b"]
    acts_a = dict(zip(names_a, inputs[:len(names_a)]))
    same = spec.inputs[:len(names_a)] == spec.inputs[len(names_a):]
    # The same model and layers on both sides: one dict, so each layer is prepared once.
    acts_b = acts_a if same else dict(zip(names_b, inputs[len(names_a):]))
    if not p.get("null"):
        return grid(acts_a, acts_b, measure=p["measure"], should_stop=ctx.should_stop), {}
    from compute.measures.nulls import grid_null
    from compute.measures.stats import fdr_bh

    check_null(p["null"], p["seed"])
    result = grid_null(acts_a, acts_b, p["measure"], n_perm=p["null"], seed=p["seed"], should_stop=ctx.should_stop)
    stack = np.stack([result.values, result.p, fdr_bh(result.p), result.z, result.calibrated])
    return stack, {"fields": list(GRID_NULL_FIELDS), "n_perm": p["null"], "seed": p["seed"]}


def dimensionality(spec, inputs, ctx: Context):
    """Each input layer's dimensionality (params ``method``), in the inputs' order: an (L,) vector."""
    from compute.measures.dimensionality import dimensionality as measure

    values = []
    for acts in inputs:
        ctx.check()
        values.append(measure(acts, method=spec.params["method"]))
    return np.array(values, dtype=np.float64), {}


def similarities(spec, inputs, ctx: Context):
    from compute.measures.similarity import layer_grid

    # Pairs sharing their second side form one column of a layer grid: that side is prepared once.
    by_second: dict[int, list[tuple[int, int]]] = {}
    for row, (a, b) in enumerate(spec.params["pairs"]):
        by_second.setdefault(b, []).append((row, a))
    out = np.empty(len(spec.params["pairs"]))
    for b, members in by_second.items():
        ctx.check()
        firsts = list(dict.fromkeys(a for _, a in members))
        column = layer_grid({str(a): inputs[a] for a in firsts}, {str(b): inputs[b]},
                            measure=spec.params["measure"], should_stop=ctx.should_stop)[:, 0]
        for row, a in members:
            out[row] = column[firsts.index(a)]
    return out, {}


def confusion(spec, inputs, ctx: Context):
    from compute.measures.confusion import confusion_matrix

    stimuli = stimuli_of(spec)
    matrix = confusion_matrix(np.asarray(inputs[0]), stimuli.labels, k=spec.params["k"])
    return matrix.astype(np.float32), {"classes": list(stimuli.class_names)}


def confusion_rdm(spec, inputs, ctx: Context):
    from compute.measures.confusion import confusion_rdm as measure

    return measure(np.asarray(inputs[0])).astype(np.float32), {}


def srm_fit(spec, inputs, ctx: Context):
    from compute.measures.srm import fit_srm, shared_space_rsm_agreement, srm_variance_explained, stratified_split

    p = spec.params
    train, test = stratified_split(stimuli_of(spec).labels, p["train_fraction"], p["seed"])
    Xs = [np.asarray(x) for x in inputs]
    k = min(p["k"], train.size, *(X.shape[1] for X in Xs))
    held_out = [X[test] for X in Xs]
    try:
        fit = fit_srm([X[train] for X in Xs], k, n_iter=p["n_iter"], seed=p["seed"], should_stop=ctx.should_stop)
        ctx.check()
        agreement = shared_space_rsm_agreement(fit, held_out)
        ctx.check()
        explained = srm_variance_explained(fit, held_out)
    except ValueError as error:
        raise ValueError(f"SRM across layers {[s.params['layer'] for s in spec.inputs]}: {error}") from error
    native = np.nan if agreement.native is None else agreement.native
    values = np.array([explained, native, agreement.shared, fit.variance_explained, k], dtype=np.float64)
    return values, {"fields": list(SRM_FIT_FIELDS), "n_train": int(train.size), "n_test": int(test.size),
                    "widths": [int(X.shape[1]) for X in Xs]}


def reference_fit(spec, inputs, ctx: Context):
    from compute.measures.reference import FIT_COLUMNS, fit_reference
    from compute.sources.references import candidate_rdms, load_reference

    p = spec.params
    rdms = [np.asarray(x) for x in inputs] + candidate_rdms(p["reference"], p.get("candidates", ()))
    fit = fit_reference(rdms, load_reference(p["reference"]), p["method"],
                        n_boot=p["n_boot"], seed=p["seed"], should_stop=ctx.should_stop,
                        progress=lambda f: ctx.report(f, "comparing with the reference"))
    return fit, {"columns": list(FIT_COLUMNS)}


def reference_eval(spec, inputs, ctx: Context):
    from compute.measures.evaluation import evaluate_models
    from compute.sources.references import candidate_rdms, load_reference

    p = spec.params
    rdms = [np.asarray(x, dtype=np.float64) for x in inputs] + candidate_rdms(p["reference"], p.get("candidates", ()))
    subjects = load_reference(p["reference"])
    over = ("subjects", "stimuli") if len(subjects) > 1 else ("stimuli",)
    ctx.report(0.0, f"resampling {'subjects and stimuli' if len(over) > 1 else 'stimuli'} {p['n_boot']} times")
    result = evaluate_models(subjects, {str(i): rdm for i, rdm in enumerate(rdms)}, p["method"],
                             n_boot=p["n_boot"], over=over, seed=p["seed"], should_stop=ctx.should_stop)
    table = np.column_stack([result.scores, result.ci, result.normalised, result.pairwise_p])
    ceiling = result.noise_ceiling
    return table, {"over": list(result.over), "n_boot": int(result.n_boot), "dof": int(result.dof),
                   "ceiling": [float(ceiling.lower), float(ceiling.upper)], "ceiling_p": float(result.ceiling_p)}
