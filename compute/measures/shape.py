"""Generalised shape metrics (Williams et al. 2021; netrep): ``shape_alpha`` and ``permutation``.

Both are **distances** in radians, lower = more alike, and proper metrics over layers (symmetric,
zero for equivalent representations, triangle inequality): each maps a layer to a point on the
unit sphere and takes the angle to the nearest point of the other layer's orbit under a group of
isometries (orthogonal maps, or permutations of the units). Widths may differ: layers are
zero-padded to a common width, which leaves ``shape_alpha`` unchanged; for ``permutation`` it
means a unit may stay unmatched (see there).

- ``shape_alpha`` (option ``alpha`` in [0, 1], default 0.5): angular Procrustes distance between
  partially whitened layers. With X_c = U S V' (centred, rank r), the layer becomes
  U diag(alpha s / ||s|| + (1 - alpha) / sqrt(r)) V': ``alpha`` x the data at unit norm plus
  (1 - alpha) x its whitened version at unit norm, i.e. netrep's ``LinearMetric(alpha,
  center_columns=True, score_method="angular")`` on each layer rescaled to ||X_c||_F^2 = r (netrep
  mixes data of whatever scale with whitened data, so its value changes with the data's units;
  ours is invariant to isotropic scaling). ``alpha = 1`` is ``procrustes`` exactly; ``alpha = 0``
  is arccos(sum of canonical correlations / sqrt(r_x r_y)), the CCA angle (arccos of mean CCA
  for equal ranks). Rank: singular values above max(N, D) eps(dtype) of the largest.
- ``permutation``: angular distance after the best one-to-one matching of units (netrep's
  ``PermutationMetric`` on both layers zero-padded to D_x + D_y units): centred, unit Frobenius
  norm, then arccos of the largest trace(X' Y Pi) over matchings in which any unit may stay
  unmatched (matched to a padding zero), from ``linear_sum_assignment`` on the cross-covariance
  clipped at 0 (O(D^3): seconds at D = 4,096). In [0, pi/2]. Padding each pair only to its wider
  side (netrep's default) forces negatively related units to be matched and breaks the triangle
  inequality across layers of different widths (widths 1, 1, 2: 2.49 > 1.49 + 0.85); padding to
  D_x + D_y gives the value any common padding of a whole grid would, so it is a metric over
  every set of layers.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import torch

from compute.measures.numerics import centre_columns, crossprod_float64, gram_float64
from compute.measures.procrustes import pair_procrustes, prepare_procrustes


def check_alpha(alpha) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (1 = procrustes, 0 = fully whitened), got {alpha!r}")
    return float(alpha)


def prepare_shape(X: torch.Tensor, measure: str, options: dict) -> torch.Tensor:
    """``shape_alpha``: a float64 factor F (N x r) with F F' = phi(X) phi(X)', phi(X) the
    partially whitened layer at unit norm (the pair needs only F, as for ``procrustes``)."""
    alpha = check_alpha(options["alpha"])
    if alpha == 1.0:
        return prepare_procrustes(X, measure, options)
    Xc = centre_columns(X)
    n, d = Xc.shape
    cut = max(n, d) * torch.finfo(X.dtype).eps  # numpy's matrix_rank, on singular values
    if d <= n:
        U, s, _ = torch.linalg.svd(Xc.to(torch.float64), full_matrices=False)
    else:
        G = gram_float64(Xc.T)
        means = G.mean(dim=0)  # centred again in float64: no rounding direction along the ones vector
        values, U = torch.linalg.eigh(G - means[None, :] - means[:, None] + means.mean())
        values, U = values.flip(0), U.flip(1)
        # An eigensolver resolves eigenvalues only to ~N eps64 of the largest.
        cut = math.sqrt(max(cut * cut, n * np.finfo(np.float64).eps))
        s = values.clamp(min=0).sqrt()
    kept = s > cut * s[0]
    U, s = U[:, kept], s[kept]
    mix = alpha * s / torch.linalg.vector_norm(s) + (1 - alpha) / math.sqrt(len(s))
    F = U * mix
    return F / torch.linalg.matrix_norm(F)


def pair_shape(measure: str, a: torch.Tensor, b: torch.Tensor, options: dict) -> float:
    return pair_procrustes(measure, a, b, options)


def prepare_permutation(X: torch.Tensor, measure: str, options: dict) -> torch.Tensor:
    """``permutation``: the centred layer in float64 at unit Frobenius norm (float64 because
    arccos near 1 turns a float32 rounding e of the cosine into sqrt(2e) radians, 5e-4)."""
    Xc = centre_columns(X).to(torch.float64)
    return Xc / torch.linalg.matrix_norm(Xc)


def pair_permutation(measure: str, a: torch.Tensor, b: torch.Tensor, options: dict) -> float:
    """The angle, in radians, after the best matching of a's units to b's (a unit matched with
    a negative cross-covariance is better left unmatched, at 0)."""
    return assignment_angle(crossprod_float64(a, b).cpu().numpy())


def assignment_angle(M: np.ndarray) -> float:
    """The permutation metric from the cross-covariance ``M`` (D_a x D_b, float64) of two
    prepared layers: arccos of the best matching's summed positive entries."""
    C = np.maximum(M, 0.0)
    rows, cols = scipy.optimize.linear_sum_assignment(C, maximize=True)
    return float(np.arccos(np.clip(C[rows, cols].sum(), -1.0, 1.0)))
