"""The artifact kinds: one :class:`Kind` record each, the one place a kind is known.

A record holds the kind's ``code_version`` (part of every key: bump it when the recipe's numbers
change, and old artifacts are never served again), its ``recipe`` (compute/engine/recipes.py),
the Celery ``queue`` its jobs go to, its ``estimate`` (the pre-flight cost of its step, read by
compute/engine/limits.py) and its ``describe`` (what a job computes, in words, for the Jobs
view). Adding a kind is adding one record here, a recipe and a spec builder
(compute/engine/artifacts.py); a test fails when a record lacks a field.

Estimates are upper bounds from the arrays' shapes only (no computation): the bytes one step
holds at its peak (its inputs, its working arrays, its output) and a time, a rough FLOP count
at an assumed :data:`FLOPS_PER_S`. Both are meant to refuse the absurd, not to schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from compute.engine import recipes
from compute.engine.null_costs import NULL_CHUNK as _NULL_CHUNK
from compute.engine.null_costs import grid_null as grid_null_cost
from compute.measures.condensed import condensed_size, side_from_length
from compute.measures.resampled import WEIGHTED_METHODS

_F32 = 4
_F64 = 8
# An assumed sustained rate, for time estimates: a few CPU cores' float32 GEMMs. A GPU is
# 10-100x faster; the estimate is an order of magnitude, not a schedule.
FLOPS_PER_S = 1e10
# A forward pass costs about this many FLOPs per output feature of the layer read (a few
# hundred multiply-adds of fan-in through a few layers): a guess, for extraction times only.
_FORWARD_FLOPS_PER_FEATURE = 1_000
# sorted_blocks (compute/measures/blocks.py) reads the condensed RDM in bands of about this
# many entries, each with a few int64 indices and float64 sums (~40 bytes an entry).
_BAND_ENTRIES = 2_000_000
_BAND_BYTES_PER_ENTRY = 40
# compute/measures/stats.py bootstraps in chunks of about this many resample weights.
_BOOTSTRAP_CHUNK = 1 << 23

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Cost:
    """The pre-flight estimate of one step: peak ``bytes``, ``seconds`` (rough, at
    :data:`FLOPS_PER_S`), the ``shape`` of the artifact it makes, ``what`` holds the memory
    and how to ask for less (``fix``), in words a refusal can show as they are."""

    bytes: int
    seconds: float
    shape: Shape
    what: str
    fix: str


@dataclass(frozen=True)
class Kind:
    """Everything the engine and the Jobs view know of one artifact kind.

    ``recipe(spec, inputs, ctx) -> (array, meta)``; the activations recipe alone takes a list
    of specs (one model's layers, one forward pass). ``queue`` is ``"gpu"`` or ``"cpu"``.
    ``estimate(spec, shapes) -> Cost``: ``shapes`` are its inputs' shapes, or for a kind with
    no inputs (activations, predictions) the shape it will have (one stimulus through the
    model tells). ``describe(spec_json, names) -> str`` names models by ``names`` (weights
    key -> model name).
    """

    name: str
    code_version: int
    recipe: Callable
    queue: str
    estimate: Callable[[Any, list[Shape]], Cost]
    describe: Callable[[dict, Mapping[str, str]], str]


def _seconds(flops: float) -> float:
    return flops / FLOPS_PER_S


# ---- estimates ----

def _source(spec, shapes: list[Shape]) -> Cost:
    (n, d), = shapes
    kind = spec.kind
    label = f"layer {spec.params.get('layer', 'output')!r}" if kind == "activations" else "the model's outputs"
    return Cost(n * d * _F32, _seconds(n * d * _FORWARD_FLOPS_PER_FEATURE), (n, d),
                f"{kind} of {n:,} stimuli x {d:,} features ({label}, float32)",
                "use fewer stimuli (n_per_class), pooling 'avg' or 'proj:<k>', or a smaller layer")


def _rdm(spec, shapes: list[Shape]) -> Cost:
    (n, d), = shapes
    peak = n * d * _F32 + n * n * _F32 + condensed_size(n) * _F32
    return Cost(peak, _seconds(2 * n * n * d), (condensed_size(n),),
                f"an RDM of {n:,} stimuli ({n:,} x {n:,} float32 while computed)", "use fewer stimuli (n_per_class)")


def _rdm_blocks(spec, shapes: list[Shape]) -> Cost:
    (length,), = shapes
    n = side_from_length(length)
    factor = max(1, -(-n // spec.params["max_side"]))
    m = -(-n // factor)
    band = min(n * n, max(factor * n, _BAND_ENTRIES))
    peak = length * _F32 + band * _BAND_BYTES_PER_ENTRY + m * m * _F64
    return Cost(peak, _seconds(10 * n * n), (m, m),
                f"the picture of an RDM of {n:,} stimuli ({m:,} x {m:,} blocks, read in bands)",
                "use fewer stimuli (n_per_class)")


def _model_rdm(spec, shapes: list[Shape]) -> Cost:
    m, pairs = len(shapes), shapes[0][0]
    flops = 2 * m * m * pairs + m * pairs * math.log2(max(pairs, 2))  # ranks, then one GEMM
    return Cost(3 * m * pairs * _F32, _seconds(flops), (m, m), f"comparing {m} RDMs of {pairs:,} pairs each",
                "use fewer stimuli (n_per_class) or fewer models")


# A model RDM's null gathers its prepared (M, K) stack once per permutation (about this many
# FLOPs' time per entry: a column gather, cheaper than a kernel's; measured with the GEMMs at
# ~0.25 s a permutation for 112 models of N = 500 on two busy cores).
_RDM_GATHER_FLOPS = 20


def _model_rdm_null(spec, shapes: list[Shape]) -> Cost:
    m, pairs = len(shapes), shapes[0][0]
    n_perm = spec.params["null"]
    side = pairs + (side_from_length(pairs) or 0)  # a whitened vector adds the N diagonal entries
    held = m * pairs * _F32 + 2 * m * side * _F64 + m * side * _F32 + _NULL_CHUNK * _F32
    held += (m * m // 2 + m) * n_perm * _F64 + len(recipes.MODEL_NULL_FIELDS) * m * m * _F64
    flops = 2 * m * m * pairs + m * pairs * math.log2(max(pairs, 2)) + n_perm * (
        2 * m * m * side + _RDM_GATHER_FLOPS * m * side)
    return Cost(held, _seconds(flops), (len(recipes.MODEL_NULL_FIELDS), m, m),
                f"comparing {m} RDMs of {pairs:,} pairs each, with {n_perm:,} permutations of the stimuli for every entry",
                "use fewer stimuli (n_per_class), fewer models or fewer permutations")


def _mds(spec, shapes: list[Shape]) -> Cost:
    shape, = shapes
    p = shape[0] if len(shape) == 2 else side_from_length(shape[0])
    return Cost(4 * p * p * _F64, _seconds(300 * 10 * p * p), (p, 2),  # ~300 SMACOF iterations
                f"an MDS of {p:,} points ({p:,} x {p:,} float64 distances)", "use fewer stimuli (n_per_class)")


def _mds_stress(spec, shapes: list[Shape]) -> Cost:
    shape = shapes[0]
    p = shape[0] if len(shape) == 2 else side_from_length(shape[0])
    pairs = p * (p - 1) // 2
    return Cost(3 * pairs * _F64, _seconds(10 * pairs), (1,),
                f"the stress-1 of an MDS of {p:,} points ({pairs:,} float64 distances)", "use fewer stimuli (n_per_class)")


# Encoding measures factor each of their (default 5) training sets; k-NN measures keep k
# neighbours per stimulus and form their cosine Gram matrix in row blocks of 2^26 entries.
_FOLDS = 5
_KNN = ("mutual_knn", "jaccard_knn", "cknna")


def _prepared_bytes(n: int, d: int, measure: str) -> int:
    """One layer prepared for a similarity measure: its centred float32 copy and a float64
    N x N kernel (cka_rbf, dcor) or the smaller of the N x N Gram and the D x D factor (the
    linear and CCA families, Procrustes, shape metrics); the k-NN family its neighbours and one
    block of its Gram matrix; ridge_r / pls_r a float32 factor of every fold's training data
    (plus, for D >= N, the N x N Gram)."""
    if measure in _KNN:
        return n * d * _F32 + n * 10 * 2 * _F64 + min(n * n, 1 << 26) * _F32
    if measure in ("ridge_r", "pls_r"):
        return n * d * (_F32 + _F64) + _FOLDS * n * min(n, d) * _F32 + (n * n * _F64 if d >= n else 0)
    side = n if measure in ("cka_rbf", "dcor") else min(n, d)
    return n * d * _F32 + side * side * _F64


def _prepare_flops(n: int, d: int, measure: str = "") -> float:
    if measure in _KNN:
        return 2 * n * n * d
    if measure in ("ridge_r", "pls_r"):
        return _FOLDS * 4 * n * d * min(n, d)  # one SVD (or Gram eigensolver) per fold
    return 2 * n * d * min(n, d)


def _pair_flops(n: int, da: int, db: int, measure: str = "") -> float:
    if measure in _KNN:
        return 20 * n * math.log2(10)
    if measure == "ridge_r":
        return _FOLDS * 2 * n * min(n, da) * db  # U'Y and the held-out predictions per fold
    if measure == "pls_r":
        return _FOLDS * 25 * 40 * n * (da + db)  # ~40 power iterations per component
    if measure == "permutation":
        return 2 * n * da * db + max(da, db) ** 3  # the cross-covariance, then the assignment
    return 2 * n * min(n, da) * min(n, db)


def _layer_grid(spec, shapes: list[Shape]) -> Cost:
    n = shapes[0][0]
    la, lb = len(spec.params["layers_a"]), len(spec.params["layers_b"])
    widths = [shape[1] for shape in shapes]
    measure, n_perm = spec.params["measure"], spec.params.get("null", 0)
    peak = sum(n * d * _F32 + _prepared_bytes(n, d, measure) for d in widths) + la * lb * _F64
    flops = sum(_prepare_flops(n, d, measure) for d in widths) + sum(
        _pair_flops(n, da, db, measure) for da in widths[:la] for db in widths[la:])
    what = (f"{measure} between {la} x {lb} layers of {n:,} stimuli (every layer's activations "
            "and prepared kernel or factor)")
    if not n_perm:
        return Cost(peak, _seconds(flops), (la, lb), what,
                    "use fewer stimuli (n_per_class), fewer layers or pooling 'avg'")
    held, null_flops = grid_null_cost(n, widths, la, measure, n_perm, flops)
    return Cost(peak + held, _seconds(flops + null_flops), (len(recipes.GRID_NULL_FIELDS), la, lb),
                f"{what}, with {n_perm:,} permutations of the stimuli for every cell",
                "use fewer stimuli (n_per_class), fewer layers, pooling 'avg' or fewer permutations")


def _dimensionality(spec, shapes: list[Shape]) -> Cost:
    n, widths = shapes[0][0], [shape[1] for shape in shapes]
    # Every layer's activations, then one at a time its centred copy and float64 Gram (the smaller side).
    peak = sum(n * d * _F32 for d in widths) + max(n * d * _F32 + min(n, d) ** 2 * 2 * _F64 for d in widths)
    flops = sum(2 * n * d * min(n, d) + 10 * min(n, d) ** 3 for d in widths)
    return Cost(peak, _seconds(flops), (len(widths),),
                f"the {spec.params['method']} of {_count(len(widths), 'layer')} of {n:,} stimuli",
                "use fewer stimuli (n_per_class), fewer layers or pooling 'avg'")


def _similarities(spec, shapes: list[Shape]) -> Cost:
    n = shapes[0][0]
    widths = [shape[1] for shape in shapes]
    measure, pairs = spec.params["measure"], spec.params["pairs"]
    peak = sum(n * d * _F32 + _prepared_bytes(n, d, measure) for d in widths) + len(pairs) * _F64
    columns: dict[int, set[int]] = {}
    for a, b in pairs:  # the recipe prepares each column's first sides once per column
        columns.setdefault(b, set()).add(a)
    flops = sum(_prepare_flops(n, widths[b], measure) + sum(
        _prepare_flops(n, widths[a], measure) + _pair_flops(n, widths[a], widths[b], measure) for a in firsts)
        for b, firsts in columns.items())
    return Cost(peak, _seconds(flops), (len(pairs),),
                f"{measure} of {len(pairs)} layer pairs over {len(widths)} layers of {n:,} stimuli",
                "use fewer stimuli (n_per_class), fewer models or pooling 'avg'")


def _confusion(spec, shapes: list[Shape]) -> Cost:
    (n, c), = shapes
    k = spec.params["k"]
    peak = n * c * (_F32 + _F64) + 2 * n * k * 8 + 2 * c * c * _F64
    return Cost(peak, _seconds(4 * n * c), (c, c), f"the top-{k} confusion of {n:,} stimuli over {c:,} classes",
                "use fewer stimuli (n_per_class)")


def _confusion_rdm(spec, shapes: list[Shape]) -> Cost:
    (c, _), = shapes
    pairs = condensed_size(c)
    return Cost(c * c * _F64 + 3 * pairs * 8, _seconds(4 * c * c), (pairs,),
                f"the class RDM of {c:,} classes", "use a stimulus set with fewer classes")


def _srm_fit(spec, shapes: list[Shape]) -> Cost:
    p = spec.params
    n, m = shapes[0][0], len(shapes)
    widths = [shape[1] for shape in shapes]
    n_train = min(max(round(p["train_fraction"] * n), 1), n - 1)
    n_test = n - n_train
    k = min(p["k"], n_train, *widths)
    peak = (sum(n * d * _F32 + 2 * n_train * d * _F32 + 2 * n_test * d * _F64 + d * k * _F64 for d in widths)
            + 2 * n * k * _F64 + (m + 3) * n_test * n_test * _F64)  # inputs, splits, maps, shared, RSMs
    flops = p["n_iter"] * sum(4 * n_train * d * k for d in widths) + sum(2 * n_test * n_test * d for d in widths)
    return Cost(peak, _seconds(flops), (len(recipes.SRM_FIT_FIELDS),),
                f"an SRM of {m} models over {n:,} stimuli (widths {', '.join(f'{d:,}' for d in widths)}, k = {k})",
                "use fewer stimuli (n_per_class), fewer models or pooling 'avg'")


def _subjects(reference: str) -> int:
    """How many subjects' RDMs the stored reference holds (1 when it cannot be read: the job
    itself then says why)."""
    from compute.sources.references import reference_info

    try:
        return reference_info(reference).subjects
    except (ValueError, OSError, TypeError):
        return 1


def _reference_fit(spec, shapes: list[Shape]) -> Cost:
    p = spec.params
    r, length = len(shapes) + len(p.get("candidates", ())), shapes[0][0]
    n, s, n_boot = side_from_length(length), _subjects(p["reference"]), p["n_boot"]
    chunk = min(n_boot, max(1, _BOOTSTRAP_CHUNK // length)) * length
    peak = r * length * (_F32 + _F64) + 2 * s * length * _F64 + n_boot * n * _F64 + 3 * chunk * _F64
    # Per resample and dissimilarity: a weighted re-ranking for the rank methods, weighted sums
    # otherwise (measured: Spearman 7.6 s and Pearson 1.9 s for 100 resamples of 124,750 pairs on
    # two busy cores).
    per_entry = 4_000 if p["method"] in ("spearman", "rho_a", "kendall_tau_a", "tau_b") else 1_000
    flops = r * s * (max(n_boot, 1) * per_entry * length + length * math.log2(max(length, 2)))
    if not n_boot and p["method"] in WEIGHTED_METHODS:
        # Batched (compute/measures/reference.py): each candidate sorted once, then one product
        # with all subjects (measured: 112 RDMs of 124,750 pairs against 5 subjects, Spearman,
        # 5.4 s on two loaded cores; the loop this replaced, 155 s).
        flops = r * length * (200 * math.log2(max(length, 2)) + 2 * s)
    return Cost(peak, _seconds(flops), (r, 5),
                f"{_count(r, 'RDM')} of {n:,} stimuli against {_count(s, 'subject')} with {n_boot:,} resamples",
                "use fewer stimuli (n_per_class), fewer resamples (n_boot) or fewer models")


def _reference_eval(spec, shapes: list[Shape]) -> Cost:
    p = spec.params
    m, length = len(shapes) + len(p.get("candidates", ())), shapes[0][0]
    n, s, n_boot = side_from_length(length), _subjects(p["reference"]), p["n_boot"]
    peak = m * length * (_F32 + 3 * _F64) + 4 * s * length * _F64 + 3 * n_boot * m * _F64 + m * m * _F64
    # Per resample, model and dissimilarity: a gather and a cumulative sum of the model's ranks
    # and its share of one product with the subjects (measured: 100 models of 4,186 pairs with
    # 1,000 two-factor resamples, 38 s on two busy cores, ~90 ns each).
    flops = n_boot * m * length * 900 + m * m * n_boot
    return Cost(peak, _seconds(flops), (m, 4 + m),
                f"{_count(m, 'RDM')} of {n:,} stimuli against {_count(s, 'subject')}, evaluated together "
                f"with {n_boot:,} resamples", "use fewer resamples (n_boot) or fewer models")


# ---- descriptions ----

def _first_with(spec: dict, param: str) -> dict:
    """The spec, or the first of its chain of first inputs, that has the parameter ``param``."""
    while param not in spec["params"] and spec.get("inputs"):
        spec = spec["inputs"][0]
    return spec


def _model(spec: dict, names: Mapping[str, str]) -> str:
    """The model a per-model spec is about: its own ``model`` parameter, else its first input's."""
    key = _first_with(spec, "model")["params"].get("model", "?")
    return names.get(key, key[:10])


