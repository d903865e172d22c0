"""Permutation nulls of the direct similarity indices: how a score compares with chance.

The null hypothesis: the two representations are unrelated, so which stimulus of Y goes with
which stimulus of X does not matter. Each null sample permutes the stimuli (rows) of Y with a
seeded permutation and recomputes the measure. A score is then reported with its

- ``p_value``: (1 + #{null at least as extreme}) / (1 + n_perm), one-sided (higher for
  similarities, lower for distances);
- ``z``: (estimate - mean(null)) / std(null);
- ``calibrated``: (estimate - mean(null)) / (best - mean(null)), best = 1 for similarities (so
  chance is 0 and a representation with itself is 1); for distances the same on the negated
  scale, best = 0.

Kernel measures (linear, debiased and RBF CKA, RV, RV2, distance correlation) permute each Y layer's centred kernel
once per permutation and meet every X layer in one GEMM (a grid's cells share each side's work).
The others prepare each layer once and permute Y's prepared side, a chunk of permutations at a
time (the gather shared by every X layer):

- the row routes (the CCA family, PWCCA, Procrustes, the shape metrics, linear_reg): their
  prepared side commutes with permuting the stimuli (prepare(P Y) = P prepare(Y), up to a
  rotation of its columns that the pair ignores; PWCCA's weights need only a side's Gram matrix
  and means, which permuting leaves as they are), so a chunk is one gather of Y's prepared rows
  and one batched product with each X layer, then the small (k x k) work per sample (singular
  values, whitening, an assignment for the permutation metric, a triangular solve for R^2);
- the k-NN family: permuting relabels Y's neighbour sets (an index map and a sort of k labels per
  stimulus; no new Gram matrix), unless a tie at a k-th neighbour was broken by the stimuli's
  order (then that layer is prepared again per permutation);
- ridge_r: the permuted targets side by side as the columns of one Y, so each fold's factors of X
  and its GEMMs serve every permutation; each permutation keeps its own GCV choice of alpha.

pls_r alone prepares Y again per permutation: its NIPALS components are fitted to Y (each
weight vector from X_k'Y_k and X deflated by its scores), so beyond the training rows of X
nothing is shared between permutations, and its power iteration (widths over 512) runs a
different number of steps for each.

The model RDM's null (:func:`model_rdm_null`) is the same for RDM comparisons: the stimuli of the
second RDM of each pair are permuted (its rows and columns together), as
``compute.permutation_test`` does. Each RDM is prepared once (ranked, centred and normalised, or
whitened); a stimulus permutation is then an index map on the condensed entries, and one gather
of the whole (M, K) stack and one (M x K)(K x M) GEMM give every pair's null sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch

from compute.errors import stop_if_asked
from compute.measures.condensed import side_from_length
from compute.measures.compare import _check_method, _check_not_constant, prepare, stack_rdms
from compute.measures import knn
from compute.measures.cca import pair_cca, pair_pwcca, regression_values
from compute.measures.cka import check_self, from_alignment, prepare_kernel
from compute.measures.shape import assignment_angle
from compute.measures.encoding import permuted_target, ridge_values
from compute.measures.knn import knn_values
from compute.measures.numerics import crossprod_float64, one_blas_thread
from compute.measures.registry import KERNEL_NULL_MEASURES as KERNEL_MEASURES
from compute.measures.registry import COMPARE_METHODS, MEASURES, NULL_COMPARE_METHODS
from compute.measures.similarity import (
    _ROUTES,
    _as_layer,
    _check_measure,
    _grid,
    _layers,
    _pair_grid,
    _prepared,
    _route,
)
from compute.measures.similarity import layer_grid as _plain_grid
from compute.measures.validate import check_same_stimuli, resolve_device, resolve_dtype
from compute.measures.whitened import WHITENED

_CHUNK_ELEMENTS = 1 << 24
# Routes whose prepared side commutes with permuting the stimuli (see the module's words).
_ROW_ROUTES = ("procrustes", "shape", "cca", "pwcca", "permutation", "regression")


@dataclass(frozen=True)
class GridNull:
    """A layer grid with its permutation null per cell: ``values``, ``p``, ``z``, ``calibrated``
    (L_A x L_B) and ``null`` (L_A x L_B x n_perm)."""

    values: np.ndarray
    p: np.ndarray
    z: np.ndarray
    calibrated: np.ndarray
    null: np.ndarray


@dataclass(frozen=True)
class ModelRdmNull:
    """A model RDM with its permutation null per entry: ``values`` (M x M, as
    ``compute.model_rdm``), ``p``, ``z`` and ``calibrated`` (M x M, symmetric, NaN diagonal);
    ``null`` (M(M-1)/2 x n_perm): each pair's comparison (as ``compare_rdms``: a similarity, or
    a distance) under each permutation, pairs in condensed order; ``mean_null`` (M x n_perm):
    each model's mean dissimilarity to the others in each permutation's model RDM."""

    values: np.ndarray
    p: np.ndarray
    z: np.ndarray
    calibrated: np.ndarray
    null: np.ndarray
    mean_null: np.ndarray


def permutations(n: int, n_perm: int, seed: int) -> np.ndarray:
    """(n_perm, n) permutations of the stimuli; permutation s is row s."""
    return np.argsort(np.random.default_rng(seed).random((n_perm, n)), axis=1)


def calibrate(estimate: np.ndarray, null: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, z, calibrated) of estimates against their nulls (last axis), for a ``kind``
    ("similarity" or "distance") measure; see the module's words."""
    estimate = np.asarray(estimate, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    sign = 1.0 if kind == "similarity" else -1.0
    scored, nulls = sign * estimate, sign * null
    slack = 1e-12 * np.maximum(1.0, np.abs(scored))
    extreme = (nulls >= (scored - slack)[..., None]).sum(axis=-1)
    p = (1 + extreme) / (1 + null.shape[-1])
    mean, std = nulls.mean(axis=-1), nulls.std(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, (scored - mean) / std, np.nan)
        best = 1.0 if kind == "similarity" else 0.0
        calibrated = np.where(best - mean != 0, (scored - mean) / (best - mean), np.nan)
    return p, z, calibrated


def _kernel_nulls(states_a: list, mats_b: list, measure: str, perms: np.ndarray, options: dict,
                  should_stop) -> np.ndarray:
    """(L_A, L_B, n_perm): every X layer's kernel against each permuted Y kernel, one GEMM a chunk.

    The permuted kernels are gathered and multiplied at the layers' own precision (float32 by
    default: the gathers are the cost, and float64 doubles it; block sums stay float64), the
    kernels' norms in float64."""
    self_a = np.array([float(crossprod_float64(g, g)) for g in states_a])
    stacked = torch.cat(states_a, dim=1).to(mats_b[0].dtype)  # (N^2, L_A)
    n = perms.shape[1]
    out = np.empty((len(states_a), len(mats_b), len(perms)))
    index = torch.from_numpy(perms).to(stacked.device)
    step = max(1, _CHUNK_ELEMENTS // (n * n))
    for j, Y in enumerate(mats_b):
        K = prepare_kernel(Y, measure, options).reshape(n, n)
        self_b = float(crossprod_float64(K.reshape(-1, 1), K.reshape(-1, 1)))
        check_self(measure, self_b)
        K = K.to(stacked.dtype).contiguous()
        buffer = torch.empty((min(step, len(perms)), n, n), dtype=stacked.dtype, device=stacked.device)
        for start in range(0, len(perms), step):
            stop_if_asked(should_stop)
            p = index[start:start + step]
            for row, order in zip(buffer, p):  # two gathers of rows: 3x faster than one 2-D fancy index
                torch.index_select(K.index_select(0, order), 1, order, out=row)
            permuted = buffer[:len(p)].reshape(len(p), n * n).T
            cross = crossprod_float64(stacked, permuted).cpu().numpy()  # (L_A, chunk)
            out[:, j, start:start + step] = from_alignment(cross / np.sqrt(np.outer(self_a, [self_b])), measure)
    return out


def _factor(state) -> torch.Tensor:
    """A row route's prepared layer as the unpermuted side: its stimulus-indexed factor."""
    if isinstance(state, torch.Tensor):
        return state
    return state.side.F if hasattr(state, "side") else state.F


def _rows(state) -> torch.Tensor:
    """A row route's prepared layer as the permuted side: the rows a permutation gathers
    (linear_reg's predicted side is its centred data)."""
    return state.Yc if hasattr(state, "Yc") else _factor(state)


def _from_cross(route: str, measure: str, a, b, M: np.ndarray) -> np.ndarray:
    """The measure of each (ka x kb) cross product ``M[s]`` of a's and permuted b's factors."""
    if route in ("procrustes", "shape"):  # arccos of the nuclear norm (pair_procrustes)
        return np.arccos(np.clip(np.linalg.svd(M, compute_uv=False).sum(axis=1), -1.0, 1.0))
    if route == "permutation":
        return np.array([assignment_angle(m) for m in M])
    if route == "regression":
        return regression_values(a, b, M)
    pair = pair_pwcca if route == "pwcca" else pair_cca
    return np.array([pair(measure, a, b, {}, m) for m in M])


def _row_family(route: str, measure: str) -> tuple:
    """A row route's batching: Y's prepared rows gathered per permutation, one batched float64
    product with each X layer's factor, then the small k x k work per sample."""
    return (lambda b: _rows(b).numel(),
            lambda b, p: (b, _rows(b)[p].to(torch.float64)),
            lambda a: (a, _factor(a).to(torch.float64).T),
            lambda a, b: _from_cross(route, measure, a[0], b[0], torch.matmul(a[1], b[1]).cpu().numpy()))


def _batched_nulls(states_a: list, states_b: list, family: tuple, perms: torch.Tensor, should_stop) -> np.ndarray:
    """(L_A, L_B, n_perm) from a family's ``(size, permute, side, values)``: each Y layer
    permuted a chunk of permutations at once (``permute(b, perms)``, its work shared by every X
    layer, chunks of about ``_CHUNK_ELEMENTS / size(b)`` permutations) and met with each X layer
    (``values(side(a), batch)``: one value per permutation)."""
    size, permute, side, values = family
    sides_a = [side(a) for a in states_a]
    out = np.empty((len(states_a), len(states_b), len(perms)))
    for j, b in enumerate(states_b):
        step = max(1, _CHUNK_ELEMENTS // max(1, size(b)))
        for start in range(0, len(perms), step):
            stop_if_asked(should_stop)
            batch = permute(b, perms[start:start + step])
            for i, a in enumerate(sides_a):
                out[i, j, start:start + step] = values(a, batch)
    return out


def _family(route: str, measure: str, states_b: list) -> tuple | None:
    """How a route's nulls are batched, or None where Y is prepared again per permutation: pls_r
    (its NIPALS components are fitted to the permuted Y), and k-NN layers whose neighbour sets
    hang on a tie broken by the stimuli's order."""
    if route in _ROW_ROUTES:
        return _row_family(route, measure)
    if route == "knn" and not any(b.ties for b in states_b):
        return (lambda b: b.index.numel(), knn.permuted, lambda a: a,
                lambda a, batch: knn_values(measure, a, batch).cpu().numpy())
    if measure == "ridge_r":
        # the permuted copies of Y and every fold's X'Y of them
        return (lambda b: b.X.numel() * (len(b.bounds) + 1), permuted_target, lambda a: a, ridge_values)
    return None


def _prepared_nulls(mats_a: list, mats_b: list, measure: str, perms: np.ndarray, options: dict,
                    should_stop) -> tuple[np.ndarray, np.ndarray]:
    """The grid (L_A, L_B) and its null (L_A, L_B, n_perm) for the measures whose prepared side
    is not a kernel, from the same prepared layers: permuted in batches (:func:`_batched_nulls`),
    or else (pls_r) Y's side prepared again per permutation."""
    same = mats_b is mats_a
    route = _route(measure, mats_a[0].shape[0], [m.shape[1] for m in mats_a], [m.shape[1] for m in mats_b])
    prepare, pair = _ROUTES[route]
    states_a = _prepared(prepare, mats_a, measure, options, should_stop)
    states_b = states_a if same else _prepared(prepare, mats_b, measure, options, should_stop)
    values = _pair_grid(measure, pair, states_a, states_b, options, same, should_stop)
    family = _family(route, measure, states_b)
    if family is not None:
        index = torch.from_numpy(perms).to(mats_a[0].device)
        return values, _batched_nulls(states_a, states_b, family, index, should_stop)
    out = np.empty((len(mats_a), len(mats_b), len(perms)))
    for s, p in enumerate(perms):
        stop_if_asked(should_stop)
        index = torch.from_numpy(p).to(mats_b[0].device)
        for j, Y in enumerate(mats_b):
            b = prepare(Y.index_select(0, index), measure, options)
            for i, a in enumerate(states_a):
                out[i, j, s] = pair(measure, a, b, options)
    return values, out


def _nulls(mats_a: list, mats_b: list, measure: str, n_perm: int, seed: int, options: dict,
           should_stop) -> tuple[np.ndarray, np.ndarray]:
    """The grid (as ``layer_grid``; ``mats_b is mats_a`` for a network against itself) and its
    null, both clipped to the measure's range."""
    perms = permutations(mats_a[0].shape[0], n_perm, seed)
    with one_blas_thread():
        if measure in KERNEL_MEASURES:
            values = _grid(measure, mats_a, None if mats_b is mats_a else mats_b, options, should_stop)
            states_a = [prepare_kernel(X, measure, options) for X in mats_a]
            null = _kernel_nulls(states_a, mats_b, measure, perms, options, should_stop)
        else:
            values, null = _prepared_nulls(mats_a, mats_b, measure, perms, options, should_stop)
    low, high = MEASURES[measure].range
    return np.clip(values, low, high), np.clip(null, low, high)


def _check_count(n_perm: int) -> None:
    if not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer, got {n_perm!r}")


def activation_null(X: Any, Y: Any, measure: str, n_perm: int = 1000, seed: int = 0, dtype: Any = None,
                    device: Any = None, **options) -> tuple[float, np.ndarray]:
    """``similarity(X, Y, measure)`` and its null (n_perm,): the measure with Y's stimuli permuted."""
    _check_count(n_perm)
    options = _check_measure(measure, options)
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    Xt, Yt = _as_layer(X, "X", measure, dtype, device), _as_layer(Y, "Y", measure, dtype, device)
    check_same_stimuli(Xt, Yt)
    values, null = _nulls([Xt], [Yt], measure, n_perm, seed, options, None)
    return float(values[0, 0]), null[0, 0]


def grid_null(acts_a: Mapping[str, Any], acts_b: Mapping[str, Any], measure: str = "cka_linear",
              n_perm: int = 1000, seed: int = 0, dtype: Any = None, device: Any = None,
              should_stop: Callable[[], bool] | None = None, **options) -> GridNull:
    """``layer_grid(acts_a, acts_b, measure)`` with every cell's permutation null (the same
    ``n_perm`` seeded permutations of the stimuli for every cell) and its p, z and calibrated score."""
    _check_count(n_perm)
    options = _check_measure(measure, options)
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    mats_a = _layers(acts_a, "acts_a", measure, dtype, device)
    mats_b = mats_a if acts_b is acts_a else _layers(acts_b, "acts_b", measure, dtype, device)
    check_same_stimuli(mats_a[0], mats_b[0], ("acts_a's layers", "acts_b's layers"))
    values, null = _nulls(mats_a, mats_b, measure, n_perm, seed, options, should_stop)
    p, z, calibrated = calibrate(values, null, MEASURES[measure].kind)
    return GridNull(values, p, z, calibrated, null)


def layer_grid(acts_a: Mapping[str, Any], acts_b: Mapping[str, Any], measure: str = "cka_linear",
               dtype: Any = None, device: Any = None, should_stop: Callable[[], bool] | None = None,
               null: int | None = None, null_seed: int = 0, **options) -> np.ndarray | GridNull:
    """``compute.layer_grid``: :func:`compute.measures.similarity.layer_grid` (an L_A x L_B array),
    or with ``null=n_perm`` the :class:`GridNull` of :func:`grid_null` (the grid with each cell's
    permutation null, p, z and calibrated score; ``null_seed`` seeds the permutations, so a
    measure's own ``seed`` option, ridge_r's folds, stays its own)."""
    if null is None:
        return _plain_grid(acts_a, acts_b, measure, dtype=dtype, device=device, should_stop=should_stop, **options)
    return grid_null(acts_a, acts_b, measure, n_perm=null, seed=null_seed, dtype=dtype, device=device,
                     should_stop=should_stop, **options)


def permuted_entries(perms: np.ndarray, whitened: bool = False) -> np.ndarray:
    """(n_perm, K) indices: entry k of the condensed RDM with its stimuli permuted by row s of
    ``perms`` (n_perm, n) is entry ``out[s, k]`` of the original; ``whitened`` appends the n
    diagonal entries of a whitened vector (:mod:`compute.measures.whitened`), K + perm."""
    perms = np.atleast_2d(perms)
    n = perms.shape[1]
    rows, cols = np.triu_indices(n, 1)
    pi, pj = perms[:, rows], perms[:, cols]
    lo, hi = np.minimum(pi, pj), np.maximum(pi, pj)
    index = lo * n - lo * (lo + 1) // 2 + hi - lo - 1
    return np.concatenate([index, len(rows) + perms], axis=1) if whitened else index


def model_rdm_null(rdms: Any, method: str = "spearman", n_perm: int = 1000, seed: int = 0, dtype: Any = None,
                   device: Any = None, should_stop: Callable[[], bool] | None = None) -> ModelRdmNull:
    """``compute.model_rdm(rdms, method)`` with each entry's permutation null.

    rdms : (M, K) condensed, (M, N, N) square, or a list of M >= 2 RDMs over the same N stimuli.
    method : one of :data:`NULL_COMPARE_METHODS` (Kendall's taus and manhattan have no batched
        form and are refused). The null hypothesis of entry (i, j): RDMs i and j are unrelated,
        so the pairing of their stimuli does not matter. Each of ``n_perm`` seeded permutations
        of the N stimuli (the same for every entry, seeded by ``seed`` as
        ``compute.permutation_test``) permutes RDM j's rows and columns for i < j; p, z and
        calibrated are those of ``permutation_test(rdms[i], rdms[j], method)``.
    dtype : float32 (default) or float64, of the GEMMs (preparing is float64; euclidean's are
        always float64).
    """
    _check_count(n_perm)
    _check_method(method)
    if method not in NULL_COMPARE_METHODS:
        raise ValueError(f"the model RDM's null is batched only for {', '.join(NULL_COMPARE_METHODS)}; "
                         f"{method!r} has no batched form: choose one of those, or test single pairs "
                         "with compute.permutation_test")
    V = stack_rdms(rdms, "rdms")
    _check_not_constant(V, method, None)
    m, n = V.shape[0], side_from_length(V.shape[1])
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    if method == "euclidean":  # the norm trick cancels digits: float64 GEMMs
        dtype = torch.float64
    P = (V if method == "euclidean" else prepare(V, method)).to(device)
    squares = (P * P).sum(dim=1)
    rows, cols = torch.triu_indices(m, m, 1, device=device)
    estimate = _pair_values(P @ P.T, squares, rows, cols, method)
    perms = permutations(n, n_perm, seed)
    stack = P.to(dtype)
    step = max(1, _CHUNK_ELEMENTS // m)
    null = torch.empty(len(rows), n_perm, dtype=torch.float64, device=device)
    for s, perm in enumerate(perms):
        stop_if_asked(should_stop)
        index = torch.from_numpy(permuted_entries(perm, method in WHITENED)[0]).to(device)
        gram = torch.zeros(m, m, dtype=dtype, device=device)
        for start in range(0, stack.shape[1], step):  # chunks of the entries bound the gathered copy
            gram += stack[:, start:start + step] @ stack.index_select(1, index[start:start + step]).T
        null[:, s] = _pair_values(gram.to(torch.float64), squares, rows, cols, method)
    estimate, null = estimate.cpu().numpy(), null.cpu().numpy()
    kind = COMPARE_METHODS[method].kind
    p, z, calibrated = calibrate(estimate, null, kind)
    dissimilar = (lambda x: 1.0 - x) if kind == "similarity" else (lambda x: x)
    r, c = rows.cpu().numpy(), cols.cpu().numpy()
    incidence = np.zeros((m, len(r)))
    incidence[r, np.arange(len(r))] = incidence[c, np.arange(len(r))] = 1.0 / (m - 1)
    return ModelRdmNull(_square(dissimilar(estimate), r, c, m, 0.0), *(_square(x, r, c, m, np.nan) for x in (p, z, calibrated)),
                        null, incidence @ dissimilar(null))


def _pair_values(gram: torch.Tensor, squares: torch.Tensor, rows, cols, method: str) -> torch.Tensor:
    """The comparison of each pair (rows[t], cols[t]) from the Gram matrix of prepared rows."""
    if method == "euclidean":
        return torch.sqrt(torch.clamp(squares[rows] + squares[cols] - 2 * gram[rows, cols], min=0.0))
    return torch.clamp(gram[rows, cols], -1.0, 1.0)


def _square(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, m: int, diagonal: float) -> np.ndarray:
    out = np.full((m, m), diagonal)
    out[rows, cols] = out[cols, rows] = values
    return out
