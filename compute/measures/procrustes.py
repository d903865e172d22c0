"""Procrustes: the angular Procrustes distance between two representations of the same stimuli.

X (N x D_x) and Y (N x D_y) are centred and scaled to unit Frobenius norm; the distance is
arccos of the largest inner product of X with an orthogonal transform of Y, i.e. arccos of the
nuclear norm of X'Y (Williams et al. 2021). A **distance** in radians, in [0, pi/2]: lower =
more alike, 0 when Y is a rotation or reflection of X up to scale; a metric over the layers.
"""
from __future__ import annotations

import torch

from compute.measures.numerics import centre_columns, gram_float64


def prepare_procrustes(X: torch.Tensor, measure: str, options: dict) -> torch.Tensor:
    """A float64 factor F with FF' = XcXc', unit Frobenius norm, at most N columns.

    Float64 throughout: arccos near 1 turns a rounding error e in the cosine into sqrt(2e)
    radians (3e-4 for float32), so the nuclear norm must be exact well beyond float32.
    """
    Xc = centre_columns(X)
    n, d = Xc.shape
    if d <= n:
        F = Xc.to(torch.float64)
    else:
        values, vectors = torch.linalg.eigh(gram_float64(Xc.T))
        F = vectors * values.clamp(min=0).sqrt()
    return F / torch.linalg.matrix_norm(F)


def pair_procrustes(measure: str, a: torch.Tensor, b: torch.Tensor, options: dict) -> float:
    """The distance of two prepared layers, in radians."""
    # Zero-padding the narrower side to equal widths leaves the nuclear norm unchanged.
    nuclear = torch.linalg.svdvals(a.T @ b).sum()
    return float(torch.arccos(nuclear.clamp(-1.0, 1.0)))
