"""Artifact kinds, their keys, and the recipes that compute them from their inputs.

A :class:`Spec` names one artifact: its kind, the parameters that define it, and the specs of
its inputs. Its key is a hash of exactly those (plus the kind's code version), so identical
requests share one artifact and one job. Model and stimulus identities enter as content hashes;
``locate`` carries how to find them (names, paths) and is not part of the key.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np

from compute.errors import Cancelled

# Bump a kind's version when its recipe's numbers change: old artifacts are then never served.
# 2026-11-23: activations 2 (channels_last on the CPU: conv rounding differs by <= 2e-5),
# layer_grid and similarities 2 (the CCA family's whitening and PWCCA's weights in float64 D x D).
CODE_VERSION = {"activations": 2, "predictions": 1, "rdm": 1, "model_rdm": 1, "mds": 1,
                "layer_grid": 2, "similarities": 2, "confusion": 1, "confusion_rdm": 1, "srm_fit": 1,
                "reference_fit": 1, "rdm_blocks": 1}


@dataclass(frozen=True)
class Spec:
    kind: str
    params: dict[str, Any]
    inputs: tuple["Spec", ...] = ()
    locate: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in CODE_VERSION:
            raise ValueError(f"unknown artifact kind {self.kind!r}; known: {sorted(CODE_VERSION)}")

    @cached_property
    def key(self) -> str:
        identity = [self.kind, CODE_VERSION[self.kind], self.params, [s.key for s in self.inputs]]
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": self.params,
            "inputs": [s.to_json() for s in self.inputs],
            "locate": self.locate,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Spec":
        return cls(
            data["kind"],
            dict(data["params"]),
            tuple(cls.from_json(s) for s in data.get("inputs", ())),
            dict(data.get("locate", {})),
        )

    def walk(self):
        """This spec and all its inputs, depth first, inputs before the spec."""
        for spec in self.inputs:
            yield from spec.walk()
        yield self


# ---- spec builders: the vocabulary the dashboard and the CLI speak ----

def activations_spec(model_key: str, stimuli, layer: str = "penultimate", pooling: str = "none") -> Spec:
    return Spec(
        "activations",
        {"model": model_key, "stimuli": stimuli.key, "layer": layer, "pooling": pooling},
        locate={"stimuli": stimuli.name},
    )


def predictions_spec(model_key: str, stimuli) -> Spec:
    return Spec("predictions", {"model": model_key, "stimuli": stimuli.key}, locate={"stimuli": stimuli.name})


def rdm_spec(model_key: str, stimuli, layer="penultimate", pooling="none", method="correlation") -> Spec:
    return Spec("rdm", {"method": method}, (activations_spec(model_key, stimuli, layer, pooling),))


def rdm_blocks_spec(rdm: Spec, stimuli, max_side: int = 1000) -> Spec:
    """The class-sorted picture of an input RDM: block means, at most ``max_side`` per side."""
    return Spec("rdm_blocks", {"max_side": int(max_side), "stimuli": stimuli.key}, (rdm,),
                locate={"stimuli": stimuli.name})


def model_rdm_spec(model_keys, stimuli, layer="penultimate", pooling="none",
                   rdm_method="correlation", compare_method="spearman") -> Spec:
    """The model RDM of the models' input RDMs; ``layer`` names one layer for every model, or
    is a list of one layer per model (e.g. the d-th block of models of different depths)."""
    model_keys = list(model_keys)
    layers = [layer] * len(model_keys) if isinstance(layer, str) else list(layer)
    if len(layers) != len(model_keys):
        raise ValueError(f"{len(layers)} layers given for {len(model_keys)} models; give one per model")
    rdms = tuple(rdm_spec(key, stimuli, name, pooling, rdm_method) for key, name in zip(model_keys, layers))
    return Spec("model_rdm", {"method": compare_method}, rdms)


def mds_spec(matrix_spec: Spec, method: str = "smacof", seed: int = 0) -> Spec:
    """MDS of a model RDM, or of one input RDM (its stimuli, from the condensed RDM)."""
    return Spec("mds", {"method": method, "seed": seed}, (matrix_spec,))


def layer_grid_spec(model_a: str, layers_a, model_b: str, layers_b, stimuli,
                    measure: str = "cka_linear", pooling: str = "none") -> Spec:
    """``measure`` between every layer in ``layers_a`` of ``model_a`` and every layer in
    ``layers_b`` of ``model_b`` (L_A x L_B); the activations are ordinary, shared artifacts."""
    layers_a, layers_b = list(layers_a), list(layers_b)
    if not layers_a or not layers_b:
        raise ValueError("layer_grid_spec needs at least one layer of each model")
    inputs = tuple(activations_spec(model_a, stimuli, layer, pooling) for layer in layers_a) + tuple(
        activations_spec(model_b, stimuli, layer, pooling) for layer in layers_b)
    return Spec("layer_grid", {"measure": measure, "layers_a": layers_a, "layers_b": layers_b}, inputs)


def similarities_spec(pairs, stimuli, measure: str = "cka_linear", pooling: str = "none") -> Spec:
    """``measure`` for each pair ``((model_a, layer_a), (model_b, layer_b))`` of ``pairs``: a
    vector, one entry per pair, in order. Each distinct (model, layer) is one shared activations
    input, listed once."""
    pairs = [(tuple(a), tuple(b)) for a, b in pairs]
    if not pairs:
        raise ValueError("similarities_spec needs at least one pair of (model key, layer) sides")
    index: dict[tuple, int] = {}
    for side in (side for pair in pairs for side in pair):
        index.setdefault(side, len(index))
    inputs = tuple(activations_spec(model, stimuli, layer, pooling) for model, layer in index)
    return Spec("similarities", {"measure": measure, "pairs": [[index[a], index[b]] for a, b in pairs]}, inputs)


def confusion_spec(model_key: str, stimuli, k: int = 1) -> Spec:
    """The row-normalised top-``k`` confusion matrix (C x C) of a model on ``stimuli``."""
    return Spec("confusion", {"k": int(k), "stimuli": stimuli.key}, (predictions_spec(model_key, stimuli),),
                locate={"stimuli": stimuli.name})


def confusion_model_rdm_spec(model_keys, stimuli, k: int = 1, compare_method: str = "spearman") -> Spec:
    """The model RDM of the models' class RDMs from their top-``k`` confusion matrices."""
    rdms = tuple(Spec("confusion_rdm", {}, (confusion_spec(key, stimuli, k),)) for key in model_keys)
    return Spec("model_rdm", {"method": compare_method}, rdms)


