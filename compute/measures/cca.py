"""The CCA family: mean CCA, SVCCA and PWCCA.

Each compares two representations of the same N stimuli, X (N x D_x) and Y (N x D_y), by the
canonical correlations between their centred column spaces: a **similarity** in [0, 1]
(higher = more alike). ``cca_mean`` averages all canonical correlations (invariant to any
invertible linear map of either side's features); ``svcca`` first keeps each side's leading
singular directions (``keep``, the variance fraction); ``pwcca`` weighs them by how much of the
narrower side's neurons each canonical direction accounts for (google/svcca ``compute_pwcca``;
not symmetric). ``registry.MEASURES`` holds each one's invariances.

A side's basis is never formed when it has fewer features than stimuli: its whitener ``W`` (a
Cholesky factor, or the symmetric inverse square root for PWCCA) is kept, and a pair's
canonical correlations are the singular values of ``W_a' (X_a' X_b) W_b``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch

from compute.measures.numerics import centre_columns, crossprod_float64, gram_float64


def _rtol(X: torch.Tensor) -> float:
    """Relative eigenvalue cut below which a direction is rounding noise, not variance."""
    return max(X.shape) * torch.finfo(X.dtype).eps


@dataclass
class _CCASide:
    """One side of the CCA family: ``F`` (N x k, the centred data or an orthonormal basis) and a
    whitener ``W`` such that ``F W`` has orthonormal columns spanning the data's centred column
    space. ``W`` is a float64 matrix (k x r), a lower Cholesky factor ``L`` of F'F standing for
    ``L^-T`` (``cholesky=True``), or None for the identity. The basis itself is never formed: a
    pair's canonical correlations are the singular values of ``W_a' (F_a' F_b) W_b``, so the
    N-sized work is one cross GEMM per pair (and each side's Gram matrix, once)."""

    F: torch.Tensor
    W: np.ndarray | None
    cholesky: bool = False

    def left(self, M: np.ndarray) -> np.ndarray:
        """``W' M`` for a float64 (k x m) matrix M."""
        if self.W is None:
            return M
        if self.cholesky:
            return scipy.linalg.solve_triangular(self.W, M, lower=True, check_finite=False)
        return self.W.T @ M


def _whitened_cross(a: _CCASide, b: _CCASide) -> np.ndarray:
    """``W_a' F_a' F_b W_b`` (float64, r_a x r_b): the cross-covariance of the two orthonormal bases."""
    M = crossprod_float64(a.F, b.F).cpu().numpy()
    return b.left(a.left(M).T).T


def _cholesky_factor(S: np.ndarray, rtol: float) -> np.ndarray | None:
    """Lower Cholesky factor of S, or None when S is (nearly) singular."""
    L, info = scipy.linalg.lapack.dpotrf(S, lower=1, clean=1)
    if info != 0 or not np.min(np.diagonal(L)) ** 2 > rtol * np.max(np.diagonal(S)):
        return None
    return L


def _eigh_desc(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = scipy.linalg.eigh(S, driver="evd", check_finite=False)
    return values[::-1], vectors[:, ::-1]


def _kept(values: np.ndarray, rtol: float) -> np.ndarray:
    return values > rtol * max(values[0], 0.0)


def _basis(X: torch.Tensor, keep: float | None) -> _CCASide:
    """An orthonormal basis of the centred column space of X, as a :class:`_CCASide`.

    ``keep=None``: every direction with variance above rounding noise (mean CCA). ``keep``: the
    fewest leading singular directions whose variance fraction reaches ``keep`` (SVCCA).
    """
    Xc = centre_columns(X)
    n, d = Xc.shape
    rtol = _rtol(Xc)
    wide = d >= n
    S = gram_float64(Xc.T if wide else Xc).cpu().numpy()
    if keep is None and not wide:
        L = _cholesky_factor(S, rtol)
        if L is not None:
            return _CCASide(Xc, L, cholesky=True)
    values, vectors = _eigh_desc(S)
    values, vectors = values[_kept(values, rtol)], vectors[:, _kept(values, rtol)]
    if keep is not None:
        values, vectors = _leading(values, vectors, keep)
    if wide:
        return _CCASide(torch.from_numpy(np.ascontiguousarray(vectors)).to(Xc), None)
    return _CCASide(Xc, vectors / np.sqrt(values))


def _leading(values: np.ndarray, vectors: np.ndarray, keep: float):
    fraction = np.cumsum(values) / np.sum(values)
    k = min(int((fraction < keep).sum()) + 1, len(values))
    return values[:k], vectors[:, :k]


def _singular_values(M: np.ndarray) -> np.ndarray:
    """Singular values of M from the eigenvalues of its smaller Gram matrix (faster than an SVD;
    a singular value s is exact to about eps / s, which is far below float32 data's rounding)."""
    G = M.T @ M if M.shape[1] <= M.shape[0] else M @ M.T
    values = scipy.linalg.eigh(G, eigvals_only=True, driver="evr", check_finite=False)
    return np.sqrt(np.clip(values, 0.0, 1.0))


def prepare_cca(X: torch.Tensor, measure: str, options: dict) -> _CCASide:
    """One layer X (N x D) for ``cca_mean`` / ``svcca``: its whitened centred column space."""
    return _basis(X, options.get("keep") if measure == "svcca" else None)


def pair_cca(measure: str, a: _CCASide, b: _CCASide, options: dict) -> float:
    """The mean canonical correlation of two prepared layers, in [0, 1]."""
    return float(_singular_values(_whitened_cross(a, b)).mean())


@dataclass
class _PWState:
    """One side of PWCCA: google/svcca's symmetric whitening, its Gram matrix and neuron means."""

    side: _CCASide  # F = Xc with W = Sxx^-1/2 (symmetric), or a Gram eigenbasis when D >= N
    S: np.ndarray | None  # Xc'Xc (float64) when D < N: this side can supply the weights
    mean: np.ndarray  # (D,) float64 neuron means
    full_rank: bool  # no direction of Sxx was dropped


def prepare_pwcca(X: torch.Tensor, measure: str, options: dict) -> _PWState:
    """One layer X (N x D) for ``pwcca``: compute_pwcca's whitening, Gram matrix and means."""
    Xc, mean = centre_columns(X, return_mean=True)
    n, d = Xc.shape
    rtol = _rtol(Xc)
    if d >= n:
        values, vectors = _eigh_desc(gram_float64(Xc.T).cpu().numpy())
        basis = np.ascontiguousarray(vectors[:, _kept(values, rtol)])
        return _PWState(_CCASide(torch.from_numpy(basis).to(Xc), None), None, mean, False)
    # The symmetric Sxx^-1/2 (not a Cholesky whitener): compute_pwcca's directions U'(X - mu)
    # are defined in the basis it induces. Null directions get 0, like its pinv.
    S = gram_float64(Xc).cpu().numpy()
    values, vectors = scipy.linalg.eigh(S, driver="evd", check_finite=False)
    kept = values > rtol * max(values.max(), 0.0)
    V = vectors[:, kept]
    W = (V / np.sqrt(values[kept])) @ V.T
    return _PWState(_CCASide(Xc, W), S, mean, bool(kept.all()))


def pair_pwcca(measure: str, a: _PWState, b: _PWState, options: dict) -> float:
    """PWCCA of two prepared layers, in [0, 1], weighed by the narrower layer's neurons."""
    M = _whitened_cross(a.side, b.side)
    # numpy's LAPACK SVD, as in compute_pwcca: its directions add the neuron means back, so the
    # result depends on the singular vectors' signs, and those differ between SVD libraries.
    U, s, Vt = np.linalg.svd(M)
    state, directions = (a, U) if len(a.mean) <= len(b.mean) else (b, Vt.T)
    n, width = state.side.F.shape[0], len(state.mean)
    if state.S is None:
        raise ValueError(
            f"pwcca needs more stimuli than the narrower layer has features (N={n}, D={width}); "
            "use more stimuli, reduce the features (e.g. pooling), or use svcca"
        )
    coefs = np.zeros(width)
    coefs[: len(s)] = s[:width]
    weights = _projection_weights(state, directions)
    return float(np.sum(weights * coefs) / np.sum(weights))


# Least reciprocal condition number (LAPACK's estimate) of the column-equilibrated Dir'Dir for
# the D x D route. Measured against the N x D QR (float64, tests/unit/test_similarity.py): a
# neuron mean 1e4 x the spread gives rcond 5e-10 and 1e-13 relative difference, 1e6 gives
# 5e-14 and 1e-10; the worst-case bound (1e-16 / rcond) is far more pessimistic.
_CHOLESKY_QR_RCOND = 1e-10


def _projection_weights(state: _PWState, U: np.ndarray) -> np.ndarray:
    """compute_pwcca's weights: with P the Q factor of the directions Dir = Xc U + 1 mu', the row
    sums of |P' X| over the uncentred neurons X = Xc + 1 mu'.

    From D x D quantities when Dir is well conditioned: Dir'Dir = U' Sxx U + N mu mu' (Xc'1 = 0),
    its Cholesky factor R gives P = Dir R^-1, and since X = Dir U' + 1 (mu - U mu)',
    P'X = R U' + (P'1)(mu - U mu)' with P'1 = R^-T (N mu). Otherwise (dropped directions, an
    ill-conditioned Dir) the float64 N x D QR of the directions, as compute_pwcca does.
    """
    mean, Xc = state.mean, state.side.F
    n = Xc.shape[0]
    if state.full_rank:
        G = U.T @ state.S @ U + n * np.outer(mean, mean)
        scale = np.sqrt(np.diagonal(G))
        equilibrated = G / np.outer(scale, scale)
        R, info = scipy.linalg.lapack.dpotrf(equilibrated, lower=0, clean=1)
        if info == 0:
            rcond, _ = scipy.linalg.lapack.dpocon(R, np.abs(equilibrated).sum(axis=0).max())
        if info == 0 and rcond > _CHOLESKY_QR_RCOND:
            R = R * scale  # G = R' R
            ones = scipy.linalg.solve_triangular(R, n * mean, trans="T", check_finite=False)  # P'1
            return np.abs(R @ U.T + np.outer(ones, mean - U @ mean)).sum(axis=1)
    X64 = Xc.to(torch.float64)
    mu = torch.from_numpy(mean).to(X64.device)
    P, _ = torch.linalg.qr(X64 @ torch.from_numpy(U).to(X64.device) + mu)
    return (P.T @ (X64 + mu)).abs().sum(dim=1).cpu().numpy()
