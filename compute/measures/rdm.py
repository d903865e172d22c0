"""Representational dissimilarity matrices: (N stimuli x D features) activations -> (N x N) RDM.

Every method is one GEMM of centred or normalised patterns, computed in row blocks written
straight into the (host) result, so peak memory stays near the size of the output itself.

On the CPU only the GEMMs use torch's threads; the O(N D) and O(N^2) passes around them run in
numpy. On a shared 2-core machine each multi-threaded torch pass waits for a core held by
another process, and the dozen such passes of a small RDM cost more than its GEMM.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np
import torch

from compute.measures.numerics import column_means
from compute.measures.registry import RDM_METHODS, REPEATED_RDM_METHODS
from compute.measures.validate import (
    listed,
    as_matrix,
    resolve_device,
    resolve_dtype,
)


# Entries of one (rows x columns) block of the Gram matrix. Bounds the working memory of
# rdm() beyond its output (~64 MiB in float32); tests lower it to exercise the blocking.
BLOCK_ELEMENTS = 1 << 24

# Rows per block at most: each block also computes its (rows x rows) lower triangle, which is
# thrown away; 512 rows keep that waste small and the GEMM near its peak rate. Smaller blocks
# would waste less, but each GEMM call waits for both threads: on a shared machine four calls
# of N = 1,000 took twice as long as two.
_MAX_ROWS = 512

# Entries per chunk of the host-side pattern passes: their float64 temporaries stay in cache.
_CACHE_ELEMENTS = 1 << 16

# RDMs of at most this many stimuli (on the CPU) take one symmetric rank-k update of the
# patterns (BLAS syrk: the lower triangle only, half a GEMM's flops) from numpy's BLAS, then
# 1 - r or |z_i|^2 + |z_j|^2 - 2 z_i.z_j in place: no torch passes around it.
SYRK_ROWS = 2048

# Below this fraction of |x_i|^2 + |x_j|^2 the norm trick loses most digits of a squared
# distance to cancellation; those (rare: near-duplicate stimuli) entries are recomputed directly.
_CANCELLATION = {torch.float32: 1e-3, torch.float64: 1e-7}


def rdm(
    X: Any,
    method: str = "correlation",
    condensed: bool = False,
    dtype: Any = None,
    device: str | torch.device | None = None,
    noise: Any = None,
) -> np.ndarray:
    """Representational dissimilarity matrix of the stimuli in ``X``.

    Parameters
    ----------
    X : array or tensor, shape (N stimuli, D features)
        Activations, N >= 3, finite.
    method : {"correlation", "cosine", "euclidean", "sqeuclidean", "spearman", "crossnobis", "mahalanobis"}
        ``correlation`` = 1 - Pearson r between patterns, ``cosine`` = 1 - cosine similarity,
        ``spearman`` = 1 - Pearson r between the patterns' average ranks over features.
        ``crossnobis`` takes repeated measurements X (R >= 2, N, D) and ``mahalanobis`` (N, D)
        or (R, N, D), with ``noise`` a (D, D) precision, ``"shrinkage"`` or None (identity):
        see :mod:`compute.measures.crossnobis`.
    condensed : bool
        Return the upper triangle in ``scipy.spatial.distance.squareform`` order instead.
    dtype : float32 (default) or float64
        Precision of the GEMM and of the result; means and norms are always summed in float64.
    device : str or torch.device, optional
        Where to compute; default CUDA when available, else the CPU.

    Returns
    -------
    np.ndarray
        (N, N) symmetric with an exactly zero diagonal, or (N*(N-1)/2,) condensed.
        A distance: 0 = identical patterns, higher = more dissimilar. Range [0, 2] for the
        correlation-type methods, [0, inf) for the Euclidean ones.

    Raises
    ------
    ValueError
        NaN/inf rows, N < 3, non-2-D input, constant patterns (correlation, spearman) or
        all-zero patterns (cosine), naming the stimuli.
    """
    if method in REPEATED_RDM_METHODS:
        from compute.measures.crossnobis import crossnobis_rdm, mahalanobis_rdm

        from_repeats = crossnobis_rdm if method == "crossnobis" else mahalanobis_rdm
        values = from_repeats(X, noise=noise, dtype=dtype, device=device)
        return values if condensed else _square(values)
    if noise is not None:
        raise ValueError(f"noise applies to {sorted(REPEATED_RDM_METHODS)}, not to {method!r}")
    if method not in RDM_METHODS:
        raise ValueError(f"unknown RDM method {method!r}; choose one of "
                         f"{sorted(RDM_METHODS) + sorted(REPEATED_RDM_METHODS)}")
    torch_dtype = resolve_dtype(dtype)
    X = as_matrix(X, "X", dtype=torch_dtype, device=resolve_device(device))
    n, d = X.shape
    syrk = X.device.type == "cpu" and n <= SYRK_ROWS and n * n <= BLOCK_ELEMENTS
    A, B, sq_norms = _augmented_patterns(X, method, augment=not syrk)
    np_dtype = np.float64 if torch_dtype == torch.float64 else np.float32
    out = np.empty(n * (n - 1) // 2 if condensed else (n, n), dtype=np_dtype)
    if not condensed:
        out.fill(0)
    if syrk:
        blocks = [(0, n)]
    else:
        blocks, syrk = list(_row_blocks(n)), False
        work = torch.empty(max((stop - start) * (n - start) for start, stop in blocks),
                           dtype=X.dtype, device=X.device)
    offset = 0
    for start, stop in blocks:
        if syrk:
            values = _syrk_block(B, d, sq_norms, method)
        else:
            values = _dissimilarity_block(A, B, d, sq_norms, start, stop, method, work)
        if condensed:
            # Row i of the upper triangle is one contiguous run of the condensed vector.
            for row in range(stop - start):
                length = n - start - row - 1
                out[offset:offset + length] = values[row, row + 1:]
                offset += length
        else:
            # Write the upper part, then its transpose: symmetry is exact by construction.
            values = np.triu(values, 1)
            out[start:stop, start:] = values
            out[start:, start:stop] += values.T
    return out


def _square(condensed: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import squareform

    return squareform(condensed, checks=False)


def _row_blocks(n: int) -> Iterator[tuple[int, int]]:
    """Row ranges whose (rows x remaining columns) block holds about BLOCK_ELEMENTS entries."""
    start = 0
    while start < n:
        stop = min(n, start + max(1, min(_MAX_ROWS, BLOCK_ELEMENTS // (n - start))))
        yield start, stop
        start = stop


def _row_chunks(n: int, width: int, elements: int) -> Iterator[slice]:
    rows = max(1, min(elements, BLOCK_ELEMENTS) // max(1, width))
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))


def _host(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.cpu().numpy()


def _augmented_patterns(X: torch.Tensor, method: str, augment: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """(A, B, squared norms): one GEMM A[i] . B[j] gives the dissimilarities of a block of pairs.

    Correlation-type methods: A = B = z, the unit-norm (centred) patterns, so A[i] . B[j] is the
    correlation r_ij and the dissimilarity 1 - r_ij. Euclidean methods: z are the patterns with
    their columns centred, and the norm terms ride along as extra columns, A = [-2z, |z|^2, 1],
    B = [z, 1, |z|^2], so that A[i] . B[j] is the squared distance itself. Zero columns pad the
    width to a multiple of 16 (aligned rows); ``B[:, :D]`` holds z. Each row chunk is centred and
    normed in float64, then rounded to X's dtype. The squared norms (float64, host) are those of
    the centred patterns (Euclidean methods; None for the others). Without ``augment`` (the syrk
    route) B is z alone, contiguous, and A is None.
    Raises ``ValueError`` naming the patterns the method cannot normalise.
    """
    n, d = X.shape
    euclidean = method in ("euclidean", "sqeuclidean")
    width = -(-(d + 2 * euclidean) // 16) * 16 if augment else d
    B = torch.empty(n, width, dtype=X.dtype, device=X.device)
    # One formula for both: numpy arrays on the CPU (see the module docstring), tensors elsewhere.
    host = X.device.type == "cpu"
    Xv, Bv = (X.numpy(), B.numpy()) if host else (X, B)
    xp = np if host else torch
    Z = Bv[:, :d]
    Bv[:, d:] = 0
    if euclidean:
        # Centring the columns changes no distance but shrinks the norms, and with them the
        # cancellation error of |x|^2 + |y|^2 - 2 x.y.
        mean = column_means(Xv) if host else Xv.sum(0, dtype=torch.float64) / n
    if euclidean and augment:
        A = torch.empty_like(B)
        Av = A.numpy() if host else A
    sq_norms, means = np.empty(n), np.zeros(n)
    # Ranking sorts whole rows in threads: it takes large chunks.
    small = host and method != "spearman"
    for rows in _row_chunks(n, d, _CACHE_ELEMENTS if small else BLOCK_ELEMENTS):
        if method == "spearman":
            chunk = rank_rows(X[rows])
            chunk = chunk.numpy() if host else chunk
        else:
            chunk = Xv[rows].astype(np.float64) if host else Xv[rows].to(torch.float64, copy=True)
        if euclidean:
            chunk -= mean
        elif method != "cosine":
            row_means = chunk.mean(1)
            chunk -= row_means[:, None]
            means[rows] = _host(row_means)
        sq = xp.einsum("ij,ij->i", chunk, chunk)
        sq_norms[rows] = _host(sq)
        if not euclidean:
            with np.errstate(divide="ignore", invalid="ignore"):  # bad patterns are named below
                chunk *= 1.0 / xp.sqrt(sq)[:, None]
        Z[rows] = chunk
        if euclidean and augment:  # -2z while the chunk is in cache (x2 is exact: the same rounding as z)
            Av[rows, :d] = -2.0 * chunk
    if not euclidean:
        _check_patterns(X, sq_norms, means, method)
        return (B if augment else None), B, None
    if not augment:
        return None, B, sq_norms
    Av[:, d + 2:] = 0
    Av[:, d] = Bv[:, d + 1] = sq_norms if host else torch.from_numpy(sq_norms).to(A)
    Av[:, d + 1] = Bv[:, d] = 1.0
    return A, B, sq_norms


def _check_patterns(X: torch.Tensor, sq: np.ndarray, means: np.ndarray, method: str) -> None:
    """Name the constant (correlation, spearman) or all-zero (cosine) patterns of ``X``.

    ``sq``, ``means``: the patterns' squared norms after centring, and their means. A constant
    float32 row centres to exact zeros; a constant float64 row may keep a rounding residue of
    its mean, so rows with a norm that small are candidates, checked exactly.
    """
    if method == "cosine":
        zero = np.flatnonzero(sq == 0)
        if len(zero):
            raise ValueError(
                f"X has all-zero activation patterns (stimuli {listed(zero)}); cosine "
                "distance is undefined for them: drop those stimuli or use a euclidean method"
            )
        return
    candidates = np.flatnonzero(sq <= 1e-20 * X.shape[1] * means * means)
    if len(candidates):
        values = _host(X[torch.from_numpy(candidates).to(X.device)])
        constant = candidates[values.max(axis=1) == values.min(axis=1)]
        if len(constant):
            raise ValueError(
                f"X has {len(constant)} constant activation patterns (stimuli {listed(constant)}); "
                f"{method} distance is undefined for them: drop those stimuli, pick another layer, "
                "or use a euclidean method"
            )


def _syrk_block(B: torch.Tensor, d: int, sq_norms: np.ndarray | None, method: str) -> np.ndarray:
    """All dissimilarities of the host patterns ``B`` (N x d, contiguous: ``_augmented_patterns``
    without ``augment``), as ``_dissimilarity_block`` gives them for one block of all rows: only
    entries above the diagonal are meaningful. One BLAS syrk forms the lower triangle of Z Z' in
    column-major order, which read row-major is the upper triangle. Z' is handed over as the
    column-major d x N matrix it already is (no copy), and the syrk takes BLAS's threads: on an
    idle machine two threads were 1.2-1.6x faster than one at N = 500-2,000 (and no slower under
    load), unless the caller holds ``one_blas_thread`` (a layer grid)."""
    import scipy.linalg.blas as blas

    Z = B.numpy()
    syrk = blas.ssyrk if Z.dtype == np.float32 else blas.dsyrk
    G = syrk(1.0 if sq_norms is None else -2.0, Z.T, trans=1, lower=1).T  # C-ordered upper triangle
    if sq_norms is None:  # correlation-type: G holds r_ij
        np.clip(G, -1.0, 1.0, out=G)
        return np.subtract(1.0, G, out=G)
    G += sq_norms.astype(G.dtype)[:, None]
    G += sq_norms.astype(G.dtype)[None, :]
    return _finish_squared(G, B, d, sq_norms, 0, method)


def _dissimilarity_block(
    A: torch.Tensor, B: torch.Tensor, d: int, sq_norms: np.ndarray | None, start: int, stop: int,
    method: str, work: torch.Tensor,
) -> np.ndarray:
    """Dissimilarities of rows start:stop against rows start:N, shape (stop-start, N-start), on the host.

    ``A``, ``B``, ``sq_norms`` from ``_augmented_patterns`` over patterns of width ``d``;
    ``work`` is scratch for the GEMM.
    Entries on and below the block's diagonal (column j <= row i) are not meaningful.
    """
    rows, cols = stop - start, A.shape[0] - start
    block = torch.mm(A[start:stop], B[start:].T, out=work[:rows * cols].view(rows, cols))
    values = _host(block)
    if sq_norms is None:
        np.clip(values, -1.0, 1.0, out=values)
        return np.subtract(1.0, values, out=values)
    return _finish_squared(values, B, d, sq_norms, start, method)


def _finish_squared(values: np.ndarray, B: torch.Tensor, d: int, sq_norms: np.ndarray, start: int,
                    method: str) -> np.ndarray:
    """Squared distances of rows start: (a block; entries above its diagonal meaningful) made
    exact where cancellation lost them, then square-rooted for ``euclidean``."""
    # Near-duplicate stimuli lose their squared distance to cancellation: one cheap test
    # against the largest possible threshold, then the exact test on the few candidates.
    np.fill_diagonal(values, np.inf)
    cancellation = _CANCELLATION[B.dtype]
    stop = start + values.shape[0]
    bound = cancellation * (sq_norms[start:stop].max() + sq_norms[start:].max())
    if values.min() < bound:
        i, j = np.nonzero(values < bound)
        keep = (j > i) & (values[i, j] < cancellation * (sq_norms[start + i] + sq_norms[start + j]))
        i, j = i[keep], j[keep]
        Z = B[:, :d]
        step = max(1, BLOCK_ELEMENTS // d)
        for first in range(0, len(i), step):
            left = torch.from_numpy(start + i[first:first + step]).to(Z.device)
            right = torch.from_numpy(start + j[first:first + step]).to(Z.device)
            diff = Z[left].double() - Z[right].double()
            values[i[first:first + step], j[first:first + step]] = _host((diff * diff).sum(dim=1))
        np.maximum(values, 0.0, out=values)  # otherwise every entry is at least the bound
    return np.sqrt(values, out=values) if method == "euclidean" else values


def rank_rows(X: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based, ties share their mean rank) within each row of a 2-D tensor.

    Same as ``scipy.stats.rankdata(X, axis=1)``. On the CPU each row is sorted once
    (``sorted_order``), rows in parallel threads; elsewhere one batched torch sort.
    Returns float64.
    """
    if X.device.type != "cpu":
        return _rank_rows_torch(X)
    values = X.detach().numpy()
    out = np.empty(values.shape, dtype=np.float64)

    def rank_one(row: int) -> None:
        order, new_group = sorted_order(values[row])
        out[row, order] = average_ranks(new_group)

    for_each_row(rank_one, values.shape[0])
    return torch.from_numpy(out)


