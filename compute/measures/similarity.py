"""Similarity of two representations of the same stimuli: the public ``similarity`` and
``layer_grid``, and the dispatch of each measure to its family.

Every measure takes activations ``X`` (N stimuli x D_x features) and ``Y`` (N x D_y), the same
stimuli in the same order, and returns one number. ``MEASURES`` says for each whether it is a
similarity (higher = more alike) or a distance (lower = more alike), its range and invariances.
The families live one per module: ``cka`` (linear, RBF and distance kernels: CKA, RV, RV2,
distance correlation), ``cca`` (mean CCA, SVCCA, PWCCA, top canonical correlation, linear
regression's R^2), ``procrustes`` and ``shape`` (shape metrics), ``knn`` (neighbourhoods) and
``encoding`` (cross-validated ridge and PLS); their shared float64 numerics in ``numerics``.

``layer_grid`` prepares each layer once (its centred kernel, feature factor, whitened basis...)
and then forms every pair from those; ``similarity(X, Y)`` is the 1 x 1 case of the same code.
The D x D factorisations run in scipy's LAPACK on the host, on one OpenBLAS thread.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
import torch

from compute.errors import stop_if_asked
from compute.measures.cca import (
    pair_cca,
    pair_pwcca,
    pair_regression,
    prepare_cca,
    prepare_pwcca,
    prepare_regression,
)
from compute.measures.cka import kernel_grid, pair_features, prepare_features, prepare_kernel
from compute.measures.encoding import pair_encoding, prepare_encoding
from compute.measures.knn import pair_knn, prepare_knn
from compute.measures.numerics import one_blas_thread
from compute.measures.procrustes import pair_procrustes, prepare_procrustes
from compute.measures.registry import MEASURES
from compute.measures.shape import (
    check_alpha,
    pair_permutation,
    pair_shape,
    prepare_permutation,
    prepare_shape,
)
from compute.measures.validate import (
    as_matrix,
    check_not_constant,
    check_same_stimuli,
    resolve_device,
    resolve_dtype,
)

_KNN = {"k": 10}
_OPTIONS: dict[str, dict[str, float]] = {
    "cka_rbf": {"threshold": 1.0}, "svcca": {"keep": 0.99}, "shape_alpha": {"alpha": 0.5},
    "mutual_knn": _KNN, "jaccard_knn": _KNN, "cknna": _KNN,
    "ridge_r": {"folds": 5, "seed": 0}, "pls_r": {"components": 25, "folds": 5, "seed": 0},
}
_SYMMETRIC = {name for name, measure in MEASURES.items() if measure.symmetric}
# Least stimuli per measure: unbiased estimators need 4; k-fold encoding needs 2 per fold.
_MIN_ROWS = {"cka_debiased": 4, "cknna": 4, "ridge_r": 4, "pls_r": 4}

_Prepare = Callable[[torch.Tensor, str, dict], Any]
_Pair = Callable[[str, Any, Any, dict], float]
_ROUTES: dict[str, tuple[_Prepare, _Pair]] = {
    "features": (prepare_features, pair_features),
    "cca": (prepare_cca, pair_cca),
    "pwcca": (prepare_pwcca, pair_pwcca),
    "procrustes": (prepare_procrustes, pair_procrustes),
    "shape": (prepare_shape, pair_shape),
    "permutation": (prepare_permutation, pair_permutation),
    "regression": (prepare_regression, pair_regression),
    "knn": (prepare_knn, pair_knn),
    "encoding": (prepare_encoding, pair_encoding),
}
_FAMILY = {
    "cka_rbf": "kernel", "dcor": "kernel", "cca_mean": "cca", "svcca": "cca", "cca_rho_top": "cca",
    "pwcca": "pwcca", "procrustes": "procrustes", "shape_alpha": "shape", "permutation": "permutation",
    "linear_reg": "regression", "mutual_knn": "knn", "jaccard_knn": "knn", "cknna": "knn",
    "ridge_r": "encoding", "pls_r": "encoding",
}


def _route(measure: str, n: int, widths_a: list[int], widths_b: list[int]) -> str:
    if measure in _FAMILY:
        return _FAMILY[measure]
    # Linear family: per-pair ||Xc'Yc||^2 costs N Da Db; the Gram route costs N^2 D per layer
    # once, then N^2 per pair. Take the cheaper (the feature form when D < N).
    features = n * (sum(da * db for da in widths_a for db in widths_b)
                    + sum(d * d for d in widths_a + widths_b))
    gram = n * n * (sum(widths_a) + sum(widths_b) + len(widths_a) * len(widths_b))
    return "kernel" if gram < features else "features"


def _check_measure(measure: str, options: dict) -> dict:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid measures: {', '.join(sorted(MEASURES))}")
    defaults = _OPTIONS.get(measure, {})
    unknown = set(options) - set(defaults)
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise ValueError(
            f"measure {measure!r} takes no option {', '.join(sorted(unknown))}; its options: {allowed}"
        )
    resolved = {**defaults, **options}
    if "threshold" in resolved and not (math.isfinite(resolved["threshold"]) and resolved["threshold"] > 0):
        raise ValueError(f"threshold must be a positive number, got {resolved['threshold']!r}")
    if "keep" in resolved and not 0 < resolved["keep"] <= 1:
        raise ValueError(f"keep must be a variance fraction in (0, 1], got {resolved['keep']!r}")
    if "alpha" in resolved:
        check_alpha(resolved["alpha"])
    for name in ("k", "folds", "seed", "components"):  # against N too, once the data are read
        if name in resolved and not (isinstance(resolved[name], numbers.Real) and math.isfinite(resolved[name])
                                     and float(resolved[name]).is_integer() and resolved[name] >= 0):
            raise ValueError(f"{name} must be a whole number, got {resolved[name]!r}")
    return resolved


def _as_layer(X: Any, name: str, measure: str, dtype: Any, device: Any) -> torch.Tensor:
    tensor = as_matrix(X, name, dtype=dtype, device=device, min_rows=_MIN_ROWS.get(measure, 3))
    check_not_constant(tensor, name)
    return tensor


def _grid(measure: str, mats_a: list, mats_b: list | None, options: dict,
          should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """All pairs (a, b); ``mats_b=None`` means the same layers on both sides. ``should_stop`` is
    asked before each layer is prepared and each pair formed (``Cancelled`` when it says so)."""
    with one_blas_thread():
        return _grid_pairs(measure, mats_a, mats_b, options, should_stop)


def _prepared(prepare: _Prepare, mats: list, measure: str, options: dict, should_stop) -> list:
    states = []
    for m in mats:
        stop_if_asked(should_stop)
        states.append(prepare(m, measure, options))
    return states


def _grid_pairs(measure: str, mats_a: list, mats_b: list | None, options: dict, should_stop=None) -> np.ndarray:
    same = mats_b is None
    mats_b = mats_a if same else mats_b
    route = _route(measure, mats_a[0].shape[0], [m.shape[1] for m in mats_a], [m.shape[1] for m in mats_b])
    if route == "kernel":
        states_a = _prepared(prepare_kernel, mats_a, measure, options, should_stop)
        states_b = states_a if same else _prepared(prepare_kernel, mats_b, measure, options, should_stop)
        grid = kernel_grid(states_a, states_b, measure)
    else:
        prepare, pair = _ROUTES[route]
        states_a = _prepared(prepare, mats_a, measure, options, should_stop)
        states_b = states_a if same else _prepared(prepare, mats_b, measure, options, should_stop)
        grid = _pair_grid(measure, pair, states_a, states_b, options, same, should_stop)
    low, high = MEASURES[measure].range
    return np.clip(grid, low, high)


def _pair_grid(measure: str, pair: _Pair, states_a: list, states_b: list, options: dict, same: bool,
               should_stop=None) -> np.ndarray:
    """Every pair of prepared layers (``same``: the same layers on both sides, a symmetric
    measure formed for one triangle), unclipped."""
    grid = np.empty((len(states_a), len(states_b)))
    mirror = same and measure in _SYMMETRIC
    for i, a in enumerate(states_a):
        for j, b in enumerate(states_b):
            if mirror and j < i:
                grid[i, j] = grid[j, i]
            else:
                stop_if_asked(should_stop)
                grid[i, j] = pair(measure, a, b, options)
    return grid


def similarity(
    X: Any,
    Y: Any,
    measure: str = "cka_linear",
    dtype: Any = None,
    device: str | torch.device | None = None,
    **options: float,
) -> float:
    """Similarity (or distance) of two representations of the same stimuli.

    Parameters
    ----------
    X, Y : array or tensor, shapes (N stimuli, D_x features) and (N, D_y)
        Activations for the same N >= 3 stimuli (N >= 4 for ``cka_debiased``, ``cknna``,
        ``ridge_r`` and ``pls_r``), same order, finite,
        not constant across all stimuli. Widths may differ.
    measure : str
        A key of ``MEASURES``, which says for each whether it is a similarity (higher = more
        alike) or a distance (lower = more alike), its range and invariances: the kernel family
        ``cka_linear``, ``cka_debiased``, ``cka_rbf``, ``rv``, ``rv2``, ``dcor``; the CCA family
        ``cca_mean``, ``svcca``, ``pwcca``, ``cca_rho_top``, ``linear_reg``; the shape metrics
        ``procrustes``, ``shape_alpha``, ``permutation`` (distances in radians); the k-NN family
        ``mutual_knn``, ``jaccard_knn``, ``cknna``; the encoding family ``ridge_r``, ``pls_r``.
        ``pwcca``, ``linear_reg``, ``ridge_r`` and ``pls_r`` are not symmetric (``X`` predicts
        ``Y``; swap the arguments for the reverse).
    dtype : float32 (default) or float64
        Precision of the data and GEMMs; reductions and small factorisations are float64.
    device : str or torch.device, optional
        Default CUDA when available, else the CPU.
    **options
        ``threshold`` (``cka_rbf``, default 1.0): kernel width as a multiple of the median
        distance. ``keep`` (``svcca``, default 0.99): variance fraction kept on each side.
        ``alpha`` (``shape_alpha``, default 0.5, in [0, 1]): 1 = procrustes, 0 = fully whitened.
        ``k`` (``mutual_knn``, ``jaccard_knn``, ``cknna``, default 10, below N): neighbours.
        ``folds`` (default 5, 2 to N/2) and ``seed`` (default 0) (``ridge_r``, ``pls_r``): the
        cross-validation folds; ``components`` (``pls_r``, default 25, clipped to the rank).

    Notes
    -----
    ``pwcca`` reproduces google/svcca ``compute_pwcca``, whose canonical directions add the
    neuron means back before the projection weights are taken: the value then depends on the
    signs LAPACK gives the singular vectors (arbitrary) and, where canonical correlations are
    close, on the directions within their near-degenerate subspace. We use numpy's LAPACK SVD as
    that code does. The value is therefore sensitive to rounding: on the digits zoo's layers
    (701 pairs) float32 results differ from the float64 reference by 2e-3 in the median (up to
    0.17); with ``dtype=float64`` by 5e-13 in the median (up to 0.03 where a sign flips). Pass
    ``dtype=float64`` to reproduce published PWCCA values. It is invariant to scaling X only up
    to such flips.

    Returns
    -------
    float
        ``pwcca`` weighs by ``X``'s neurons when ``D_x <= D_y`` (else ``Y``'s), so it is not
        symmetric; ``linear_reg``, ``ridge_r`` and ``pls_r`` score X predicting Y
        (``MEASURES[m].symmetric`` says which).
    """
    options = _check_measure(measure, options)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    Xt = _as_layer(X, "X", measure, dtype, device)
    Yt = _as_layer(Y, "Y", measure, dtype, device)
    check_same_stimuli(Xt, Yt)
    return float(_grid(measure, [Xt], [Yt], options)[0, 0])


def layer_grid(
    acts_a: Mapping[str, Any],
    acts_b: Mapping[str, Any],
    measure: str = "cka_linear",
    dtype: Any = None,
    device: str | torch.device | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: float,
) -> np.ndarray:
    """``measure`` between every layer of ``acts_a`` and every layer of ``acts_b``.

    Parameters
    ----------
    acts_a, acts_b : dict layer name -> array or tensor (N stimuli, D_l features)
        The same N stimuli, in the same order, in every layer. Pass the same dict twice for a
        network's self-similarity: its layers are then prepared once and symmetric measures
        computed for one triangle.
    measure, dtype, device, **options
        As in ``similarity``.
    should_stop : callable, optional
        Asked before each layer is prepared and each pair is formed; when it returns True,
        ``compute.errors.Cancelled`` is raised (a job's cancel flag).

    Returns
    -------
    np.ndarray, shape (L_A, L_B), float64
        Entry (i, j) equals ``similarity(acts_a[i-th name], acts_b[j-th name], measure)``; rows
        and columns follow the dicts' order. Each layer is prepared once (its centred kernel,
        feature factor or whitened basis), then every pair is formed from those.
    """
    options = _check_measure(measure, options)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    mats_a = _layers(acts_a, "acts_a", measure, dtype, device)
    mats_b = None if acts_b is acts_a else _layers(acts_b, "acts_b", measure, dtype, device)
    if mats_b is not None:
        check_same_stimuli(mats_a[0], mats_b[0], ("acts_a's layers", "acts_b's layers"))
    return _grid(measure, mats_a, mats_b, options, should_stop)


def _layers(acts: Mapping[str, Any], name: str, measure: str, dtype: Any, device: Any) -> list:
    if not isinstance(acts, Mapping) or not acts:
        raise ValueError(f"{name} must be a non-empty dict of layer name -> (N x D) activations")
    mats = [_as_layer(X, f"{name}[{layer!r}]", measure, dtype, device) for layer, X in acts.items()]
    names = list(acts)
    for layer, mat in zip(names[1:], mats[1:]):
        check_same_stimuli(mats[0], mat, (f"{name}[{names[0]!r}]", f"{name}[{layer!r}]"))
    return mats
