"""Candidate models against subjects' RDMs: scores, two-factor bootstrap intervals, the noise
ceiling and pairwise model tests, as rsatoolbox's model evaluation (Schütt et al. 2023) computes
them, batched over resamples (:mod:`compute.measures.resampled`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np
import scipy.stats
from compute.errors import stop_if_asked
from compute.measures import resampled
from compute.measures.compare import _check_method, as_rdm_vector
from compute.measures.numerics import one_blas_thread
from compute.measures.registry import COMPARE_METHODS
from compute.measures.stats import NoiseCeiling, _check_count, fdr_bh, noise_ceiling

FACTORS = ("subjects", "stimuli")
_CHUNK_ELEMENTS = 1 << 22


class Resamples(NamedTuple):
    """Bootstrap draws: ``subjects`` (n_boot, S) and ``stimuli`` (n_boot, N) indices, with
    replacement; resample b is row b of each."""

    subjects: np.ndarray
    stimuli: np.ndarray


@dataclass(frozen=True)
class ModelEvaluation:
    """What :func:`evaluate_models` returns; M models, in the order given.

    ``names`` (M,); ``scores`` (M,) each model's comparison with each subject, averaged over the
    subjects; ``sem`` (M,) its bootstrap standard error; ``ci`` (M, 2) the t interval
    ``scores +- t(dof) sem``; ``normalised`` (M,) ``scores / noise_ceiling.lower`` (1 = as
    good as the other subjects' pooled RDM predicts a subject; for the distances > 1 is worse);
    ``noise_ceiling`` (lower, upper); ``ceiling_p`` the one-sided t test of the lower bound
    against 0; ``pairwise_p`` (M, M) two-sided t tests of the differences of scores,
    Benjamini-Hochberg corrected over the M (M - 1) / 2 pairs (``pairwise_p_raw`` before the
    correction; diagonals 1); ``dof`` the tests' degrees of freedom; ``over`` the resampled
    factors; ``n_boot`` the resamples used (those that drew at least 3 distinct stimuli).
    """

    names: tuple[str, ...]
    scores: np.ndarray
    ci: np.ndarray
    normalised: np.ndarray
    noise_ceiling: NoiseCeiling
    ceiling_p: float
    pairwise_p: np.ndarray
    pairwise_p_raw: np.ndarray
    sem: np.ndarray
    dof: int
    over: tuple[str, ...]
    n_boot: int


def resample_indices(n_subjects: int, n_stimuli: int, n_boot: int, seed: int = 0) -> Resamples:
    """The draws ``evaluate_models(..., seed=seed)`` uses: from ``numpy.random.default_rng(seed)``
    first the (n_boot, N) stimulus indices (the same as ``compute.bootstrap``'s), then the
    (n_boot, S) subject indices. Both are drawn whatever is resampled."""
    rng = np.random.default_rng(seed)
    stimuli = rng.integers(0, n_stimuli, size=(n_boot, n_stimuli))
    return Resamples(rng.integers(0, n_subjects, size=(n_boot, n_subjects)), stimuli)


def evaluate_models(
    reference: Any, models: Mapping[str, Any], method: str = "spearman", n_boot: int = 1000,
    over: tuple[str, ...] = FACTORS, seed: int = 0, ci: float = 0.95, indices: Resamples | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelEvaluation:
    """Evaluate M candidate RDMs against S subjects' RDMs with bootstrap inference.

    Parameters
    ----------
    reference : (S, K) condensed or (S, N, N) square RDMs of S subjects, K = N (N - 1) / 2
    models : dict name -> (K,) condensed or (N, N) RDM over the same N stimuli; M >= 1
    method : str
        One of spearman, rho_a, pearson, cosine (similarities) or euclidean, manhattan
        (distances: lower = better, ``ceiling_p`` NaN); tau's and the whitened comparisons
        have no batched form here.
    n_boot : int
        Bootstrap resamples; 0 = none (``ci``, ``sem``, the p-values NaN).
    over : tuple
        What is resampled, with replacement: ``"subjects"`` (needs S >= 2), ``"stimuli"``
        (needs N >= 4), or both. A stimulus drawn twice duplicates its pairs with the other
        stimuli, and the pairs of a stimulus with its own copy are left out; resamples with
        fewer than 3 distinct stimuli are dropped (rsatoolbox's ``subsample_pattern`` and
        evaluations, which this follows to 1e-9 on the same draws).
    seed : int
        Seed of the draws (:func:`resample_indices`); same seed, same result.
    ci : float
        Coverage of the interval, in (0, 1).
    indices : Resamples, optional
        Explicit draws (e.g. to give rsatoolbox the same ones); they set ``n_boot``, and
        ``seed`` is unused.

    Returns
    -------
    ModelEvaluation
        Point estimates (``scores``, ``noise_ceiling``) are on all subjects and stimuli, and
        the intervals and tests are centred on them (rsatoolbox's ``Result`` centres its own on
        the mean over resamples: its variances, not its centres, are what this follows). The
        bootstrap variance is rsatoolbox's: the covariance of the per-resample means over
        subjects (and of the ceiling's bounds), times S / (S - 1) when subjects are resampled,
        N / (N - 1) when stimuli are, dof S - 1 or N - 1. Over both it is the dual bootstrap of
        ``eval_dual_bootstrap``: each draw evaluated three times (both factors, subjects only,
        stimuli only) and the variances combined as rsatoolbox's ``_dual_bootstrap`` does,
        Var = S/(S-1) V_subj + N/(N-1) V_stim - SN/((S-1)(N-1)) (V_both - V_subj - V_stim),
        clipped to [max of the two scaled single-factor ones, V_both]; dof min(S, N) - 1.
        Null hypotheses: a model's score difference with another is 0 (two-sided t); the
        lower noise ceiling is 0 (one-sided: is there a reliable structure to explain).
    """
    _check_method(method)
    if method not in resampled.WEIGHTED_METHODS:
        raise ValueError(f"evaluate_models supports the methods {', '.join(resampled.WEIGHTED_METHODS)}; "
                         f"got {method!r} (tau's pair counts and the whitened comparisons are not batched)")
    V, A, names = _inputs(reference, models)
    s, n, m = V.shape[0], _n_stimuli(V), A.shape[0]
    over = _factors(over, method, s, n)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0 or n_boot == 1:
        raise ValueError(f"n_boot must be 0 (no resampling) or an integer >= 2, got {n_boot!r}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci!r}")
    scores_ms = _full_scores(A, V, method)
    estimate = scores_ms.mean(axis=1)
    ceiling = noise_ceiling(V, method) if s >= 2 else NoiseCeiling(np.nan, np.nan)
    draws = _draws(indices, s, n) if indices is not None else resample_indices(s, n, n_boot, seed)
    nan_m = np.full(m, np.nan)
    sem, p_raw, p_ceiling, used, dof = nan_m, np.full((m, m), np.nan), np.nan, 0, 0
    if len(draws.stimuli):
        with one_blas_thread(), np.errstate(invalid="ignore", divide="ignore"):  # dropped resamples: 0 / 0
            kinds, valid = _bootstrap(V, A, scores_ms, draws, over, method, should_stop)
        used = int(valid.sum())
        if used < 2:
            raise ValueError(f"only {used} of {len(valid)} resamples drew 3 or more distinct stimuli; "
                             "use more stimuli or more resamples")
        var_model, var_diff, var_ceiling, dof = _variances(kinds, valid, over, s, n)
        sem = np.sqrt(np.maximum(var_model, 0.0))
        eps = np.finfo(float).eps
        t = (estimate[:, None] - estimate[None, :]) / np.sqrt(np.maximum(var_diff, eps))
        p_raw = 2.0 * scipy.stats.t.sf(np.abs(t), dof)
        np.fill_diagonal(p_raw, 1.0)
        if COMPARE_METHODS[method].kind == "similarity":
            p_ceiling = float(scipy.stats.t.sf(ceiling.lower / np.sqrt(max(var_ceiling, eps)), dof))
    half = scipy.stats.t.ppf((1.0 + ci) / 2.0, dof) * sem if dof else nan_m
    return ModelEvaluation(
        names, estimate, np.stack([estimate - half, estimate + half], axis=1), estimate / ceiling.lower,
        ceiling, p_ceiling, _benjamini_hochberg(p_raw), p_raw, sem, dof, over, used,
    )


def _inputs(reference: Any, models: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The subjects' (S, K) and the models' (M, K) float64 condensed RDMs, and the models' names."""
    ref = np.asarray(reference)
    if ref.ndim not in (2, 3) or not len(ref):
        raise ValueError(f"reference must be (S, K) condensed or (S, N, N) square RDMs of S >= 1 subjects, "
                         f"got shape {ref.shape}")
    subjects = [as_rdm_vector(x, f"reference[{i}]") for i, x in enumerate(ref)]
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict of name -> RDM")
    n = subjects[0][1]
    vectors = []
    for name, rdm in models.items():
        v, n_model = as_rdm_vector(rdm, f"models[{name!r}]")
        if n_model != n:
            raise ValueError(f"models[{name!r}] is an RDM over {n_model} stimuli but the reference is over {n}; "
                             "compute both on the same stimuli, in the same order")
        vectors.append(v)
    return (np.stack([v.numpy() for v, _ in subjects]), np.stack([v.numpy() for v in vectors]),
            tuple(str(k) for k in models))


def _n_stimuli(V) -> int:
    return int(round((1 + np.sqrt(1 + 8 * V.shape[1])) / 2))


def _factors(over: Any, method: str, s: int, n: int) -> tuple[str, ...]:
    chosen = tuple(f for f in FACTORS if f in tuple(over if not isinstance(over, str) else (over,)))
    if not chosen or len(chosen) != len(set(over if not isinstance(over, str) else (over,))):
        raise ValueError(f"over must name what is resampled, 'subjects' and/or 'stimuli'; got {over!r}")
    if "subjects" in chosen and s < 2:
        raise ValueError(f"resampling subjects needs at least 2 subjects' RDMs; the reference has {s}: "
                         "use over=('stimuli',)")
    if "stimuli" in chosen:
        if n < 4:
            raise ValueError(f"resampling stimuli needs at least 4 stimuli (a resample must draw 3 distinct "
                             f"ones); the RDMs are over {n}: use over=('subjects',)")
    return chosen


def _draws(indices: Any, s: int, n: int) -> Resamples:
    subjects, stimuli = (np.asarray(x) for x in indices)
    for name, x, size in (("subjects", subjects, s), ("stimuli", stimuli, n)):
        if x.ndim != 2 or x.shape[1] != size or not np.issubdtype(x.dtype, np.integer) or (
                x.size and (x.min() < 0 or x.max() >= size)):
            raise ValueError(f"indices.{name} must be (n_boot, {size}) integers in [0, {size}), got "
                             f"shape {x.shape}, dtype {x.dtype}")
    if len(subjects) != len(stimuli) or len(subjects) == 1:
        raise ValueError(f"indices must hold the same number (>= 2) of subject and stimulus resamples, got "
                         f"{len(subjects)} and {len(stimuli)}")
    return Resamples(subjects, stimuli)


def _full_scores(A: np.ndarray, V: np.ndarray, method: str) -> np.ndarray:
    """(M, S) comparisons of every model with every subject on all stimuli."""
    W = np.ones((1, A.shape[1]))
    return resampled.scores(A, W, resampled.prepared(V, W, method), method)[0]


def _bootstrap(V: np.ndarray, A: np.ndarray, X0: np.ndarray, draws: Resamples, over: tuple[str, ...],
               method: str, should_stop: Callable[[], bool] | None) -> tuple[dict, np.ndarray]:
    """Per kind of resample ("both", "subjects", "stimuli"; those ``over`` asks for) the (B, M)
    means over subjects of each resample and its (B, 2) noise ceiling; the (B,) usable resamples.

    One batch of resamples at a time: the models' and subjects' rows are ranked (or centred)
    under the batch's pair weights in one pass, and all models meet all subjects in one product;
    the resampled subjects only re-weigh those scores.
    """
    (s, k), b_all = V.shape, len(draws.stimuli)
    kinds = ("both", "subjects", "stimuli") if len(over) == 2 else over
    out = {kind: (np.full((b_all, A.shape[0]), np.nan), np.full((b_all, 2), np.nan)) for kind in kinds}
    C_all = np.stack([np.bincount(row, minlength=s) for row in draws.subjects]).astype(np.float64)
    ranked = method in ("spearman", "rho_a")
    ties_a, ties_v = (resampled.tie_groups(A), resampled.tie_groups(V)) if ranked else (None, None)
    step = max(1, _CHUNK_ELEMENTS // ((A.shape[0] + s + 2) * k))
    valid = np.ones(b_all, dtype=bool)
    if "stimuli" in over:
        valid = np.array([len(np.unique(row)) >= 3 for row in draws.stimuli])
    for start in range(0, b_all if "stimuli" in over else 0, step):
        stop_if_asked(should_stop)
        part = slice(start, start + step)
        C = C_all[part]
        W = resampled.pair_weights(draws.stimuli[part])
        XV = resampled.centred(V, W, method, ties_v)
        PV = resampled.scaled(XV, W, method)
        X = resampled.scores(A, W, PV, method, ties_a)
        for kind, counts in (("stimuli", np.ones_like(C)), ("both", C)):
            if kind in kinds:
                out[kind][0][part] = np.einsum("bms,bs->bm", X, counts) / s
                if s >= 2:
                    out[kind][1][part] = resampled.noise_ceilings(XV, PV, W, counts, method)
    if "subjects" in kinds:
        out["subjects"][0][:] = C_all @ X0.T / s
        # The ceiling of a resample of subjects depends only on how often each was drawn.
        counts, inverse = np.unique(C_all, axis=0, return_inverse=True)
        W = np.ones((1, k))
        XV = resampled.centred(V, W, method, ties_v)
        PV = resampled.scaled(XV, W, method)
        ceilings = np.empty((len(counts), 2))
        for start in range(0, len(counts), step):
            stop_if_asked(should_stop)
            C = counts[start:start + step]
            b = len(C)
            ceilings[start:start + step] = resampled.noise_ceilings(
                np.broadcast_to(XV, (b, s, k)), np.broadcast_to(PV, (b, s, k)), np.broadcast_to(W, (b, k)), C, method)
        out["subjects"][1][:] = ceilings[inverse.ravel()]
    return out, valid


def _variances(kinds: dict, valid: np.ndarray, over: tuple[str, ...], s: int, n: int):
    """The bootstrap variances of the models' scores (M,), of their differences (M, M) and of the
    lower noise ceiling, corrected as rsatoolbox's ``extract_variances``, and the dof."""
    def split(kind):
        evals, ceilings = kinds[kind]
        cov = np.atleast_2d(np.cov(np.concatenate([evals, ceilings], axis=1)[valid].T))
        m = evals.shape[1]
        d = np.diag(cov)[:m]
        return d, d[:, None] + d[None, :] - 2.0 * cov[:m, :m], cov[m, m]

    if len(over) == 1:
        factor = s if over == ("subjects",) else n
        return (*(factor / (factor - 1.0) * v for v in split(over[0])), factor - 1)
    both, subj, stim = split("both"), split("subjects"), split("stimuli")
    return (*(_dual_bootstrap(*v, s, n) for v in zip(both, subj, stim)), min(s, n) - 1)


def _dual_bootstrap(both: Any, subj: Any, stim: Any, s: int, n: int) -> Any:
    """rsatoolbox's ``_dual_bootstrap`` (small-sample form): the two-factor variance from the
    variances over both factors, subjects only and stimuli only."""
    a, b = s / (s - 1.0) * subj, n / (n - 1.0) * stim
    v = a + b - s * n / ((s - 1.0) * (n - 1.0)) * (both - subj - stim)
    return np.minimum(np.maximum(np.maximum(v, a), b), both)


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """The (M, M) symmetric p-values BH-corrected over their upper triangle (finite ones)."""
    out = p.copy()
    upper = np.triu_indices(len(p), 1)
    values = fdr_bh(p[upper])
    out[upper] = values
    out.T[upper] = values
    return out