# The entries of an srm_fit artifact (a float64 vector), in order.
SRM_FIT_FIELDS = ("variance_explained", "native_agreement", "shared_agreement", "train_variance_explained", "k")


def srm_fit_spec(model_keys, stimuli, layers, pooling: str = "none", k: int = 10, train_fraction: float = 0.5,
                 seed: int = 0, n_iter: int = 10) -> Spec:
    """An SRM across models (one layer each; widths may differ) fitted with ``k`` shared
    dimensions on a class-stratified ``train_fraction`` of the stimuli (``stratified_split``;
    ``seed`` also seeds SRM) and evaluated on the rest. Its vector holds, as SRM_FIT_FIELDS:
    held-out variance explained; Pearson r of the inter-network RSM with the mean within-network
    RSM in the native spaces (NaN when widths differ) and in the shared space; variance
    explained on the training stimuli; the k used, min(k, smallest width, training stimuli)."""
    model_keys, layers = list(model_keys), list(layers)
    if len(model_keys) < 2 or len(layers) != len(model_keys):
        raise ValueError(f"srm_fit_spec needs at least two models and one layer per model, got "
                         f"{len(model_keys)} models and {len(layers)} layers")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer number of shared dimensions, got {k!r}")
    inputs = tuple(activations_spec(key, stimuli, layer, pooling) for key, layer in zip(model_keys, layers))
    params = {"k": k, "train_fraction": float(train_fraction), "seed": int(seed), "n_iter": int(n_iter),
              "stimuli": stimuli.key}
    return Spec("srm_fit", params, inputs, locate={"stimuli": stimuli.name})


def reference_fit_spec(reference: str, rdms, method: str = "spearman", n_boot: int = 1000, seed: int = 0) -> Spec:
    """Each input RDM (``rdm_spec``s over one stimulus set) against the uploaded reference RDM
    ``reference`` (its key, compute.sources.references): an (R, 5) float64 array, one row per
    input RDM, columns compute.measures.reference.FIT_COLUMNS (mean comparison with the
    subjects' RDMs, bootstrap CI over stimuli, noise ceiling lower/upper)."""
    rdms = tuple(rdms)
    if not rdms:
        raise ValueError("reference_fit_spec needs at least one RDM to compare with the reference")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    return Spec("reference_fit", {"reference": reference, "method": method, "n_boot": n_boot, "seed": int(seed)},
                rdms)


