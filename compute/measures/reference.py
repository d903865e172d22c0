"""Candidate RDMs (model layers) against a reference measured in several subjects.

The score of a candidate is its comparison with each subject's RDM, averaged over subjects
(Nili et al., 2014; rsatoolbox's evaluation): the quantity the noise ceiling bounds. With one
subject it is simply the comparison with the reference.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from compute.errors import stop_if_asked
from compute.measures import resampled
from compute.measures.compare import as_rdm_vector, compare_rdms
from compute.measures.registry import COMPARE_METHODS
from compute.measures.stats import bootstrap, noise_ceiling

_CHUNK_ELEMENTS = 1 << 22  # candidates' ranks (float64) held at once by the batched estimates

# The columns of :func:`fit_reference`'s result, in order.
FIT_COLUMNS = ("estimate", "ci_low", "ci_high", "ceiling_lower", "ceiling_upper")


def fit_reference(
    rdms: Sequence[Any], subjects: Any, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
    ci: float = 0.95, progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Score each candidate RDM against the subjects' RDMs, with a bootstrap CI and the noise ceiling.

    Parameters
    ----------
    rdms : sequence of R candidate RDMs, each (N, N) or condensed (K,), over the reference's N stimuli
    subjects : (S, K) condensed or (S, N, N) square RDMs of S >= 1 subjects
    method : str
        A ``COMPARE_METHODS`` name; for the similarities higher = more alike, for the
        distances ``euclidean``/``manhattan`` lower = more alike.
    n_boot : int
        Bootstrap resamples of the stimuli (``compute.bootstrap``, seed ``seed``: every
        candidate and subject sees the same resamples); 0 = no interval.
    ci : float
        Coverage of the percentile interval.

    Returns
    -------
    np.ndarray, shape (R, 5), float64
        Columns :data:`FIT_COLUMNS`: the mean over subjects of ``compare_rdms(candidate,
        subject)``; the percentile interval of that mean over the stimulus resamples (NaN when
        ``n_boot`` is 0); the noise ceiling's lower and upper bounds (``compute.noise_ceiling``,
        the same on every row; NaN with one subject).
    """
    if method not in COMPARE_METHODS:
        raise ValueError(f"unknown RDM comparison method {method!r}; choose one of {sorted(COMPARE_METHODS)}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    subjects = np.asarray(subjects, dtype=np.float64)
    if subjects.ndim not in (2, 3) or not len(subjects):
        raise ValueError(f"subjects must be (S, K) condensed or (S, N, N) square RDMs of S >= 1 subjects, "
                         f"got shape {subjects.shape}")
    subjects = np.stack([as_rdm_vector(x, f"subjects[{s}]")[0].numpy() for s, x in enumerate(subjects)])
    out = np.full((len(rdms), len(FIT_COLUMNS)), np.nan)
    if len(subjects) >= 2:
        out[:, 3:] = noise_ceiling(subjects, method)
    steps = max(1, len(rdms) * len(subjects))
    batched = None if n_boot else _batched_estimates(rdms, subjects, method, progress, should_stop)
    if batched is not None:
        out[:, 0] = batched
        return out
    for r, rdm in enumerate(rdms):
        estimates, samples = [], []
        for s, subject in enumerate(subjects):
            stop_if_asked(should_stop)
            if n_boot:
                result = bootstrap(rdm, subject, method, n_boot=n_boot, seed=seed, ci=ci, should_stop=should_stop)
                estimates.append(result.estimate)
                samples.append(result.samples)
            else:
                estimates.append(compare_rdms(rdm, subject, method, dtype=np.float64, device="cpu"))
            if progress is not None:
                progress((r * len(subjects) + s + 1) / steps)
        out[r, 0] = np.mean(estimates)
        if n_boot:
            means = np.mean(samples, axis=0)  # one value per resample; NaN where any subject's is
            finite = means[np.isfinite(means)]
            if len(finite):
                out[r, 1:3] = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2])
    return out


def _batched_estimates(rdms: Sequence[Any], subjects: np.ndarray, method: str,
                       progress: Callable[[float], None] | None,
                       should_stop: Callable[[], bool] | None) -> np.ndarray | None:
    """(R,) each candidate's comparison with each subject, averaged over subjects, as the loop of
    :func:`fit_reference` computes it, for a comparison with a batched form: every candidate
    ranked (or centred) once and compared with all subjects in one product per chunk of
    candidates (:func:`compute.measures.resampled.scores` under unit weights, as
    ``evaluate_models``' point estimates). None for input the loop must judge (square or
    mismatched RDMs, non-finite values, a constant RDM under a correlation): it says why."""
    k = subjects.shape[1]
    if method not in resampled.WEIGHTED_METHODS or not len(rdms):
        return None
    A = [np.asarray(rdm) for rdm in rdms]
    if any(a.shape != (k,) or not np.issubdtype(a.dtype, np.number) for a in A):
        return None
    A = np.stack(A).astype(np.float64)
    if not np.isfinite(A).all():
        return None
    if COMPARE_METHODS[method].kind == "similarity" and any(
            (np.ptp(x, axis=1) == 0).any() or not np.abs(x).max(axis=1).all() for x in (A, subjects)):
        return None
    W = np.ones((1, k))
    PV = resampled.prepared(subjects, W, method)
    out = np.empty(len(A))
    step = max(1, _CHUNK_ELEMENTS // k)
    for start in range(0, len(A), step):
        stop_if_asked(should_stop)
        out[start:start + step] = resampled.scores(A[start:start + step], W, PV, method)[0].mean(axis=1)
        if progress is not None:
            progress(min(len(A), start + step) / len(A))
    return out
