"""Inference on RDM comparisons: bootstrap over stimuli, permutation tests, noise ceilings.

All in float64. A bootstrap resample of stimuli is expressed as weights on the original
stimulus pairs (pair (p, q) appears c_p * c_q times, pairs of a stimulus with its own copy are
dropped, as in rsatoolbox), so whole batches of resamples are evaluated with tensor ops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from compute.errors import stop_if_asked
from compute.measures.compare import (
    _check_method,
    _kendall,
    _tau_a,
    _tied_pairs,
    compare_rdms,
    prepare,
    rdm_vector_pair,
    rowwise,
    stack_rdms,
)
from compute.measures.rdm import rank_rows
from compute.measures.nulls import activation_null, calibrate, permuted_entries
from compute.measures.nulls import permutations as _permutations
from compute.measures.registry import COMPARE_METHODS, MEASURES
from compute.measures.whitened import WHITENED, normalised_for_pooling

_CHUNK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class BootstrapResult:
    """``estimate`` on all stimuli; percentile interval [``low``, ``high``]; ``samples``
    (n_boot,), NaN where a resample left the comparison undefined (e.g. a constant RDM)."""

    estimate: float
    low: float
    high: float
    samples: np.ndarray


@dataclass(frozen=True)
class PermutationResult:
    """``estimate`` on the real pairing, one-sided ``p_value``, ``null`` (n_perm,) values, and the
    estimate's ``z`` and ``calibrated`` score against the null (:mod:`compute.measures.nulls`)."""

    estimate: float
    p_value: float
    null: np.ndarray
    z: float = float("nan")
    calibrated: float = float("nan")


class NoiseCeiling(NamedTuple):
    """Nili et al. (2014) noise ceiling: ``lower`` (leave-one-out) and ``upper`` bounds."""

    lower: float
    upper: float


def bootstrap(
    rdm_a: Any, rdm_b: Any, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
    ci: float = 0.95, should_stop: Callable[[], bool] | None = None,
) -> BootstrapResult:
    """Bootstrap confidence interval of ``compare_rdms(rdm_a, rdm_b, method)`` over stimuli.

    Parameters
    ----------
    rdm_a, rdm_b : array or tensor, (N, N) or condensed (N*(N-1)/2,), same N stimuli
    method : str
        A ``COMPARE_METHODS`` name (similarity or distance).
    n_boot : int
        Number of resamples of the N stimuli, drawn with replacement.
    seed : int
        Seed of ``numpy.random.default_rng``; same seed, same result.
    ci : float
        Coverage of the percentile interval, in (0, 1).
    should_stop : callable, optional
        Asked before each batch of resamples; when it returns True, ``Cancelled`` is raised.

    Returns
    -------
    BootstrapResult
        ``estimate``, percentile ``low``/``high`` over the finite samples, and the samples.
        For the whitened comparisons (``cosine_cov``, ``corr_cov``) a resample's comparison is
        over the distinct stimuli it drew (the whitening needs each stimulus once), so their
        intervals are somewhat wider than a full bootstrap's.
    """
    _check_method(method)
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci!r}")
    _check_count(n_boot, "n_boot")
    va, vb, n = rdm_vector_pair(rdm_a, rdm_b, ("rdm_a", "rdm_b"))
    estimate = compare_rdms(va, vb, method, dtype=np.float64, device="cpu")
    idx = _resample_indices(n, n_boot, seed)
    counts = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    counts = torch.from_numpy(counts.reshape(n_boot, n).astype(np.float64))
    rows, cols = np.triu_indices(n, 1)
    samples = np.empty(n_boot)
    if method in ("kendall_tau_a", "tau_b"):
        a, b = va.numpy(), vb.numpy()
        for s in range(n_boot):
            stop_if_asked(should_stop)
            w = (counts[s, rows] * counts[s, cols]).numpy().astype(np.int64)
            x, y = np.repeat(a, w), np.repeat(b, w)
            defined = len(x) > 1 and np.ptp(x) > 0 and np.ptp(y) > 0
            samples[s] = _kendall(x, y, _tied_pairs(x), _tied_pairs(y), method == "tau_b") if defined else np.nan
    elif method in WHITENED:
        samples[:] = _distinct_resamples(va, vb, n, idx, method, should_stop)
    else:
        ranks = (_rank_groups(va), _rank_groups(vb)) if method in ("spearman", "rho_a") else None
        step = max(1, _CHUNK_ELEMENTS // len(va))
        for start in range(0, n_boot, step):
            stop_if_asked(should_stop)
            c = counts[start:start + step]
            weights = c[:, rows] * c[:, cols]
            samples[start:start + step] = _weighted(weights, va, vb, method, ranks).numpy()
    finite = samples[np.isfinite(samples)]
    low, high = (
        np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2]) if len(finite) else (np.nan, np.nan)
    )
    return BootstrapResult(float(estimate), float(low), float(high), samples)