# ---- recipes ----

@dataclass
class Context:
    """What a recipe may use besides its inputs: progress reports and the cancel flag."""

    report: Callable[[float, str], None] = lambda fraction, message: None
    should_stop: Callable[[], bool] = lambda: False

    def check(self) -> None:
        if self.should_stop():
            raise Cancelled("cancelled")


def _stimuli(spec: Spec):
    from compute.sources.stimuli import get_stimulus_set

    stimuli = get_stimulus_set(spec.locate.get("stimuli", "digits"))
    if stimuli.key != spec.params["stimuli"]:
        raise ValueError(
            f"stimulus set {stimuli.name!r} has changed since this job was asked for "
            "(its content hash differs); reload the page to use the current set"
        )
    return stimuli


def compute_activations(specs: list[Spec], ctx: Context) -> list[tuple[np.ndarray, dict]]:
    """Activations for several layers of one model on one stimulus set, in one forward pass."""
    from compute.sources.activations import extract
    from compute.sources.models import load_model, resolve_layer

    first = specs[0]
    model = load_model(first.params["model"])
    stimuli = _stimuli(first)
    layers = [resolve_layer(model, s.params["layer"]) for s in specs]
    acts = extract(model, stimuli.images, sorted(set(layers)), pooling=first.params["pooling"],
                   progress=lambda f: ctx.report(f, "extracting activations"), should_stop=ctx.should_stop)
    return [(acts[layer], {"layer": layer, "stimuli": stimuli.name}) for layer in layers]


def _predictions(spec: Spec, inputs, ctx: Context):
    from compute.sources.activations import predict
    from compute.sources.models import load_model

    stimuli = _stimuli(spec)
    scores = predict(load_model(spec.params["model"]), stimuli.images)
    return scores.astype(np.float32), {"stimuli": stimuli.name}


def _rdm(spec: Spec, inputs, ctx: Context):
    from compute.measures.rdm import rdm

    return rdm(inputs[0], method=spec.params["method"], condensed=True), {"n": int(inputs[0].shape[0])}


def _rdm_blocks(spec: Spec, inputs, ctx: Context):
    from compute.measures.blocks import sorted_blocks

    blocks, _ = sorted_blocks(inputs[0], _stimuli(spec).labels, spec.params["max_side"])
    return blocks, {}


def _model_rdm(spec: Spec, inputs, ctx: Context):
    from compute.measures.compare import model_rdm

    return model_rdm(np.stack([np.asarray(x) for x in inputs]), method=spec.params["method"]), {}


def _mds(spec: Spec, inputs, ctx: Context):
    from compute.measures.embed import mds

    matrix = np.asarray(inputs[0], dtype=np.float64)
    if matrix.ndim == 1:  # a condensed input RDM: the stimuli themselves are embedded
        from scipy.spatial.distance import squareform

        matrix = squareform(matrix, checks=False)
    coords = mds(matrix, method=spec.params["method"], seed=spec.params["seed"])
    return coords.astype(np.float32), {}


def _layer_grid(spec: Spec, inputs, ctx: Context):
    from compute.measures.similarity import layer_grid

    names_a, names_b = spec.params["layers_a"], spec.params["layers_b"]
    acts_a = dict(zip(names_a, inputs[:len(names_a)]))
    same = spec.inputs[:len(names_a)] == spec.inputs[len(names_a):]
    # The same model and layers on both sides: one dict, so each layer is prepared once.
    acts_b = acts_a if same else dict(zip(names_b, inputs[len(names_a):]))
    return layer_grid(acts_a, acts_b, measure=spec.params["measure"]), {}


def _similarities(spec: Spec, inputs, ctx: Context):
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
                            measure=spec.params["measure"])[:, 0]
        for row, a in members:
            out[row] = column[firsts.index(a)]
    return out, {}


def _confusion(spec: Spec, inputs, ctx: Context):
    from compute.measures.confusion import confusion_matrix

    stimuli = _stimuli(spec)
    matrix = confusion_matrix(np.asarray(inputs[0]), stimuli.labels, k=spec.params["k"])
    return matrix.astype(np.float32), {"classes": list(stimuli.class_names)}


def _confusion_rdm(spec: Spec, inputs, ctx: Context):
    from compute.measures.confusion import confusion_rdm

    return confusion_rdm(np.asarray(inputs[0])).astype(np.float32), {}


