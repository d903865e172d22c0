"""The CCA family: mean CCA, SVCCA, PWCCA, the top canonical correlation, and linear regression's R^2.

Each compares two representations of the same N stimuli, X (N x D_x) and Y (N x D_y), by the
canonical correlations between their centred column spaces: a **similarity** in [0, 1]
(higher = more alike). ``cca_mean`` averages all canonical correlations (invariant to any
invertible linear map of either side's features); ``svcca`` first keeps each side's leading
singular directions (``keep``, the variance fraction); ``pwcca`` weighs them by how much of the
narrower side's neurons each canonical direction accounts for (google/svcca ``compute_pwcca``
with the narrower layer first, in either argument order; not symmetric for equal widths, where
the first layer's neurons weigh); ``cca_rho_top`` is the largest canonical correlation. ``linear_reg``
(Kornblith et al. 2019's baseline) is the R^2 of the least-squares fit of Y from X,
||Q_X' Y_c||_F^2 / ||Y_c||_F^2, from the same whitened basis of X: asymmetric (X predicts Y).
``registry.MEASURES`` holds each one's invariances.

A side's basis is never formed when it has fewer features than stimuli: its whitener ``W`` (a
Cholesky factor, or the symmetric inverse square root for PWCCA) is kept, and a pair's
canonical correlations are the singular values of ``W_a' (X_a' X_b) W_b``.

Two rules hold for the whole family. **Dead units** (constant over the stimuli, to the data's
rounding) have no variance and no canonical direction: every measure drops them, and PWCCA
weighs only the live neurons of its side (google's ``get_cca_similarity`` likewise removes
neurons whose activations are below its ``epsilon``). **Rank** is decided scale-free, on the
column-standardised covariance: a direction is rounding noise when its eigenvalue there is
below ``(max(N, D) eps)^2`` of the largest (numpy's ``matrix_rank`` cut, on singular values),
so rescaling one unit, however strongly, changes nothing that CCA is invariant to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch

from compute.measures.numerics import centre_columns, crossprod_float64, gram_float64


def _rtol(X: torch.Tensor) -> float:
    """Relative eigenvalue cut of a standardised covariance below which a direction is rounding
    noise: singular values below ``max(N, D) eps`` of the largest, squared; and never below
    what a float64 eigensolver resolves."""
    size = max(X.shape)
    return max((size * torch.finfo(X.dtype).eps) ** 2, size * np.finfo(np.float64).eps)


def _centred_live(X: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """(X centred without its dead units, the live units' float64 means, their float64 Gram
    matrix Xc'Xc when there are fewer units than stimuli, else None).

    A unit is dead when its centred values' root mean square is within 8 eps of its mean, its
    own rounding. Data at least as wide as they are tall are centred twice, so the rounding of
    the first centring leaves no spurious direction along the ones vector.
    """
    Xc, mean = centre_columns(X, return_mean=True)
    n, d = Xc.shape
    S = gram_float64(Xc).cpu().numpy() if d < n else None
    squares = np.diagonal(S) if S is not None else Xc.square().sum(dim=0, dtype=torch.float64).cpu().numpy()
    live = np.sqrt(squares / n) > 8 * torch.finfo(X.dtype).eps * np.abs(mean)
    if not live.all():
        Xc = Xc.index_select(1, torch.from_numpy(np.flatnonzero(live)).to(Xc.device))
        mean = mean[live]
        S = S[np.ix_(live, live)] if S is not None else None
    if Xc.shape[1] >= n:
        Xc = centre_columns(Xc)
    elif S is None:
        S = gram_float64(Xc).cpu().numpy()
    return Xc, mean, S


# The least eigenvalue ratio an eigensolver on a covariance resolves to 1e-8 relative.
_RESOLVED = 1e8 * np.finfo(np.float64).eps


def _covariance_factor(S: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """(P, sigma): the eigenvectors of the covariance ``S`` and the square roots of their
    eigenvalues, over its rank.

    The rank is decided on the column-standardised ``S`` (so the count is the same for any unit
    scales), and the eigenpairs come from the SVD of ``diag(scale) Q sqrt(L)`` (Q L Q' the
    standardised ``S``), which resolves units of very different scales: an eigensolver on ``S``
    itself loses its small eigenvalues to rounding of its largest.
    """
    scale = np.sqrt(np.diagonal(S))
    R = S / np.outer(scale, scale)
    if _cholesky_factor(R, rtol) is not None:  # full rank, the common case: one eigensolver
        values, vectors = _eigh_desc(S)
        if values[-1] > _RESOLVED * values[0]:
            return vectors, np.sqrt(values)
    values, vectors = _eigh_desc(R)
    kept = _kept(values, rtol)
    factor = scale[:, None] * (vectors[:, kept] * np.sqrt(values[kept]))
    P, sigma, _ = np.linalg.svd(factor, full_matrices=False)
    return P, sigma


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


def _whitened_cross(a: _CCASide, b: _CCASide, M: np.ndarray | None = None) -> np.ndarray:
    """``W_a' F_a' F_b W_b`` (float64, r_a x r_b): the cross-covariance of the two orthonormal
    bases; ``M`` is ``F_a' F_b`` when already formed (e.g. with b's rows permuted)."""
    if M is None:
        M = crossprod_float64(a.F, b.F).cpu().numpy()
    return b.left(a.left(M).T).T


def _cholesky_factor(R: np.ndarray, rtol: float) -> np.ndarray | None:
    """Lower Cholesky factor of the correlation matrix R, or None when R is (nearly) singular."""
    L, info = scipy.linalg.lapack.dpotrf(R, lower=1, clean=1)
    if info != 0 or not np.min(np.diagonal(L)) ** 2 > rtol * len(R):
        return None
    return L


def _eigh_desc(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = scipy.linalg.eigh(S, driver="evd", check_finite=False)
    return values[::-1], vectors[:, ::-1]


def _kept(values: np.ndarray, rtol: float) -> np.ndarray:
    return values > rtol * max(values[0], 0.0)


def _basis(X: torch.Tensor, keep: float | None) -> _CCASide:
    """An orthonormal basis of the centred column space of X's live units, as a :class:`_CCASide`.

    ``keep=None`` (mean CCA): every direction above rounding noise of the column-standardised
    data (CCA is invariant to unit scales). ``keep`` (SVCCA): the fewest leading singular
    directions of the data as they are whose variance fraction reaches ``keep``, among those
    that are variance (:func:`_covariance_factor`).
    """
    Xc, _, S = _centred_live(X)
    n, d = Xc.shape
    rtol = _rtol(Xc)
    if S is None:  # at least as many units as stimuli: a basis of the Gram matrix's range
        if keep is None:
            Xc = Xc / Xc.square().sum(dim=0, dtype=torch.float64).sqrt().to(Xc.dtype)
        values, vectors = _eigh_desc(gram_float64(Xc.T).cpu().numpy())
        vectors = vectors[:, _kept(values, rtol)]
        if keep is not None:
            _, vectors = _leading(values[_kept(values, rtol)], vectors, keep)
        return _CCASide(torch.from_numpy(np.ascontiguousarray(vectors)).to(Xc), None)
    if keep is None:
        scale = np.sqrt(np.diagonal(S))
        R = S / np.outer(scale, scale)
        L = _cholesky_factor(R, rtol)
        if L is not None:
            return _CCASide(Xc, scale[:, None] * L, cholesky=True)  # S = (D L)(D L)'
        values, vectors = _eigh_desc(R)
        kept = _kept(values, rtol)
        return _CCASide(Xc, vectors[:, kept] / np.sqrt(values[kept]) / scale[:, None])
    vectors, sigma = _covariance_factor(S, rtol)
    values, vectors = _leading(sigma ** 2, vectors, keep)
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


def pair_cca(measure: str, a: _CCASide, b: _CCASide, options: dict, M: np.ndarray | None = None) -> float:
    """The mean canonical correlation of two prepared layers (``cca_rho_top``: the largest), in [0, 1]
    (``M``: ``F_a' F_b`` when already formed)."""
    rho = _singular_values(_whitened_cross(a, b, M))
    return float(rho.max() if measure == "cca_rho_top" else rho.mean())


@dataclass
class _RegressionState:
    """One layer for ``linear_reg``: as the predictor, an orthonormal basis of its centred
    column space (``side``); as the predicted, its centred data and their squared norm."""

    side: _CCASide
    Yc: torch.Tensor
    total: float


def prepare_regression(X: torch.Tensor, measure: str, options: dict) -> _RegressionState:
    """One layer X (N x D) for ``linear_reg`` in either role."""
    Yc = centre_columns(X)
    return _RegressionState(_basis(X, None), Yc, float(Yc.square().sum(dtype=torch.float64)))


def pair_regression(measure: str, a: _RegressionState, b: _RegressionState, options: dict) -> float:
    """R^2 of the least-squares fit of b from a: ||Q_a' Y_c||_F^2 / ||Y_c||_F^2 (Q_a orthonormal)."""
    return float(regression_values(a, b, crossprod_float64(a.side.F, b.Yc).cpu().numpy()[None])[0])


def regression_values(a: _RegressionState, b: _RegressionState, M: np.ndarray) -> np.ndarray:
    """R^2 of b from a for each (P x k_a x D_b) cross product ``M[s]`` = F_a' Y_c (Y_c's rows
    permuted for a null: its squared norm stays ``b.total``), one triangular solve for all."""
    P, k, d = M.shape
    projected = a.side.left(M.transpose(1, 0, 2).reshape(k, P * d))
    return (projected * projected).reshape(-1, P, d).sum(axis=(0, 2)) / b.total


@dataclass
class _PWState:
    """One side of PWCCA: google/svcca's symmetric whitening, its Gram matrix and neuron means."""

    side: _CCASide  # F = Xc with W = Sxx^-1/2 (symmetric), or a Gram eigenbasis when D >= N
    S: np.ndarray | None  # Xc'Xc (float64) when D < N: this side can supply the weights
    mean: np.ndarray  # (D,) float64 neuron means
    full_rank: bool  # no direction of Sxx was dropped


def prepare_pwcca(X: torch.Tensor, measure: str, options: dict) -> _PWState:
    """One layer X (N x D) for ``pwcca``: compute_pwcca's whitening, Gram matrix and means."""
    Xc, mean, S = _centred_live(X)
    rtol = _rtol(Xc)
    if S is None:
        norms = Xc.square().sum(dim=0, dtype=torch.float64).sqrt()
        values, vectors = _eigh_desc(gram_float64((Xc / norms.to(Xc.dtype)).T).cpu().numpy())
        basis = np.ascontiguousarray(vectors[:, _kept(values, rtol)])
        return _PWState(_CCASide(torch.from_numpy(basis).to(Xc), None), None, mean, False)
    # The symmetric Sxx^-1/2 (not a Cholesky whitener): compute_pwcca's directions U'(X - mu)
    # are defined in the basis it induces. Null directions (beyond the scale-free rank) get 0,
    # like its pinv.
    P, sigma = _covariance_factor(S, rtol)
    return _PWState(_CCASide(Xc, (P / sigma) @ P.T), S, mean, len(sigma) == len(mean))


def pair_pwcca(measure: str, a: _PWState, b: _PWState, options: dict, M: np.ndarray | None = None) -> float:
    """PWCCA of two prepared layers, in [0, 1], weighed by the narrower layer's neurons (``M``:
    ``F_a' F_b`` when already formed, e.g. with b's rows permuted: b's weights need only its
    Gram matrix and means, which permuting leaves as they are)."""
    # The narrower side first, whichever order the layers came in: compute_pwcca(narrower,
    # wider) adds the neuron means back to its directions, so its value depends on the signs
    # of the singular vectors, and U of svd(M) and V of svd(M') differ in sign. numpy's LAPACK
    # SVD, as compute_pwcca uses.
    first = len(a.mean) <= len(b.mean)
    state, other = (a, b) if first else (b, a)
    U, s, _ = np.linalg.svd(_whitened_cross(state.side, other.side, M if first or M is None else M.T))
    directions = U
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
