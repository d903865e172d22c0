"""Per-layer descriptors: how many dimensions a representation uses.

``dimensionality(X, method)`` for activations X (N stimuli x D features), centred over the
stimuli first (so a constant offset adds no dimension):

- ``participation_ratio``: (sum lambda)^2 / sum lambda^2 over the eigenvalues lambda of the
  covariance (Gao et al. 2017; Recanatesi et al. 2019), in [1, min(N - 1, D)]; it equals the
  number of directions when the variance is spread evenly over them.
- ``effective_rank``: exp of the Shannon entropy of the normalised singular values
  p_k = sigma_k / sum sigma (Roy & Vetterli 2007), in [1, min(N - 1, D)].

Both are invariant to orthogonal maps, isotropic scaling and translation of X. Computed from the
eigenvalues of the smaller of X_c'X_c and X_c X_c' (float64 sums of float32 GEMMs).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import torch

from compute.measures.numerics import centre_columns, gram_float64, one_blas_thread
from compute.measures.registry import DIMENSIONALITY_METHODS
from compute.measures.validate import as_matrix, check_not_constant, resolve_device


def dimensionality(X: Any, method: str = "participation_ratio", dtype: Any = None,
                   device: str | torch.device | None = None) -> float:
    """How many dimensions the activations X (N x D, N >= 3) use; see the module docstring.

    Returns a float in [1, min(N - 1, D)] (higher = more dimensions)."""
    if method not in DIMENSIONALITY_METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(DIMENSIONALITY_METHODS)}")
    Xt = as_matrix(X, "X", dtype=dtype, device=resolve_device(device))
    check_not_constant(Xt, "X")
    Xc = centre_columns(Xt)
    n, d = Xc.shape
    G = gram_float64(Xc if d <= n else Xc.T).cpu().numpy()
    with one_blas_thread():
        values = np.clip(scipy.linalg.eigh(G, eigvals_only=True, check_finite=False), 0.0, None)
    if method == "participation_ratio":
        return float(values.sum() ** 2 / np.sum(values * values))
    sigma = np.sqrt(values)
    p = sigma[sigma > 0] / sigma.sum()
    return float(np.exp(-np.sum(p * np.log(p))))
