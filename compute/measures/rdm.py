"""Representational dissimilarity matrices: (N stimuli x D features) activations -> (N x N) RDM.

Every method is one GEMM of centred or normalised patterns, computed in row blocks written
straight into the (host) result, so peak memory stays near the size of the output itself.
"""
from __future__ import annotations

from typing import Any, Iterator

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
    Z, sq_norms = _prepare_patterns(X, method)
    n = Z.shape[0]
    np_dtype = np.float64 if torch_dtype == torch.float64 else np.float32
    out = np.empty(n * (n - 1) // 2 if condensed else (n, n), dtype=np_dtype)
    if not condensed:
        out.fill(0)
    for start, stop in _row_blocks(n):
        block = _dissimilarity_block(Z, sq_norms, start, stop, method)
        upper = torch.arange(n - start, device=Z.device)[None, :] > torch.arange(
            stop - start, device=Z.device
        )[:, None]
        if condensed:
            offset = start * n - start * (start + 1) // 2
            count = (stop - start) * (n - start) - (stop - start) * (stop - start + 1) // 2
            target = out[offset:offset + count]
            if block.device.type == "cpu":
                torch.masked_select(block, upper, out=torch.from_numpy(target))
            else:
                target[:] = block[upper].cpu().numpy()
        else:
            # Write the upper part, then its transpose: symmetry is exact by construction.
            values = block.masked_fill_(~upper, 0).cpu().numpy()
            out[start:stop, start:] = values
            out[start:, start:stop] += values.T
    return out


def _row_blocks(n: int) -> Iterator[tuple[int, int]]:
    """Row ranges whose (rows x remaining columns) block holds about BLOCK_ELEMENTS entries."""
    start = 0
    while start < n:
        stop = min(n, start + max(1, BLOCK_ELEMENTS // (n - start)))
        yield start, stop
        start = stop


def _row_chunks(n: int, width: int) -> Iterator[slice]:
    rows = max(1, BLOCK_ELEMENTS // max(1, width))
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))


def _prepare_patterns(X: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Patterns whose Gram matrix gives the method: unit-norm (centred) rows, or centred columns.

    Works in row chunks in float64 and stores the result in X's dtype.
    """
    n, d = X.shape
    if method in ("correlation", "spearman"):
        what = "correlation distance" if method == "correlation" else "spearman distance"
        check_nonconstant_rows(X, "X", what)
    Z = torch.empty_like(X)
    if method in ("correlation", "spearman", "cosine"):
        for rows in _row_chunks(n, d):
            chunk = X[rows].double()
            if method == "spearman":
                chunk = rank_rows(chunk)
            if method != "cosine":
                chunk = chunk - chunk.mean(dim=1, keepdim=True)
            norms = torch.linalg.vector_norm(chunk, dim=1, keepdim=True)
            if method == "cosine" and bool((norms == 0).any()):
                zero = torch.nonzero(norms.flatten() == 0).flatten().cpu().numpy() + rows.start
                raise ValueError(
                    f"X has all-zero activation patterns (stimuli {_listed(zero)}); cosine "
                    "distance is undefined for them: drop those stimuli or use a euclidean method"
                )
            Z[rows] = (chunk / norms).to(X.dtype)
        return Z, None
    # Euclidean: centring the columns changes no distance but shrinks the norms, and with
    # them the cancellation error of |x|^2 + |y|^2 - 2 x.y.
    mean = X.sum(dim=0, dtype=torch.float64) / n
    sq_norms = torch.empty(n, dtype=torch.float64, device=X.device)
    for rows in _row_chunks(n, d):
        chunk = X[rows].double() - mean
        sq_norms[rows] = (chunk * chunk).sum(dim=1)
        Z[rows] = chunk.to(X.dtype)
    return Z, sq_norms


def _dissimilarity_block(
    Z: torch.Tensor, sq_norms: torch.Tensor | None, start: int, stop: int, method: str
) -> torch.Tensor:
    """Dissimilarities of rows start:stop against rows start:N, shape (stop-start, N-start)."""
    gram = Z[start:stop] @ Z[start:].T
    if sq_norms is None:
        return gram.neg_().add_(1.0).clamp_(0.0, 2.0)
    left = sq_norms[start:stop, None].to(Z.dtype)
    right = sq_norms[None, start:].to(Z.dtype)
    sq = gram.mul_(-2.0).add_(left).add_(right)
    threshold = (left + right).mul_(_CANCELLATION[Z.dtype])
    suspect = torch.nonzero(sq < threshold)
    del threshold
    suspect = suspect[suspect[:, 1] > suspect[:, 0]]  # off-diagonal, upper part only
    for chunk in torch.split(suspect, max(1, BLOCK_ELEMENTS // Z.shape[1])):
        i, j = chunk[:, 0], chunk[:, 1]
        diff = Z[start + i].double() - Z[start + j].double()
        sq[i, j] = (diff * diff).sum(dim=1).to(Z.dtype)
    sq.clamp_(min=0.0)
    return sq if method == "sqeuclidean" else sq.sqrt_()


def rank_rows(X: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based, ties share their mean rank) within each row of a 2-D tensor.

    Same as ``scipy.stats.rankdata(X, axis=1)``, vectorised: one sort, no loop over rows.
    Returns float64.
    """
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
