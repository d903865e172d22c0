"""RDM comparisons and noise ceilings of bootstrap resamples, batched over resamples.

A resample of the N stimuli with replacement is a weight per stimulus pair: pair (p, q) appears
c_p * c_q times and the pairs of a stimulus with its own copy are dropped, as rsatoolbox's
``subsample_pattern`` does (it marks them NaN and ``compare`` removes them). A resample of the S
subjects is a count per subject. Every quantity below equals rsatoolbox's on the materialised
resample (duplicated entries, duplicated subjects) without building it: ranks are weighted
average ranks, sums are weighted sums, and all models meet all subjects in one batched product
per batch of resamples. Float64 numpy arrays; the elementwise passes run in numpy, in one
thread, as the measures' other host passes (:mod:`compute.measures.numerics`); call the
products under ``numerics.one_blas_thread``.
"""
from __future__ import annotations

import numpy as np

# Comparisons with a weighted form here; tau's pair counts and the whitened comparisons'
# per-stimulus structure have none.
WEIGHTED_METHODS = ("spearman", "rho_a", "pearson", "cosine", "euclidean", "manhattan")
_RANKED = ("spearman", "rho_a")


def pair_weights(stimuli: np.ndarray) -> np.ndarray:
    """(B, K) weights of the condensed pairs for B resamples, each a row of N stimulus indices."""
    b, n = stimuli.shape
    counts = np.zeros((b, n))
    np.add.at(counts, (np.repeat(np.arange(b), n), stimuli.ravel()), 1.0)
    rows, cols = np.triu_indices(n, 1)
    return counts[:, rows] * counts[:, cols]


def tie_groups(V: np.ndarray) -> tuple:
    """Sort order of each row of V (..., K), each sorted entry's tie group (0, 1, ...; None when
    no row has ties), whether each row has ties, and each entry's place in the sorted row (the
    inverse of the order). NaNs sort last and tie with nothing."""
    order = np.argsort(V, axis=-1)
    values = np.take_along_axis(V, order, axis=-1)
    inverse = np.empty_like(order)
    np.put_along_axis(inverse, order, np.broadcast_to(np.arange(V.shape[-1]), order.shape), axis=-1)
    same = values[..., 1:] == values[..., :-1]
    tied = same.any(axis=-1)
    if not tied.any():
        return order, None, tied, inverse
    new = np.ones(values.shape, dtype=bool)
    new[..., 1:] = ~same
    return order, np.cumsum(new, axis=-1) - 1, tied, inverse


def weighted_ranks(ties: tuple, W: np.ndarray, squares: bool = False):
    """(B, R, K) average ranks of R vectors (their ``tie_groups``, of (R, K) or (B, R, K)) in the
    vectors where entry k appears W[b, k] times, for each of B weight rows W (B, K): the ranks
    ``scipy.stats.rankdata`` gives the materialised vector, at the entries' places. With
    ``squares`` also (B, R) the weighted sums of the squared ranks."""
    order, group, tied, inverse = ties
    b, (r, k) = W.shape[0], order.shape[-2:]
    static = order.ndim == 2  # np.take along one axis is the fast gather
    w = np.take(W, order.ravel(), axis=1).reshape(b, r, k) if static else np.take_along_axis(W[:, None, :], order, axis=2)
    ranks = np.cumsum(w, axis=2)  # in sorted order: where a row has no ties, cum - (w - 1) / 2
    ranks -= 0.5 * w
    ranks += 0.5
    some = np.broadcast_to(tied, (b, r))
    if some.any():  # a tie group shares its mean rank: sum the weights per group, row by row
        rows = np.nonzero(some)
        g = np.broadcast_to(group, (b, r, k))[rows]
        flat = g + k * np.arange(len(g))[:, None]
        per_group = np.bincount(flat.ravel(), weights=w[rows].ravel(), minlength=len(g) * k).reshape(len(g), k)
        # Each entry takes its group's mean rank: a flat gather (take_along_axis is ~1.6x slower).
        ranks[rows] = np.take(np.cumsum(per_group, axis=1) - 0.5 * per_group + 0.5, flat)
    sums = np.einsum("brk,brk,brk->br", w, ranks, ranks) if squares else None
    # Back to the entries' places: a gather by the inverse order (a scatter costs twice as much).
    if static:
        out = np.take(ranks.reshape(b, r * k), (inverse + k * np.arange(r)[:, None]).ravel(), axis=1).reshape(b, r, k)
    else:
        out = np.take_along_axis(ranks, inverse, axis=2)
    return (out, sums) if squares else out


def centred(V: np.ndarray, W: np.ndarray, method: str, ties=None) -> np.ndarray:
    """(B, R, K) rows of V (R, K) or (B, R, K) before their scaling under the weights W (B, K):
    weighted ranks minus their mean (spearman, rho_a), values minus their weighted mean
    (pearson), the values (cosine and the distances)."""
    if method in _RANKED:
        X = weighted_ranks(ties if ties is not None else tie_groups(V), W)
        X -= (W.sum(axis=1)[:, None, None] + 1.0) / 2.0
        return X
    if method == "pearson":
        sums = np.einsum("rk,bk->br" if V.ndim == 2 else "brk,bk->br", V, W)
        return V - sums[:, :, None] / W.sum(axis=1)[:, None, None]
    return np.broadcast_to(V, (W.shape[0], *V.shape[-2:]))