def _srm_fit(spec: Spec, inputs, ctx: Context):
    from compute.measures.srm import fit_srm, shared_space_rsm_agreement, srm_variance_explained, stratified_split

    p = spec.params
    train, test = stratified_split(_stimuli(spec).labels, p["train_fraction"], p["seed"])
    Xs = [np.asarray(x) for x in inputs]
    k = min(p["k"], train.size, *(X.shape[1] for X in Xs))
    held_out = [X[test] for X in Xs]
    try:
        fit = fit_srm([X[train] for X in Xs], k, n_iter=p["n_iter"], seed=p["seed"])
        agreement = shared_space_rsm_agreement(fit, held_out)
        explained = srm_variance_explained(fit, held_out)
    except ValueError as error:
        raise ValueError(f"SRM across layers {[s.params['layer'] for s in spec.inputs]}: {error}") from error
    native = np.nan if agreement.native is None else agreement.native
    values = np.array([explained, native, agreement.shared, fit.variance_explained, k], dtype=np.float64)
    return values, {"fields": list(SRM_FIT_FIELDS), "n_train": int(train.size), "n_test": int(test.size),
                    "widths": [int(X.shape[1]) for X in Xs]}


def _reference_fit(spec: Spec, inputs, ctx: Context):
    from compute.measures.reference import FIT_COLUMNS, fit_reference
    from compute.sources.references import load_reference

    p = spec.params
    fit = fit_reference([np.asarray(x) for x in inputs], load_reference(p["reference"]), p["method"],
                        n_boot=p["n_boot"], seed=p["seed"], should_stop=ctx.should_stop,
                        progress=lambda f: ctx.report(f, "comparing with the reference"))
    return fit, {"columns": list(FIT_COLUMNS)}


RECIPES: dict[str, Callable] = {
    "predictions": _predictions,
    "rdm": _rdm,
    "rdm_blocks": _rdm_blocks,
    "model_rdm": _model_rdm,
    "mds": _mds,
    "layer_grid": _layer_grid,
    "similarities": _similarities,
    "confusion": _confusion,
    "confusion_rdm": _confusion_rdm,
    "srm_fit": _srm_fit,
    "reference_fit": _reference_fit,
}


def _load(spec: Spec, store, ctx: Context) -> np.ndarray:
    """An input's array; one found corrupt (and so deleted) or evicted is computed again."""
    from compute.engine.store import CorruptArtifact

    try:
        return store.get(spec.kind, spec.key)[0]
    except (KeyError, CorruptArtifact):
        ensure(spec, store, ctx)
        return store.get(spec.kind, spec.key)[0]


@contextmanager
def _naming(spec: Spec):
    """Prefix a ValueError of an activations or RDM step with the model and layer it was for."""
    acts = spec if spec.kind == "activations" else (
        spec.inputs[0] if spec.kind == "rdm" and spec.inputs and spec.inputs[0].kind == "activations" else None)
    try:
        yield
    except ValueError as error:
        if acts is None:
            raise
        layer = acts.params.get("layer")
        raise ValueError(f"model {acts.params['model']}, layer {layer!r} ({spec.kind}): {error}") from error


def ensure(spec: Spec, store, ctx: Context | None = None) -> str:
    """Compute ``spec`` and whatever of its inputs is missing from ``store``; return its key.

    Missing activations are grouped by (model, stimuli, pooling) so each model runs one
    forward pass for all the layers asked of it.
    """
    ctx = ctx or Context()
    unique = {s.key: s for s in spec.walk()}.values()
    missing = [s for s in unique if not store.has(s.kind, s.key)]
    total = max(1, len(missing))
    done = 0

    def step(message: str) -> None:
        nonlocal done
        done += 1
        ctx.report(done / total, message)

    groups: dict[tuple, list[Spec]] = {}
    for s in missing:
        if s.kind == "activations":
            groups.setdefault((s.params["model"], s.params["stimuli"], s.params["pooling"]), []).append(s)
    for group in groups.values():
        ctx.check()
        with _naming(group[0]):
            computed = compute_activations(group, ctx)
        for s, (array, meta) in zip(group, computed):
            store.put(s.kind, s.key, array, meta)
            step(f"activations {done + 1}/{total}")
    for s in missing:
        if s.kind == "activations" or store.has(s.kind, s.key):
            continue
        ctx.check()
        inputs = [_load(i, store, ctx) for i in s.inputs]
        with _naming(s):
            array, meta = RECIPES[s.kind](s, inputs, ctx)
        store.put(s.kind, s.key, array, meta)
        step(f"{s.kind} {done + 1}/{total}")
    return spec.key