def permutation_test(a: Any, b: Any, measure: str = "spearman", n_perm: int = 1000, seed: int = 0,
                     **options) -> PermutationResult:
    """Permutation test of a similarity score against shuffled stimuli.

    ``a``, ``b``: two RDMs ((N, N) or condensed) with a ``COMPARE_METHODS`` name, or two
    activation matrices (N, D_a), (N, D_b) with a ``MEASURES`` name (``options`` as in
    ``similarity``). The null hypothesis is that the pairing of stimuli does not matter: the
    stimuli of ``b`` are permuted (for RDMs rows and columns together) ``n_perm`` times with a
    seeded generator. One-sided: for similarities p = (1 + #{null >= estimate}) / (1 + n_perm);
    for distances the direction flips. Small p = more alike than chance.

    Returns
    -------
    PermutationResult
        ``estimate``, ``p_value`` in (0, 1], ``null`` (n_perm,), ``z`` = (estimate -
        mean(null)) / std(null) and ``calibrated`` = (estimate - mean(null)) / (best -
        mean(null)), best = 1 for similarities (chance 0, identical 1; distances: the same
        on the negated scale, best = 0).
    """
    if measure in MEASURES:
        estimate, null = activation_null(a, b, measure, n_perm, seed, **options)
        return _summarised(estimate, null, MEASURES[measure].kind)
    if options:
        raise ValueError(f"RDM comparisons take no options; got {', '.join(sorted(options))}")
    rdm_a, rdm_b, method = a, b, measure
    _check_method(method)
    _check_count(n_perm, "n_perm")
    va, vb, n = rdm_vector_pair(rdm_a, rdm_b, ("rdm_a", "rdm_b"))
    estimate = compare_rdms(va, vb, method, dtype=np.float64, device="cpu")
    perms = _permutations(n, n_perm, seed)
    null = np.empty(n_perm)
    if method in ("spearman", "pearson", "rho_a", "cosine", *WHITENED):
        pa, pb = prepare(torch.stack([va, vb]), method)
    step = max(1, _CHUNK_ELEMENTS // len(va))
    for start in range(0, n_perm, step):
        p = perms[start:start + step]
        index = torch.from_numpy(permuted_entries(p, method in WHITENED))
        if method == "euclidean":
            values = torch.linalg.vector_norm(va - vb[index], dim=1)
        elif method == "manhattan":
            values = (va - vb[index]).abs().sum(dim=1)
        elif method in ("kendall_tau_a", "tau_b"):
            a, b = va.numpy(), vb.numpy()
            ties = (_tied_pairs(a), _tied_pairs(b))
            values = torch.tensor(
                [_kendall(a, b[ix], *ties, method == "tau_b") for ix in index.numpy()], dtype=torch.float64
            )
        else:  # a whitened vector's diagonal part follows the stimuli (permuted_entries)
            values = pb[index] @ pa
        null[start:start + step] = values.numpy()
    return _summarised(estimate, null, COMPARE_METHODS[method].kind)


def fdr_bh(p: Any) -> np.ndarray:
    """Benjamini-Hochberg FDR-adjusted p-values (q-values) of the p-values ``p`` (any shape).

    Over the m finite entries, sorted ascending: q_(i) = min_{j >= i} p_(j) m / j, at most 1;
    rejecting every test with q < alpha controls the false discovery rate at alpha (for
    independent or positively dependent tests). Same shape as ``p``; NaN stays NaN and is not
    counted in m. Raises ValueError for p outside [0, 1].
    """
    p = np.asarray(p, dtype=np.float64)
    finite = np.isfinite(p)
    values = p[finite]
    if np.any((values < 0) | (values > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(values, kind="stable")
    ranked = values[order] * len(values) / np.arange(1, len(values) + 1)
    adjusted = np.empty_like(values)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    adjusted = np.maximum(adjusted, values)  # q >= p exactly (p m / m may round below p)
    q = np.full(p.shape, np.nan)
    q[finite] = adjusted
    return q


def _summarised(estimate: float, null: np.ndarray, kind: str) -> PermutationResult:
    p, z, calibrated = calibrate(np.float64(estimate), null, kind)
    return PermutationResult(float(estimate), float(p), null, float(z), float(calibrated))


def noise_ceiling(rdms_subjects: Any, method: str = "spearman") -> NoiseCeiling:
    """Noise ceiling of a comparison method across subjects' RDMs (Nili et al., 2014).

    The subjects' RDMs are pooled as rsatoolbox does for ``method`` (averaged ranks for
    spearman/rho_a/kendall_tau_a, averaged z-scores for pearson, RMS-normalised for cosine,
    plain mean for the distances). ``upper`` = mean comparison of each subject with the pool
    of all subjects (itself included); ``lower`` = mean comparison with the pool of the others.

    Parameters
    ----------
    rdms_subjects : (S, K) condensed, (S, N, N) square, or a list of S >= 2 RDMs
    method : str
        A ``COMPARE_METHODS`` name.

    Returns
    -------
    NoiseCeiling
        ``(lower, upper)``. For similarities lower <= upper (higher = better). For the
        distances the direction flips: ``upper`` (the optimistic bound) is the smaller
        distance and ``lower`` the larger one.
    """
    _check_method(method)
    V = stack_rdms(rdms_subjects, "rdms_subjects")
    s = V.shape[0]
    if method in ("spearman", "rho_a", "kendall_tau_a", "tau_b"):
        T = rank_rows(V)
    elif method in WHITENED:
        T = normalised_for_pooling(V, method)
    elif method == "pearson":
        T = (V - V.mean(dim=1, keepdim=True)) / V.std(dim=1, correction=0, keepdim=True)
    elif method == "cosine":
        T = V / torch.sqrt((V * V).mean(dim=1, keepdim=True))
    else:
        T = V
    total = T.sum(dim=0, keepdim=True)
    upper = rowwise(V, (total / s).expand_as(V), method, np.float64, "cpu").mean()
    lower = rowwise(V, (total - T) / (s - 1), method, np.float64, "cpu").mean()
    return NoiseCeiling(float(lower), float(upper))


def _distinct_resamples(va: torch.Tensor, vb: torch.Tensor, n: int, idx: np.ndarray, method: str,
                        should_stop: Callable[[], bool] | None) -> np.ndarray:
    """The comparison of each resample (a row of stimulus indices) over the distinct stimuli it drew."""
    out = np.empty(len(idx))
    for s, drawn in enumerate(idx):
        stop_if_asked(should_stop)
        kept = np.unique(drawn)
        if len(kept) < 3:
            out[s] = np.nan
            continue
        i, j = np.triu_indices(len(kept), 1)
        lo, hi = kept[i], kept[j]
        pairs = torch.from_numpy(lo * n - lo * (lo + 1) // 2 + hi - lo - 1)
        a, b = va[pairs][None], vb[pairs][None]
        constant = any(bool((v.max() == v.min())) for v in (a, b)) and method == "corr_cov"
        out[s] = np.nan if constant else float((prepare(a, method) * prepare(b, method)).sum())
    return out


def _check_count(value: int, name: str) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) stimulus indices drawn with replacement; resample s is row s."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _rank_groups(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sort order of v, the tie group of each sorted entry, and the number of groups."""
    values, order = torch.sort(v, stable=True)
    new = torch.ones_like(values, dtype=torch.bool)
    new[1:] = values[1:] != values[:-1]
    group = torch.cumsum(new, 0) - 1
    return order, group, int(group[-1]) + 1


def _weighted_ranks(
    W: torch.Tensor, groups: tuple[torch.Tensor, torch.Tensor, int]
) -> torch.Tensor:
    """Average ranks each entry would get in the vector where entry k appears W[:, k] times."""
    order, group, n_groups = groups
    per_group = torch.zeros(W.shape[0], n_groups, dtype=W.dtype).index_add_(1, group, W[:, order])
    rank_of_group = torch.cumsum(per_group, dim=1) - per_group + (per_group + 1) / 2
    ranks = torch.empty_like(W)
    ranks[:, order] = rank_of_group[:, group]
    return ranks


def _weighted(
    W: torch.Tensor, a: torch.Tensor, b: torch.Tensor, method: str, ranks: tuple | None
) -> torch.Tensor:
    """The comparison of each resample (a row of pair weights W) without materialising it."""
    total = W.sum(dim=1)
    if method == "euclidean":
        return torch.sqrt(W @ (a - b) ** 2)
    if method == "manhattan":
        return W @ (a - b).abs()
    if method == "cosine":
        return _ratio(W @ (a * b), torch.sqrt((W @ (a * a)) * (W @ (b * b))))
    if ranks is not None:
        x, y = _weighted_ranks(W, ranks[0]), _weighted_ranks(W, ranks[1])
    else:
        x, y = (a - a.mean()).expand_as(W), (b - b.mean()).expand_as(W)
    mx = (W * x).sum(dim=1, keepdim=True) / total[:, None]
    my = (W * y).sum(dim=1, keepdim=True) / total[:, None]
    cov = (W * (x - mx) * (y - my)).sum(dim=1)
    vx = (W * (x - mx) ** 2).sum(dim=1)
    vy = (W * (y - my) ** 2).sum(dim=1)
    if method == "rho_a":
        rho = 12.0 * cov / (total**3 - total)
        return torch.where((vx > 0) & (vy > 0) & (total > 1), rho, torch.nan)
    return _ratio(cov, torch.sqrt(vx * vy))


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.nan).clamp(-1.0, 1.0)
