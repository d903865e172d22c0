"""RDMs from repeated measurements: cross-validated (crossnobis) and Mahalanobis distances.

``X`` holds R repeated measurements (runs, trials) of N stimuli over D channels: (R, N, D).
The noise precision ``P`` (D x D) whitens the channels: given, the identity (None), or
``"shrinkage"``, a Ledoit-Wolf estimate (shrunk towards a multiple of the identity, as
rsatoolbox's ``shrinkage_eye``) from the residuals of each measurement about its stimulus mean,
with N (R - 1) degrees of freedom.

**Crossnobis** (Walther et al. 2016; rsatoolbox ``calc_rdm(method="crossnobis")`` with the runs
as the cross-validation descriptor): for each run r, the patterns of the other runs' mean and of
run r are compared, ``(a_i - a_j)' P (b_i - b_j) / D``, and the R folds averaged. Noise is
independent across runs, so the estimate is unbiased: its expectation is the true squared
Mahalanobis distance, 0 for identical stimuli, and single entries can be negative. All folds
come from two Gram matrices: the mean over folds of A_r P X_r' is
``(S P S' - sum_r X_r P X_r') / (R (R - 1))`` with S the sum over runs.

**Mahalanobis**: ``(m_i - m_j)' P (m_i - m_j) / D`` of the patterns averaged over repeats
(rsatoolbox ``calc_rdm(method="mahalanobis")``); biased upwards by the noise.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from compute.measures.validate import resolve_device, resolve_dtype

_NOISE = "noise must be a (D, D) precision matrix, 'shrinkage' or None (the identity)"


def _repeats(X: Any, method: str, least: int) -> torch.Tensor:
    array = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X).to(torch.float64)
    if array.ndim == 2 and least <= 1:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{method} needs repeated measurements X of shape (R repeats, N stimuli, D "
                         f"channels); got shape {tuple(array.shape)}")
    r, n, _ = array.shape
    if r < least:
        raise ValueError(f"{method} needs at least {least} repeated measurements of every stimulus "
                         f"(cross-validation over repeats); got {r}")
    if n < 3:
        raise ValueError(f"an RDM needs N >= 3 stimuli; got {n}")
    bad = torch.nonzero(~torch.isfinite(array).all(dim=2))
    if len(bad):
        repeat, stimulus = (int(v) for v in bad[0])
        raise ValueError(f"X has NaN or infinite values (repeat {repeat}, stimulus {stimulus} first, "
                         f"{len(bad)} patterns in all)")
    return array


def noise_precision(X: Any) -> np.ndarray:
    """The Ledoit-Wolf shrinkage precision (D x D) of the residuals of X (R, N, D) about each
    stimulus's mean over repeats; R >= 2."""
    X = _repeats(X, "a noise estimate", 2)
    r, n, d = X.shape
    residuals = (X - X.mean(dim=0, keepdim=True)).reshape(r * n, d)
    rows = residuals.shape[0]
    s = residuals.T @ residuals / rows
    squares = residuals * residuals
    b2 = float(((squares.T @ squares) / rows - s * s).sum()) / rows
    m = float(torch.trace(s)) / d
    d2 = float(((s - m * torch.eye(d, dtype=s.dtype)) ** 2).sum())
    b2 = min(d2, b2)
    shrunk = (b2 / d2) * m * torch.eye(d, dtype=s.dtype) + ((d2 - b2) / d2) * s
    shrunk *= rows / (n * (r - 1))
    return np.linalg.inv(shrunk.numpy())


def _precision(noise: Any, X: torch.Tensor) -> torch.Tensor | None:
    d = X.shape[2]
    if noise is None:
        return None
    if isinstance(noise, str):
        if noise != "shrinkage":
            raise ValueError(f"{_NOISE}; got {noise!r}")
        return torch.from_numpy(noise_precision(X))
    P = torch.as_tensor(np.asarray(noise, dtype=np.float64))
    if P.shape != (d, d):
        raise ValueError(f"{_NOISE} for D = {d} channels; got shape {tuple(P.shape)}")
    if not torch.isfinite(P).all():
        raise ValueError("the noise precision has NaN or infinite entries")
    return P


def _condensed_distances(M: torch.Tensor, d: int) -> torch.Tensor:
    """``(M_ii + M_jj - 2 M_ij) / D`` over the upper triangle of a symmetric kernel M."""
    n = M.shape[0]
    rows, cols = (torch.from_numpy(index).to(M.device) for index in np.triu_indices(n, 1))
    diagonal = M.diagonal()
    return (diagonal[rows] + diagonal[cols] - 2.0 * M[rows, cols]) / d


def crossnobis_rdm(X: Any, noise: Any = None, dtype: Any = None, device: Any = None) -> np.ndarray:
    """The crossnobis RDM (condensed, N(N-1)/2) of repeated measurements X (R >= 2, N, D)."""
    X = _repeats(X, "crossnobis", 2)
    P = _precision(noise, X)
    dev = resolve_device(device)
    X = X.to(dev)
    r, _, d = X.shape
    total = X.sum(dim=0)
    weighted = X if P is None else X @ P.to(dev)  # X_r P, one batched GEMM
    within = torch.einsum("rnd,rmd->nm", weighted, X)  # sum_r X_r P X_r'
    across = (total @ P.to(dev) if P is not None else total) @ total.T
    M = (across - within) / (r * (r - 1))
    M = (M + M.T) / 2  # exact symmetry
    return _condensed_distances(M, d).to(resolve_dtype(dtype)).cpu().numpy()


def mahalanobis_rdm(X: Any, noise: Any = None, dtype: Any = None, device: Any = None) -> np.ndarray:
    """The squared Mahalanobis RDM (condensed) of X (N, D), or of (R, N, D) averaged over repeats."""
    X = _repeats(X, "mahalanobis", 1)
    P = _precision(noise, X)
    dev = resolve_device(device)
    patterns = X.mean(dim=0).to(dev)
    M = (patterns if P is None else patterns @ P.to(dev)) @ patterns.T
    M = (M + M.T) / 2
    return _condensed_distances(M, X.shape[2]).to(resolve_dtype(dtype)).cpu().numpy()