def _count(n: int, noun: str) -> str:
    """ "1 RDM", "3 RDMs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _layers(specs: list[dict]) -> str:
    """The layers of activation specs (or of specs built on one, such as RDMs), for telling apart
    jobs that differ only there: "layer fc1", "layers bn1, bn2", "5 layers"."""
    found = []
    for spec in specs:
        layer = _first_with(spec, "layer")["params"].get("layer")
        if layer is not None and layer not in found:
            found.append(layer)
    if len(found) <= 1:
        return f"layer {found[0]}" if found else "layer unknown"
    return f"layers {', '.join(found)}" if len(found) <= 3 else f"{len(found)} layers"


def _describe_activations(spec: dict, names) -> str:
    params = spec["params"]
    pooled = "" if params["pooling"] == "none" else f", {params['pooling']} pooling"
    return f"activations of {_model(spec, names)}, layer {params['layer']}{pooled}"


def _describe_model_rdm(spec: dict, names) -> str:
    method, inputs = spec["params"]["method"], spec.get("inputs", [])
    if inputs and inputs[0]["kind"] == "confusion_rdm":
        return f"model_rdm {method} of {_count(len(inputs), 'confusion RDM')}"
    return f"model_rdm {method} of {_count(len(inputs), 'RDM')}, {_layers(inputs)}"


def _describe_layer_grid(spec: dict, names) -> str:
    params, inputs = spec["params"], spec["inputs"]
    a, b = len(params["layers_a"]), len(params["layers_b"])
    null = f", null of {params['null']} permutations" if params.get("null") else ""
    return (f"layer_grid {params['measure']}: {_model(inputs[0], names)} ({_count(a, 'layer')}) × "
            f"{_model(inputs[-1], names)} ({_count(b, 'layer')}){null}")


def _reference_name(key: str) -> str:
    """A stored reference by its name (its key's first digits when it cannot be read)."""
    from compute.sources.references import reference_info

    try:
        return repr(reference_info(key).name)
    except (ValueError, OSError, TypeError):
        return str(key)[:8]


def _describe_reference_fit(spec: dict, names) -> str:
    params, inputs = spec["params"], spec["inputs"]
    more = f" and {_count(len(params['candidates']), 'reference RDM')}" if params.get("candidates") else ""
    what = "evaluation" if spec["kind"] == "reference_eval" else "fit"
    return (f"{what} of {_count(len(inputs), 'RDM')} ({_layers(inputs)}){more} against reference "
            f"{_reference_name(params['reference'])} ({params['method']}, {params['n_boot']} resamples)")


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    # 2026-11-23: activations 2 (channels_last on the CPU: conv rounding differs by <= 2e-5),
    # layer_grid and similarities 2 (the CCA family's whitening and PWCCA's weights in float64 D x D).
    Kind("activations", 2, recipes.activations, "gpu", _source, _describe_activations),
    Kind("predictions", 1, recipes.predictions, "gpu", _source,
         lambda spec, names: f"predictions of {_model(spec, names)}"),
    Kind("rdm", 1, recipes.rdm, "gpu", _rdm,
         lambda spec, names: f"rdm {spec['params']['method']} of {_model(spec, names)}, "
                             f"layer {spec['inputs'][0]['params']['layer']}"),
    Kind("rdm_blocks", 1, recipes.rdm_blocks, "cpu", _rdm_blocks,
         lambda spec, names: f"RDM picture ({spec['params']['max_side']} blocks per side) of "
                             f"{describe(spec['inputs'][0], names)}"),
    Kind("model_rdm", 1, recipes.model_rdm, "gpu", _model_rdm, _describe_model_rdm),
    Kind("model_rdm_null", 1, recipes.model_rdm_null, "gpu", _model_rdm_null,
         lambda spec, names: f"{_describe_model_rdm(spec, names)}, null of {spec['params']['null']} permutations"),
    Kind("mds", 1, recipes.mds, "cpu", _mds,
         lambda spec, names: f"mds {spec['params']['method']} of {describe(spec['inputs'][0], names)}"),
    Kind("mds_stress", 1, recipes.mds_stress, "cpu", _mds_stress,
         lambda spec, names: f"stress-1 of the {describe(spec['inputs'][1], names)}"),
    Kind("layer_grid", 4, recipes.layer_grid, "cpu", _layer_grid, _describe_layer_grid),
    Kind("similarities", 4, recipes.similarities, "cpu", _similarities,
         lambda spec, names: f"{spec['params']['measure']} of {_count(len(spec['params']['pairs']), 'layer pair')} "
                             f"({_layers(spec['inputs'])})"),
    Kind("dimensionality", 1, recipes.dimensionality, "cpu", _dimensionality,
         lambda spec, names: f"{spec['params']['method']} of {_model(spec, names)}, {_layers(spec['inputs'])}"),
    Kind("confusion", 1, recipes.confusion, "cpu", _confusion,
         lambda spec, names: f"top-{spec['params']['k']} confusion of {_model(spec, names)}"),
    Kind("confusion_rdm", 1, recipes.confusion_rdm, "cpu", _confusion_rdm,
         lambda spec, names: f"confusion_rdm of {_model(spec, names)}, top-{spec['inputs'][0]['params']['k']}"),
    Kind("srm_fit", 1, recipes.srm_fit, "cpu", _srm_fit,
         lambda spec, names: f"SRM (k = {spec['params']['k']}) of {len(spec['inputs'])} models, "
                             f"{_layers(spec['inputs'])}"),
    Kind("reference_fit", 1, recipes.reference_fit, "cpu", _reference_fit, _describe_reference_fit),
    Kind("reference_eval", 1, recipes.reference_eval, "cpu", _reference_eval, _describe_reference_fit),
)}


def queue_of(kind: str, lane: str = "interactive") -> str:
    """The Celery queue a job of ``kind`` goes to in ``lane``: the kind's queue ("gpu", "cpu"),
    and for the long lane that queue's "-long" twin (workers of their own, so short jobs never
    wait behind long ones)."""
    queue = KINDS[kind].queue
    return f"{queue}-long" if lane == "long" else queue


def describe(spec, names: Mapping[str, str] = {}) -> str:
    """What a job computes, in a few words, from its spec (a Spec or its JSON), naming models by
    ``names`` (weights key -> name; an unknown key shows its first 10 characters).

    E.g. "rdm correlation of cnn-w4-s0-e25, layer penultimate", "model_rdm spearman of 40 RDMs,
    layer penultimate". A kind this version does not know (a record from another version) shows
    its name.
    """
    spec = spec if isinstance(spec, dict) else spec.to_json()
    kind = KINDS.get(spec["kind"])
    return kind.describe(spec, names) if kind else spec["kind"]
