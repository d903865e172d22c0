"""Artifact specs and their keys, the spec builders, and :func:`ensure`, which computes a spec.

A :class:`Spec` names one artifact: its kind (a record of compute/engine/kinds.py), the
parameters that define it, and the specs of its inputs. Its key is a hash of exactly those (plus
the kind's code version), so identical requests share one artifact and one job. Model and
stimulus identities enter as content hashes; ``locate`` carries how to find them (names, paths)
and is not part of the key.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from compute.engine.batches import Steps, compute_activations, naming
from compute.engine.claims import claim
from compute.engine.kinds import KINDS
from compute.engine.recipes import Context, check_null
from compute.measures.registry import DIMENSIONALITY_METHODS, NULL_COMPARE_METHODS


@dataclass(frozen=True)
class Spec:
    kind: str
    params: dict[str, Any]
    inputs: tuple["Spec", ...] = ()
    locate: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown artifact kind {self.kind!r}; known: {sorted(KINDS)}")

    @cached_property
    def key(self) -> str:
        identity = [self.kind, KINDS[self.kind].code_version, self.params, [s.key for s in self.inputs]]
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


def model_rdm_null_spec(matrix: Spec, null: int, seed: int = 0) -> Spec:
    """A model RDM (``matrix``, from :func:`model_rdm_spec`) with each entry's permutation null:
    ``null`` (100 or 1000) permutations of the stimuli, seeded by ``seed``; the (7, M, M) stack of
    recipes.MODEL_NULL_FIELDS. Other counts, and comparisons without a batched null, are refused."""
    check_null(null, seed)
    method = matrix.params["method"]
    if not null or matrix.kind != "model_rdm" or method not in NULL_COMPARE_METHODS:
        raise ValueError(f"a model RDM's null needs 100 or 1000 permutations and one of "
                         f"{', '.join(NULL_COMPARE_METHODS)}; got {null!r} permutations of {method!r}")
    return Spec("model_rdm_null", {"method": method, "null": null, "seed": seed}, matrix.inputs)


def mds_spec(matrix_spec: Spec, method: str = "smacof", seed: int = 0) -> Spec:
    """MDS of a model RDM, or of one input RDM (its stimuli, from the condensed RDM)."""
    return Spec("mds", {"method": method, "seed": seed}, (matrix_spec,))


def mds_stress_spec(embedding: Spec) -> Spec:
    """Kruskal's stress-1 of an MDS (``embedding``, from :func:`mds_spec`): how well its
    distances keep the dissimilarities it embeds; a (1,) array."""
    if embedding.kind != "mds":
        raise ValueError(f"stress-1 is of an MDS, got a {embedding.kind!r} spec")
    return Spec("mds_stress", {}, (embedding.inputs[0], embedding))


def layer_grid_spec(model_a: str, layers_a, model_b: str, layers_b, stimuli,
                    measure: str = "cka_linear", pooling: str = "none", null: int = 0, seed: int = 0) -> Spec:
    """``measure`` between every layer in ``layers_a`` of ``model_a`` and every layer in
    ``layers_b`` of ``model_b`` (L_A x L_B); the activations are ordinary, shared artifacts.

    ``null`` (0, 100 or 1000; recipes.NULL_PERMUTATIONS) permutations of B's stimuli, seeded by
    ``seed`` (an integer in [0, 2^32)), make it the (5, L_A, L_B) stack of recipes.GRID_NULL_FIELDS
    (scores, p, BH-FDR q over the cells, z, calibrated); other values are refused."""
    layers_a, layers_b = list(layers_a), list(layers_b)
    if not layers_a or not layers_b:
        raise ValueError("layer_grid_spec needs at least one layer of each model")
    check_null(null, seed)
    inputs = tuple(activations_spec(model_a, stimuli, layer, pooling) for layer in layers_a) + tuple(
        activations_spec(model_b, stimuli, layer, pooling) for layer in layers_b)
    params = {"measure": measure, "layers_a": layers_a, "layers_b": layers_b}
    if null:  # only when on: the keys of grids without a null stay as they were
        params.update(null=null, seed=seed)
    return Spec("layer_grid", params, inputs)


def dimensionality_spec(model_key: str, layers, stimuli, method: str = "participation_ratio",
                        pooling: str = "none") -> Spec:
    """The dimensionality (``compute.dimensionality``, ``method`` a DIMENSIONALITY_METHODS name)
    of each of ``layers`` of one model: an (L,) vector in the layers' order."""
    layers = list(layers)
    if not layers:
        raise ValueError("dimensionality_spec needs at least one layer")
    if method not in DIMENSIONALITY_METHODS:
        raise ValueError(f"unknown dimensionality method {method!r}; valid: {', '.join(DIMENSIONALITY_METHODS)}")
    return Spec("dimensionality", {"method": method},
                tuple(activations_spec(model_key, stimuli, layer, pooling) for layer in layers))


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