def scaled(X: np.ndarray, W: np.ndarray, method: str) -> np.ndarray:
    """``centred`` rows X (B, R, K) scaled so that ``sum_k W_k a_k b_k`` of two is their
    similarity; the distances' rows unchanged."""
    if method == "rho_a":
        total = W.sum(axis=1)[:, None, None]
        return X * np.sqrt(12.0 / (total**3 - total))
    if method in ("euclidean", "manhattan"):
        return X
    return X / np.sqrt(np.einsum("brk,bk,brk->br", X, W, X))[:, :, None]


def prepared(V: np.ndarray, W: np.ndarray, method: str, ties=None) -> np.ndarray:
    """``scaled(centred(V, W, method, ties), W, method)``."""
    return scaled(centred(V, W, method, ties), W, method)


def scores(A: np.ndarray, W: np.ndarray, PV: np.ndarray, method: str, ties=None) -> np.ndarray:
    """(B, M, S) comparisons of the rows A (M, K) with the prepared rows PV (B, S, K) under the
    weights W (B, K), GEMM-shaped: PV (centred under W) meets the models' ranks (spearman,
    rho_a; ``ties`` their ``tie_groups``) in one batched product, or the models themselves in
    one product over all resamples (pearson, cosine); the distances one subject at a time."""
    b, s, k = PV.shape
    if method in ("euclidean", "manhattan"):
        return np.stack([_distance(A[None] - PV[:, i:i + 1], W, method) for i in range(s)], axis=2)
    Q = PV * W[:, None, :]
    total = W.sum(axis=1)[:, None]
    if method in _RANKED:
        ranks, squares = weighted_ranks(ties if ties is not None else tie_groups(A), W, squares=True)
        product = np.matmul(ranks, Q.transpose(0, 2, 1))  # sum_k W_k PV_k = 0: the ranks need no centring
        if method == "rho_a":
            return product * np.sqrt(12.0 / (total**3 - total))[:, :, None]  # PV holds the other root
        return product / np.sqrt(squares - total * ((total + 1.0) / 2.0) ** 2)[:, :, None]
    product = (A @ Q.reshape(b * s, k).T).reshape(len(A), b, s).transpose(1, 0, 2)
    norms = W @ (A * A).T  # (B, M)
    if method == "pearson":
        norms = norms - (W @ A.T) ** 2 / total
    return product / np.sqrt(norms)[:, :, None]


def pooled(X: np.ndarray, W: np.ndarray, method: str) -> np.ndarray:
    """(B, S, K) what rsatoolbox's ``pool_rdm`` averages, from the subjects' ``centred`` rows
    X (B, S, K): ranks (spearman, rho_a), z-scores (pearson), RMS-scaled values (cosine), the
    RDMs themselves (the distances), under the weights W (B, K). Up to a constant shift or
    scale, which changes no comparison with the pool."""
    if method in ("pearson", "cosine"):
        return scaled(X, W, "cosine")
    return X


def noise_ceilings(X: np.ndarray, P: np.ndarray, W: np.ndarray, C: np.ndarray, method: str) -> np.ndarray:
    """(B, 2) lower and upper noise ceilings of B resamples, as rsatoolbox's ``boot_noise_ceiling``
    on each resample (``rdm_descriptor="index"``).

    X (B, S, K) the subjects' ``centred`` rows and P (B, S, K) their prepared ones; W (B, K) pair
    weights; C (B, S) subject counts. The pool of all drawn subjects weighs each by its count;
    subject s's lower bound compares it with the pool of the other drawn subjects (with all of
    them when it is the only one drawn); both bounds average over the distinct subjects drawn.
    """
    T = pooled(X, W, method)
    total = np.einsum("bs,bsk->bk", C, T)
    drawn = C.sum(axis=1)[:, None]
    pools = np.empty((T.shape[0], T.shape[1] + 1, T.shape[2]))
    pools[:, 0] = total / drawn
    loo = pools[:, 1:]
    np.multiply(T, -C[:, :, None], out=loo)
    loo += total[:, None, :]
    loo /= np.maximum(drawn - C, 1.0)[:, :, None]
    alone = np.nonzero(drawn - C == 0)  # the only subject drawn: rsatoolbox pools them all
    loo[alone] = pools[alone[0], 0]
    if method in _RANKED:  # the pairs no stimulus drew weigh nothing: keep their ties out of the way
        pools[np.broadcast_to(W[:, None, :] == 0, pools.shape)] = np.nan
    pools = prepared(pools, W, method)  # (B, 1 + S, K)
    if method in ("euclidean", "manhattan"):
        upper, lower = _distance(pools[:, :1] - P, W, method), _distance(pools[:, 1:] - P, W, method)
    else:
        Q = P * W[:, None, :]
        upper = np.einsum("bsk,bk->bs", Q, pools[:, 0])
        lower = np.einsum("bsk,bsk->bs", Q, pools[:, 1:])
    present = C > 0
    n = present.sum(axis=1)
    return np.stack([(lower * present).sum(axis=1) / n, (upper * present).sum(axis=1) / n], axis=1)


def _distance(diff: np.ndarray, W: np.ndarray, method: str) -> np.ndarray:
    """(B, R) weighted distances of the rows of diff (B, R, K)."""
    if method == "manhattan":
        return np.einsum("brk,bk->br", np.abs(diff), W)
    return np.sqrt(np.einsum("brk,bk,brk->br", diff, W, diff))
