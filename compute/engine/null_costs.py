"""What a layer grid's permutation null costs, route by route (compute/measures/nulls.py): the
bytes it adds and its work in FLOPs, for the Compute gate's estimate (compute/engine/kinds.py
turns FLOPs into seconds).

Each route's count follows what it does per permutation: the kernel route gathers each permuted
N x N kernel and meets the A side in one GEMM; the row routes gather B's prepared rows (float64)
and form one cross product per A layer, then factorise each small cross matrix (an SVD for
Procrustes and the shape metric, whitening and an eigensolver for the CCA family, a full SVD and
the projection weights for PWCCA, an assignment for the permutation metric); the k-NN family
relabels and sorts B's neighbour sets; ridge_r forms X'Y and the shrunken predictions of every
fold for every permutation; pls_r prepares B and fits every pair again per permutation. The
constants are the time of small LAPACK calls and memory-bound passes in FLOPs at the gate's rate,
set from CPU times of 3 x 3 grids (widths 32, 128, 256) at N = 500 on this project's two shared
cores (a busy machine's wall time is several times more).
"""
from __future__ import annotations

import math

from compute.measures.registry import KERNEL_NULL_MEASURES

_F32 = 4
_F64 = 8
# Chunks of permutations hold about this many gathered elements (compute/measures/nulls.py).
NULL_CHUNK = 1 << 24
# A permuted kernel's entry (two row gathers, memory-bound): ~20 ns measured on two busy cores.
_GATHER_FLOPS = 200
# A gathered float64 row element of a row route, and of ridge_r's permuted targets.
_ROW_GATHER_FLOPS = 40
# A small dense factorisation (SVD, eigensolver, triangular solve) of an m x m matrix from the
# host's LAPACK: about this many times m^3 FLOPs' time, and at least a Python call's.
_LAPACK = 6
_SAMPLE_FLOPS = 2e5
# One Python call of the per-permutation loop (pls_r: prepare, then each pair).
_CALL_FLOPS = 1e8
# A k-NN neighbour entry: gathered, relabelled and sorted (per B layer), then searched and
# matched against each A layer (torch's small sorts and searches: ~300 ns an entry).
_KNN_FLOPS = 3000
# ridge_r's GEMMs of every fold, measured against their FLOPs at the gate's rate.
_RIDGE_SLOWDOWN = 4
_K = 10
_FOLDS = 5
_ROUTES = {"procrustes": "svd", "shape_alpha": "svd", "cca_mean": "cca", "svcca": "cca", "cca_rho_top": "cca",
           "pwcca": "pwcca", "permutation": "assignment", "linear_reg": "regression", "mutual_knn": "knn",
           "jaccard_knn": "knn", "cknna": "knn", "ridge_r": "ridge"}


def _factorisation(m: int) -> float:
    return _LAPACK * m ** 3 + _SAMPLE_FLOPS


def _sample_flops(route: str, n: int, da: int, db: int) -> float:
    """One permutation of one (A, B) pair of a batched row, k-NN or ridge route."""
    if route == "knn":
        return _KNN_FLOPS * n * _K
    if route == "ridge":  # X'Y, U'Y per fold and the predictions: float32 GEMMs a quarter as fast
        ka, r = min(n, da), min(da, n - n // _FOLDS)
        return _RIDGE_SLOWDOWN * (2 * n * db * (ka + r) + _FOLDS * 2 * ka * r * db + 10 * n * db)
    # the permutation metric's sides, and linear_reg's predicted side, are the centred data
    ka = da if route == "assignment" else min(n, da)
    kb = db if route in ("assignment", "regression") else min(n, db)
    small, large = min(ka, kb), max(ka, kb)
    cross = 4 * n * ka * kb  # a float64 GEMM
    if route == "svd":
        return cross + _factorisation(small) * large / small
    if route == "cca":  # two triangular solves and an eigensolver of the smaller Gram
        return cross + _factorisation(small) + 2 * small * large * large
    if route == "pwcca":  # a full SVD, then the projection weights (a D x D Cholesky)
        return cross + 2 * _factorisation(small) * large / small + _factorisation(min(da, db))
    if route == "assignment":  # linear_sum_assignment: ~m^3 / 10 of an SVD's time, measured
        return cross + _factorisation(large) / 10
    return cross + 2 * ka * ka * db  # regression: one triangular solve


def _b_flops(route: str, n: int, db: int) -> float:
    """One permutation of one B layer's shared work (the gather, the relabelling)."""
    if route == "knn":
        return _KNN_FLOPS * n * _K * math.log2(_K)
    rows = db if route in ("assignment", "regression", "ridge") else min(n, db)
    return _ROW_GATHER_FLOPS * n * rows


def grid_null(n: int, widths: list[int], la: int, measure: str, n_perm: int,
              grid_flops: float) -> tuple[int, float]:
    """(bytes, FLOPs) a grid's permutation null adds to the grid itself: ``widths`` the A
    layers' (the first ``la``) and B layers' widths over ``n`` stimuli, ``grid_flops`` the
    grid's own work (each layer is prepared again once; pls_r repeats it per permutation)."""
    held = la * (len(widths) - la) * n_perm * _F64 + n_perm * n * 8
    widths_a, widths_b = widths[:la], widths[la:]
    if measure in KERNEL_NULL_MEASURES:
        chunk = min(NULL_CHUNK, n_perm * n * n)
        held += 2 * la * n * n * _F32 + n * n * _F64 + chunk * (_F32 + _F64 + 8)
        return held, sum(2 * n * n * d for d in widths) + n_perm * len(widths_b) * n * n * (2 * la + _GATHER_FLOPS)
    route = _ROUTES.get(measure)
    if route is None:  # prepared again per permutation
        calls = len(widths_b) * (1 + la)
        return held + NULL_CHUNK * _F32, n_perm * (grid_flops + calls * _CALL_FLOPS)
    held += NULL_CHUNK * (_F64 if route != "ridge" else (_FOLDS + 2) * _F32)
    return held, grid_flops + n_perm * sum(_b_flops(route, n, db) + sum(
        _sample_flops(route, n, da, db) for da in widths_a) for db in widths_b)
