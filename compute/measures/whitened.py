"""RDM comparisons whitened for the dependence of their entries (Diedrichsen et al. 2021).

The K = N(N-1)/2 dissimilarities of an RDM are not independent: every stimulus enters N - 1 of
them. rsatoolbox's ``cosine_cov`` and ``corr_cov`` (with ``sigma_k`` the identity) weigh them
by the inverse of their covariance, which amounts to comparing the double-centred second-moment
matrices ``G = -1/2 H D H`` (H the centring matrix, D the square RDM) as whole matrices: the
cosine of ``vec(G_a)`` and ``vec(G_b)``. ``corr_cov`` first subtracts each RDM's mean
dissimilarity. Each RDM becomes one vector (its K off-diagonal entries times sqrt 2, then its N
diagonal entries) whose dot products are those cosines: one GEMM serves every pair.
"""
from __future__ import annotations

import numpy as np
import torch

from compute.measures.condensed import side_from_length

WHITENED = ("cosine_cov", "corr_cov")


def whitened_vectors(V: torch.Tensor, method: str, normalise: bool = True) -> torch.Tensor:
    """Unit rows (M, K + N) for condensed RDMs V (M, K), float64: dot products are ``method``'s
    similarities (``normalise=False``: before scaling to unit length, their norms are the RDMs'
    whitened norms up to one constant). An RDM whose centred second moment is zero (all
    dissimilarities equal under ``corr_cov``) is refused by the caller's constant check."""
    V = V.to(torch.float64)
    if method == "corr_cov":
        V = V - V.mean(dim=1, keepdim=True)
    n = side_from_length(V.shape[1])
    rows, cols = (torch.from_numpy(index).to(V.device) for index in np.triu_indices(n, 1))
    # Row means of the square RDM (zero diagonal), from its upper triangle.
    means = torch.zeros(V.shape[0], n, dtype=V.dtype, device=V.device)
    means.index_add_(1, rows, V).index_add_(1, cols, V)
    means /= n
    grand = means.mean(dim=1, keepdim=True)
    # G = -1/2 (D - r_i - r_j + m): off-diagonal entries, then the diagonal (D_ii = 0).
    off = -0.5 * (V - means[:, rows] - means[:, cols] + grand) * np.sqrt(2.0)
    diagonal = means - 0.5 * grand
    out = torch.cat([off, diagonal], dim=1)
    return out / torch.linalg.vector_norm(out, dim=1, keepdim=True) if normalise else out


def normalised_for_pooling(V: torch.Tensor, method: str) -> torch.Tensor:
    """The RDMs V (S, K) as rsatoolbox's ``pool_rdm`` scales them for ``method`` before
    averaging: each (less its mean for ``corr_cov``) divided by its whitened norm."""
    if method == "corr_cov":
        V = V - V.mean(dim=1, keepdim=True)
    return V / torch.linalg.vector_norm(whitened_vectors(V, method, normalise=False), dim=1, keepdim=True)