def for_each_row(fn: Callable[[int], None], rows: int) -> None:
    """``fn(row)`` for every row, in as many threads as torch uses (numpy sorts drop the GIL)."""
    threads = min(rows, torch.get_num_threads())
    if threads <= 1:
        for row in range(rows):
            fn(row)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, range(rows)))


def sorted_order(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, new_group)`` of a 1-D array: a stable ascending argsort, and where a run of equal values starts.

    float32 values are sorted as one int64 key (order-preserving value bits, then the
    position), which is faster than an argsort; float64 values that are all float32 numbers
    take the same path, any others a stable argsort.
    """
    k = v.shape[0]
    if v.dtype != np.float32:
        v32 = v.astype(np.float32)
        if not np.array_equal(v32, v) or k >= 1 << 32:
            order = np.argsort(v, kind="stable")
            ordered = v[order]
            new_group = np.empty(k, dtype=bool)
            new_group[:1] = True
            np.not_equal(ordered[1:], ordered[:-1], out=new_group[1:])
            return order, new_group
        v = v32
    bits = (v + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into 0.0: one tie group
    bits = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)
    keys = np.sort(np.bitwise_or(np.left_shift(bits, 32, out=bits), np.arange(k, dtype=np.int64), out=bits))
    order = (keys & 0xFFFFFFFF).astype(np.intp)
    codes = keys >> 32
    new_group = np.empty(k, dtype=bool)
    new_group[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=new_group[1:])
    return order, new_group


def average_ranks(new_group: np.ndarray) -> np.ndarray:
    """float64 average ranks (1-based) of sorted values whose tie runs start at ``new_group``."""
    k = new_group.shape[0]
    starts = np.flatnonzero(new_group)
    if len(starts) == k:
        return np.arange(1.0, k + 1.0)
    sizes = np.diff(np.append(starts, k))
    return np.repeat(starts + (sizes + 1) / 2.0, sizes)


def _rank_rows_torch(X: torch.Tensor) -> torch.Tensor:
    m, k = X.shape
    values, order = torch.sort(X, dim=1, stable=True)
    starts_group = torch.ones_like(values, dtype=torch.bool)
    starts_group[:, 1:] = values[:, 1:] != values[:, :-1]
    group = torch.cumsum(starts_group.flatten(), 0) - 1  # every row starts a new group
    counts = torch.bincount(group)
    ends = torch.cumsum(counts, 0)
    first = ends - counts
    mean_position = (first + ends - 1).double() / 2.0 - (first // k) * k  # within its row
    ranks_sorted = (mean_position + 1.0)[group].view(m, k)
    return torch.empty_like(ranks_sorted).scatter_(1, order, ranks_sorted)