def srm_fit_spec(model_keys, stimuli, layers, pooling: str = "none", k: int = 10, train_fraction: float = 0.5,
                 seed: int = 0, n_iter: int = 10) -> Spec:
    """An SRM across models (one layer each; widths may differ) fitted with ``k`` shared
    dimensions on a class-stratified ``train_fraction`` of the stimuli (``stratified_split``;
    ``seed`` also seeds SRM) and evaluated on the rest. Its vector holds, as recipes.SRM_FIT_FIELDS:
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


def reference_fit_spec(reference: str, rdms, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
                       candidates=()) -> Spec:
    """Each input RDM (``rdm_spec``s over one stimulus set) against the uploaded reference RDM
    ``reference`` (its key, compute.sources.references): an (R, 5) float64 array, one row per
    input RDM, columns compute.measures.reference.FIT_COLUMNS (mean comparison with the
    subjects' RDMs, bootstrap CI over stimuli, noise ceiling lower/upper). ``candidates``,
    ``(reference key, row)`` pairs, add rows of other stored references over the same stimuli
    (e.g. the monkey-IT RDM of a model-RDM file) as further candidates, after the inputs."""
    rdms = tuple(rdms)
    candidates = [[str(key), int(row)] for key, row in candidates]
    if not rdms and not candidates:
        raise ValueError("reference_fit_spec needs at least one RDM to compare with the reference")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    params = {"reference": reference, "method": method, "n_boot": n_boot, "seed": int(seed)}
    if candidates:  # only when given: the keys of fits without them stay as they were
        params["candidates"] = candidates
    return Spec("reference_fit", params, rdms)


def reference_eval_spec(reference: str, rdms, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
                        candidates=()) -> Spec:
    """The inputs of :func:`reference_fit_spec` evaluated together (``compute.evaluate_models``):
    an (M, 4 + M) float64 array, one row per candidate (the inputs, then ``candidates``): mean
    comparison with the subjects, its bootstrap interval (subjects and stimuli resampled when
    the reference has several subjects, else stimuli), the ceiling-normalised score, then the
    BH-corrected p-values of the differences with every candidate; the meta holds the noise
    ceiling and its test."""
    fit = reference_fit_spec(reference, rdms, method, n_boot, seed, candidates)
    if n_boot < 2:
        raise ValueError(f"an evaluation needs at least 2 resamples, got n_boot={n_boot}")
    return Spec("reference_eval", fit.params, fit.inputs)


# ---- computing a spec and what it needs ----

def _load(spec: Spec, store, ctx: Context) -> np.ndarray:
    """An input's array; one found corrupt (and so deleted) or evicted is computed again."""
    from compute.engine.store import CorruptArtifact

    try:
        return store.get(spec.kind, spec.key)[0]
    except (KeyError, CorruptArtifact):
        ensure(spec, store, ctx)
        return store.get(spec.kind, spec.key)[0]


def ensure(spec: Spec, store, ctx: Context | None = None) -> str:
    """Compute ``spec`` and whatever of its inputs is missing from ``store``; return its key.

    Missing activations come first, in batches (compute/engine/batches.py): each model runs
    one forward pass for all the layers asked of it, models of one architecture share one
    built module, and what one model's activations alone feed (its RDMs) is made at once.
    An artifact another job is making is waited for and read, not made twice (compute/engine/claims.py).
    """
    ctx = ctx or Context()
    unique = {s.key: s for s in spec.walk()}.values()
    missing = [s for s in unique if not store.has(s.kind, s.key)]
    steps = Steps(ctx, len(missing))
    compute_activations(missing, store, steps)
    for s in missing:
        if s.kind == "activations" or store.has(s.kind, s.key):
            continue
        ctx.check()
        inputs = [_load(i, store, ctx) for i in s.inputs]  # (memory-mapped) before the claim: none held meanwhile
        with claim(store, s.kind, s.key, steps.within()):
            if not store.has(s.kind, s.key):  # else another job made it while this one waited
                with naming(s):
                    array, meta = KINDS[s.kind].recipe(s, inputs, steps.within())
                store.put(s.kind, s.key, array, meta)
        steps.step(s.kind)
    return spec.key
