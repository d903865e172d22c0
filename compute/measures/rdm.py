"""Representational dissimilarity matrices: (N stimuli x D features) activations -> (N x N) RDM.

Every method is one GEMM of centred or normalised patterns, computed in row blocks written
straight into the (host) result, so peak memory stays near the size of the output itself.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np
import torch

from compute.measures.registry import Measure
from compute.measures.validate import (
    _listed,
    as_matrix,
    check_nonconstant_rows,
    resolve_device,
    resolve_dtype,
)

RDM_METHODS: dict[str, Measure] = {
    "correlation": Measure(
        "correlation", "distance", (0.0, 2.0),
        ("scaling and offset of each pattern",),
        "1 - Pearson correlation between two stimuli's activation patterns",
    ),
    "cosine": Measure(
        "cosine", "distance", (0.0, 2.0), ("scaling of each pattern",),
        "1 - cosine similarity between two stimuli's activation patterns",
    ),
    "euclidean": Measure(
        "euclidean", "distance", (0.0, float("inf")),
        ("translation", "orthogonal transforms of the features"),
        "Euclidean distance between activation patterns",
    ),
    "sqeuclidean": Measure(
        "sqeuclidean", "distance", (0.0, float("inf")),
        ("translation", "orthogonal transforms of the features"),
        "squared Euclidean distance between activation patterns",
    ),
    "spearman": Measure(
        "spearman", "distance", (0.0, 2.0), ("monotone transforms of each pattern",),
        "1 - Spearman rank correlation between activation patterns (ranks over features)",
    ),
}

# Entries of one (rows x columns) block of the Gram matrix. Bounds the working memory of
# rdm() beyond its output (~64 MiB in float32); tests lower it to exercise the blocking.
BLOCK_ELEMENTS = 1 << 24

# Rows per block at most: each block also computes its (rows x rows) lower triangle, which is
# thrown away; 512 rows keep that waste small and the GEMM near its peak rate.
_MAX_ROWS = 512

# Below this fraction of |x_i|^2 + |x_j|^2 the norm trick loses most digits of a squared
# distance to cancellation; those (rare: near-duplicate stimuli) entries are recomputed directly.
_CANCELLATION = {torch.float32: 1e-3, torch.float64: 1e-7}


def rdm(
    X: Any,
    method: str = "correlation",
    condensed: bool = False,
    dtype: Any = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Representational dissimilarity matrix of the stimuli in ``X``.

    Parameters
    ----------
    X : array or tensor, shape (N stimuli, D features)
        Activations, N >= 3, finite.
    method : {"correlation", "cosine", "euclidean", "sqeuclidean", "spearman"}
        ``correlation`` = 1 - Pearson r between patterns, ``cosine`` = 1 - cosine similarity,
        ``spearman`` = 1 - Pearson r between the patterns' average ranks over features.
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
    if method not in RDM_METHODS:
        raise ValueError(f"unknown RDM method {method!r}; choose one of {sorted(RDM_METHODS)}")
    torch_dtype = resolve_dtype(dtype)
    X = as_matrix(X, "X", dtype=torch_dtype, device=resolve_device(device))
    A, B = _augmented_patterns(X, method)
    n, d = X.shape
    np_dtype = np.float64 if torch_dtype == torch.float64 else np.float32
    out = np.empty(n * (n - 1) // 2 if condensed else (n, n), dtype=np_dtype)
    if not condensed:
        out.fill(0)
    offset = 0
    for start, stop in _row_blocks(n):
        block = _dissimilarity_block(A, B, d, start, stop, method).cpu()
        if condensed:
            # Row i of the upper triangle is one contiguous run of the condensed vector.
            values = block.numpy()
            for row in range(stop - start):
                length = n - start - row - 1
                out[offset:offset + length] = values[row, row + 1:]
                offset += length
        else:
            # Write the upper part, then its transpose: symmetry is exact by construction.
            values = block.triu_(1).numpy()
            out[start:stop, start:] = values
            out[start:, start:stop] += values.T
    return out


def _row_blocks(n: int) -> Iterator[tuple[int, int]]:
    """Row ranges whose (rows x remaining columns) block holds about BLOCK_ELEMENTS entries."""
    start = 0
    while start < n:
        stop = min(n, start + max(1, min(_MAX_ROWS, BLOCK_ELEMENTS // (n - start))))
        yield start, stop
        start = stop


def _row_chunks(n: int, width: int) -> Iterator[slice]:
    rows = max(1, BLOCK_ELEMENTS // max(1, width))
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))


def _augmented_patterns(X: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) with A[i] . B[j] = the dissimilarity of stimuli i and j before clamping.

    The patterns z are unit-norm (centred) rows for the correlation-type methods and centred
    columns for the Euclidean ones. The constant and norm terms ride along as extra columns, so
    each block is one GEMM with nothing added afterwards: correlation-type A = [-z, 1],
    B = [z, 1] (1 - z_i.z_j); Euclidean A = [-2z, |z|^2, 1], B = [z, 1, |z|^2]. Zero columns pad
    the width to a multiple of 16 (aligned rows); ``B[:, :D]`` holds z itself. Means and norms
    are summed in float64, the patterns are formed in X's dtype, in row chunks.
    """
    n, d = X.shape
    if method in ("correlation", "spearman"):
        what = "correlation distance" if method == "correlation" else "spearman distance"
        check_nonconstant_rows(X, "X", what)
    width = -(-(d + 2) // 16) * 16
    B = torch.empty(n, width, dtype=X.dtype, device=X.device)
    B[:, d:] = 0
    Z = B[:, :d]
    euclidean = method in ("euclidean", "sqeuclidean")
    if euclidean:
        # Centring the columns changes no distance but shrinks the norms, and with them the
        # cancellation error of |x|^2 + |y|^2 - 2 x.y.
        mean = (X.sum(dim=0, dtype=torch.float64) / n).to(X.dtype)
        sq_norms = torch.empty(n, dtype=torch.float64, device=X.device)
    for rows in _row_chunks(n, d):
        chunk = X[rows]
        if euclidean:
            chunk = torch.sub(chunk, mean, out=Z[rows])
            sq_norms[rows] = torch.linalg.vector_norm(chunk, dim=1, dtype=torch.float64).square_()
            continue
        if method == "spearman":
            chunk = rank_rows(chunk.double()).to(X.dtype)
        if method != "cosine":
            chunk = chunk - chunk.mean(dim=1, keepdim=True, dtype=torch.float64).to(X.dtype)
        norms = torch.linalg.vector_norm(chunk, dim=1, keepdim=True, dtype=torch.float64)
        if method == "cosine" and bool((norms == 0).any()):
            zero = torch.nonzero(norms.flatten() == 0).flatten().cpu().numpy() + rows.start
            raise ValueError(
                f"X has all-zero activation patterns (stimuli {_listed(zero)}); cosine "
                "distance is undefined for them: drop those stimuli or use a euclidean method"
            )
        torch.mul(chunk, norms.reciprocal_().to(X.dtype), out=Z[rows])
    A = torch.empty_like(B)
    A[:, d:] = 0
    if euclidean:
        torch.mul(Z, -2.0, out=A[:, :d])
        A[:, d] = sq_norms
        A[:, d + 1] = 1.0
        B[:, d] = 1.0
        B[:, d + 1] = sq_norms
    else:
        torch.neg(Z, out=A[:, :d])
        A[:, d] = 1.0
        B[:, d] = 1.0
    return A, B


def _dissimilarity_block(
    A: torch.Tensor, B: torch.Tensor, d: int, start: int, stop: int, method: str
) -> torch.Tensor:
    """Dissimilarities of rows start:stop against rows start:N, shape (stop-start, N-start).

    ``A``, ``B`` from ``_augmented_patterns`` over patterns of width ``d``.

    Entries on and below the block's diagonal (column j <= row i) are not meaningful.
    """
    block = A[start:stop] @ B[start:].T
    if method not in ("euclidean", "sqeuclidean"):
        return block.clamp_(0.0, 2.0)
    left = A[start:stop, d]
    right = B[start:, d + 1]
    # Near-duplicate stimuli lose their squared distance to cancellation: one cheap test
    # against the largest possible threshold, then the exact test on the few candidates.
    block.diagonal().fill_(float("inf"))
    cancellation = _CANCELLATION[A.dtype]
    bound = cancellation * (float(left.max()) + float(right.max()))
    if float(block.min()) < bound:
        candidates = torch.nonzero(block < bound)
        i, j = candidates[:, 0], candidates[:, 1]
        keep = (j > i) & (block[i, j] < cancellation * (left[i] + right[j]))
        suspect = candidates[keep]
        Z = B[:, :d]
        for chunk in torch.split(suspect, max(1, BLOCK_ELEMENTS // d)):
            i, j = chunk[:, 0], chunk[:, 1]
            diff = Z[start + i].double() - Z[start + j].double()
            block[i, j] = (diff * diff).sum(dim=1).to(A.dtype)
    block.clamp_(min=0.0)
    return block if method == "sqeuclidean" else block.sqrt_()


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
