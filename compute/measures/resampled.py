"""RDM comparisons and noise ceilings of bootstrap resamples, batched over resamples.

A resample of the N stimuli with replacement is a weight per stimulus pair: pair (p, q) appears
c_p * c_q times and the pairs of a stimulus with its own copy are dropped, as rsatoolbox's
``subsample_pattern`` does (it marks them NaN and ``compare`` removes them). A resample of the S
subjects is a count per subject. Every quantity below equals rsatoolbox's on the materialised
resample (duplicated entries, duplicated subjects) without building it: ranks are weighted
average ranks, sums are weighted sums, and all models meet all subjects in one batched product
per batch of resamples. Float64 throughout.
"""
from __future__ import annotations

import numpy as np
import torch

# Comparisons with a weighted form here; tau's pair counts and the whitened comparisons'
# per-stimulus structure have none.
WEIGHTED_METHODS = ("spearman", "rho_a", "pearson", "cosine", "euclidean", "manhattan")
_RANKED = ("spearman", "rho_a")


def pair_weights(stimuli: np.ndarray) -> torch.Tensor:
    """(B, K) weights of the condensed pairs for B resamples, each a row of N stimulus indices."""
    b, n = stimuli.shape
    counts = np.zeros((b, n))
    np.add.at(counts, (np.repeat(np.arange(b), n), stimuli.ravel()), 1.0)
    rows, cols = np.triu_indices(n, 1)
    return torch.from_numpy(counts[:, rows] * counts[:, cols])


def tie_groups(V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort order of each row of V (..., K) and each sorted entry's tie group (0, 1, ...)."""
    order = torch.from_numpy(np.argsort(V.contiguous().numpy(), axis=-1))  # numpy's sort: ~4x torch's here
    values = torch.gather(V, -1, order)
    new = torch.ones_like(values, dtype=torch.bool)
    new[..., 1:] = values[..., 1:] != values[..., :-1]
    return order, torch.cumsum(new, dim=-1) - 1


def weighted_ranks(order: torch.Tensor, group: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """(B, R, K) average ranks of R vectors (their ``tie_groups``, (R, K) or (B, R, K)) in the
    vectors where entry k appears W[b, k] times, for each of B weight rows W (B, K); the ranks
    ``scipy.stats.rankdata`` gives the materialised vector, at the entries' places."""
    b, (r, k) = W.shape[0], order.shape[-2:]
    order, group = order.expand(b, r, k), group.expand(b, r, k)
    w = torch.gather(W[:, None, :].expand(b, r, k), 2, order)
    per_group = torch.zeros_like(w).scatter_add_(2, group, w)
    rank_of_group = torch.cumsum(per_group, dim=2) - (per_group - 1.0) / 2.0
    return torch.empty_like(w).scatter_(2, order, torch.gather(rank_of_group, 2, group))


def centred(V: torch.Tensor, W: torch.Tensor, method: str, ties=None) -> torch.Tensor:
    """(B, R, K) rows of V (R, K) or (B, R, K) before their scaling under the weights W (B, K):
    weighted ranks minus their mean (spearman, rho_a), values minus their weighted mean
    (pearson), the values (cosine and the distances)."""
    if method in _RANKED:
        order, group = ties if ties is not None else tie_groups(V)
        return weighted_ranks(order, group, W) - (W.sum(dim=1)[:, None, None] + 1.0) / 2.0
    if method == "pearson":
        return V - (V * W[:, None, :]).sum(dim=2, keepdim=True) / W.sum(dim=1)[:, None, None]
    return V.expand(W.shape[0], *V.shape[-2:])


def scaled(X: torch.Tensor, W: torch.Tensor, method: str) -> torch.Tensor:
    """``centred`` rows X (B, R, K) scaled so that ``sum_k W_k a_k b_k`` of two is their
    similarity; the distances' rows unchanged."""
    if method == "rho_a":
        total = W.sum(dim=1)[:, None, None]
        return X * torch.sqrt(12.0 / (total**3 - total))
    if method in ("euclidean", "manhattan"):
        return X
    return X / torch.sqrt((X * X * W[:, None, :]).sum(dim=2, keepdim=True))


def prepared(V: torch.Tensor, W: torch.Tensor, method: str, ties=None) -> torch.Tensor:
    """``scaled(centred(V, W, method, ties), W, method)``."""
    return scaled(centred(V, W, method, ties), W, method)


def scores(A: torch.Tensor, B: torch.Tensor, W: torch.Tensor, method: str) -> torch.Tensor:
    """(B, M, S) comparisons of the prepared rows A (B, M, K) with B (B, S, K) under W (B, K):
    one batched product for the similarities, the distances one subject at a time."""
    if method in ("euclidean", "manhattan"):
        return torch.stack([_distance(A - B[:, s:s + 1], W, method) for s in range(B.shape[1])], dim=2)
    return torch.bmm(A * W[:, None, :], B.transpose(1, 2))


def pooled(X: torch.Tensor, W: torch.Tensor, method: str) -> torch.Tensor:
    """(B, S, K) what rsatoolbox's ``pool_rdm`` averages, from the subjects' ``centred`` rows
    X (B, S, K): ranks (spearman, rho_a), z-scores (pearson), RMS-scaled values (cosine), the
    RDMs themselves (the distances), under the weights W (B, K). Up to a constant shift or
    scale, which changes no comparison with the pool."""
    if method in ("pearson", "cosine"):
        return scaled(X, W, "cosine")
    return X


def noise_ceilings(X: torch.Tensor, P: torch.Tensor, W: torch.Tensor, C: torch.Tensor,
                   method: str) -> torch.Tensor:
    """(B, 2) lower and upper noise ceilings of B resamples, as rsatoolbox's ``boot_noise_ceiling``
    on each resample (``rdm_descriptor="index"``).

    X (B, S, K) the subjects' ``centred`` rows and P (B, S, K) their prepared ones; W (B, K) pair
    weights; C (B, S) subject counts. The pool of all drawn subjects weighs each by its count;
    subject s's lower bound compares it with the pool of the other drawn subjects (with all of
    them when it is the only one drawn); both bounds average over the distinct subjects drawn.
    """
    T = pooled(X, W, method)
    total = torch.einsum("bs,bsk->bk", C, T)
    others = C.sum(dim=1)[:, None] - C
    everyone = total / C.sum(dim=1)[:, None]
    loo = (total[:, None, :] - C[:, :, None] * T) / torch.clamp(others, min=1.0)[:, :, None]
    loo = torch.where((others > 0)[:, :, None], loo, everyone[:, None, :])
    pools = prepared(torch.cat([everyone[:, None, :], loo], dim=1), W, method)  # (B, 1 + S, K)
    if method in ("euclidean", "manhattan"):
        upper, lower = _distance(pools[:, :1] - P, W, method), _distance(pools[:, 1:] - P, W, method)
    else:
        upper = torch.bmm(P * W[:, None, :], pools[:, 0, :, None])[:, :, 0]
        lower = (P * pools[:, 1:] * W[:, None, :]).sum(dim=2)
    present = (C > 0).to(P.dtype)
    n = present.sum(dim=1)
    return torch.stack([(lower * present).sum(dim=1) / n, (upper * present).sum(dim=1) / n], dim=1)


def _distance(diff: torch.Tensor, W: torch.Tensor, method: str) -> torch.Tensor:
    """(B, R) weighted distances of the rows of diff (B, R, K)."""
    if method == "manhattan":
        return (diff.abs() * W[:, None, :]).sum(dim=2)
    return torch.sqrt((diff * diff * W[:, None, :]).sum(dim=2))
