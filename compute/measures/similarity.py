"""Similarity of two representations of the same stimuli: CKA family, RV/RV2, CCA family, Procrustes.

Every measure takes activations ``X`` (N stimuli x D_x features) and ``Y`` (N x D_y), the same
stimuli in the same order, and returns one number. ``MEASURES`` says for each whether it is a
similarity (higher = more alike) or a distance (lower = more alike), its range and invariances.

Numerics: the data are held in ``dtype`` (float32 by default) on ``device``; every long reduction
(over stimuli, features or Gram entries) is accumulated in float64 by summing float32 GEMMs over
row blocks, and the small (D x D or N x N) linear algebra after it runs in float64.
On the CPU the elementwise passes between the GEMMs run in numpy, in one thread: torch's
two-thread passes stall on a machine whose cores other processes share (see ``rdm``). The
D x D factorisations run in scipy's LAPACK on the host, on one OpenBLAS thread (``host``).

``layer_grid`` prepares each layer once (its centred kernel, feature factor, whitened basis...)
and then forms every pair from those; ``similarity(X, Y)`` is the 1 x 1 case of the same code.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import torch

from compute.measures.registry import MEASURES
from compute.measures.host import column_means, one_blas_thread
from compute.measures.validate import (
    as_matrix,
    check_not_constant,
    check_same_stimuli,
    resolve_device,
    resolve_dtype,
)



_OPTIONS: dict[str, dict[str, float]] = {"cka_rbf": {"threshold": 1.0}, "svcca": {"keep": 0.99}}
_SYMMETRIC = set(MEASURES) - {"pwcca"}
_LINEAR_FAMILY = ("cka_linear", "rv", "rv2", "cka_debiased")

# Rows per block of a float32 GEMM whose partial sums are added in float64.
_ROW_BLOCK = 4096
# Gram-route kernels with at most this many entries (N <= 2048) are kept in float64.
_EXACT_KERNEL_ELEMENTS = 1 << 22
# Above this many (block x Da x Db) partial-product entries, loop over blocks instead of batching.
_BATCHED_ELEMENTS = 1 << 22
# Least multiply-adds per GEMM call of a symmetric product split into column blocks.
_SELF_BLOCK_WORK = 1 << 28


# ---------------------------------------------------------------------------------------------
# numerics shared with srm.py
# ---------------------------------------------------------------------------------------------
def tn_float64(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A.T @ B`` (a reduction over the rows) as float64, from GEMMs over blocks of rows.

    float32 GEMMs accumulate in float32; summing their block results in float64 keeps long
    reductions (N up to 1e5, N^2 Gram entries) at float32-GEMM accuracy per block only.
    """
    if A.dtype == torch.float64 and B.dtype == torch.float64:
        return A.T @ B
    rows, blocks = A.shape[0], A.shape[0] // _ROW_BLOCK
    host = A.device.type == "cpu"
    if blocks > 1 and blocks * A.shape[1] * B.shape[1] <= _BATCHED_ELEMENTS:
        # Skinny operands (flattened Gram matrices): one batched GEMM instead of a Python loop.
        whole = blocks * _ROW_BLOCK
        parts = torch.bmm(
            A[:whole].reshape(blocks, _ROW_BLOCK, -1).transpose(1, 2),
            B[:whole].reshape(blocks, _ROW_BLOCK, -1),
        )
        out = parts.numpy().sum(0, dtype=np.float64) if host else parts.sum(dim=0, dtype=torch.float64)
        starts = range(whole, rows, _ROW_BLOCK)
    else:
        out, starts = None, range(0, rows, _ROW_BLOCK)
    for start in starts:
        part = A[start:start + _ROW_BLOCK].T @ B[start:start + _ROW_BLOCK]
        part = part.numpy().astype(np.float64) if host else part.to(torch.float64)
        if out is None:
            out = part
        else:
            out += part
    return torch.from_numpy(out) if host else out


def gram_float64(F: torch.Tensor) -> torch.Tensor:
    """``F.T @ F`` as float64, from the column blocks on and above the diagonal of the product.

    At most 8 blocks (9/16 of the full GEMM's work), each GEMM call at least N x 128 x D and
    ``_SELF_BLOCK_WORK`` multiply-adds: on a shared machine every call waits for both threads,
    and four calls at N = 2,000, D = 512 took longer than the one full product.
    """
    n, d = F.shape
    width = max(128, -(-d // 8), -(-_SELF_BLOCK_WORK // max(n * d, 1)))
    if width >= d:
        return tn_float64(F, F)
    G = torch.empty((d, d), dtype=torch.float64, device=F.device)
    for start in range(0, d, width):
        stop = min(start + width, d)
        block = tn_float64(F[:, start:stop], F[:, start:])
        G[start:stop, start:] = block
        G[stop:, start:stop] = block[:, stop - start:].T
    return G


def centre_columns(X: torch.Tensor, return_mean: bool = False):
    """Subtract each feature's mean over stimuli; with ``return_mean``, also the (D,) float64
    means as a numpy array."""
    if X.device.type == "cpu":
        values = X.numpy()
        mean = column_means(values)
        centred = torch.from_numpy(values - mean.astype(values.dtype))
    else:
        mean = X.mean(dim=0, dtype=torch.float64)
        centred = X - mean.to(X.dtype)
        mean = mean.cpu().numpy()
    return (centred, mean) if return_mean else centred


def _sum_squares(M: torch.Tensor) -> float:
    """Sum of the squared entries of a float64 tensor."""
    values = M.numpy() if M.device.type == "cpu" else M
    return float((values * values).sum())


def _rtol(X: torch.Tensor) -> float:
    """Relative eigenvalue cut below which a direction is rounding noise, not variance."""
    return max(X.shape) * torch.finfo(X.dtype).eps


# ---------------------------------------------------------------------------------------------
# linear-kernel family: cka_linear, rv, rv2, cka_debiased
# ---------------------------------------------------------------------------------------------
@dataclass
class _Features:
    """A centred layer in feature space, for ||Xc'Yc||_F^2-based statistics."""

    F: torch.Tensor  # (N, D) centred, dtype
    row_sq: torch.Tensor  # (N,) float64 squared row norms = diag(Xc Xc'); 0 for cka_linear/rv
    fro_sq: float  # ||Xc||_F^2 = trace(Xc Xc'); 0 for cka_linear/rv
    self_stat: float = 0.0


def _linear_stat(measure: str, a: _Features, b: _Features) -> float:
    """The (unnormalised) HSIC-type inner product of two layers' linear kernels."""
    cross = _sum_squares(gram_float64(a.F) if a is b else tn_float64(a.F, b.F))  # trace(Kx Ky)
    if measure in ("cka_linear", "rv"):
        return cross
    diag = float(a.row_sq @ b.row_sq)  # sum_i Kx_ii Ky_ii
    if measure == "rv2":
        return cross - diag
    # Unbiased HSIC x n(n-3) for centred data (1'K1 = 0, K1 = 0), Song et al. 2012.
    n = a.F.shape[0]
    return cross - n / (n - 2) * diag + a.fro_sq * b.fro_sq / ((n - 1) * (n - 2))


def _prepare_features(X: torch.Tensor, measure: str, options: dict) -> _Features:
    Xc = centre_columns(X)
    if measure in ("cka_linear", "rv"):
        # Only ||Xc'Yc||^2 is needed: no per-stimulus norms (a pass over the data saved).
        row_sq, fro_sq = torch.zeros((), dtype=torch.float64, device=X.device), 0.0
    else:
        if X.device.type == "cpu":
            row_sq = torch.from_numpy(np.square(Xc.numpy()).sum(1, dtype=np.float64))
        else:
            row_sq = Xc.pow(2).sum(dim=1, dtype=torch.float64)
        fro_sq = float(row_sq.sum())
    state = _Features(Xc, row_sq, fro_sq)
    state.self_stat = _linear_stat(measure, state, state)
    _check_self(measure, state.self_stat)
    return state


def _pair_features(measure: str, a: _Features, b: _Features, options: dict) -> float:
    return float(_linear_stat(measure, a, b)) / math.sqrt(a.self_stat * b.self_stat)


def _check_self(measure: str, value: float) -> None:
    if not value > 0:
        raise ValueError(
            f"{measure} is undefined here: the kernel of one input has no variance left after "
            "centring (with cka_debiased: too few stimuli for the unbiased estimate); "
            "use more stimuli or another measure"
        )


# ---------------------------------------------------------------------------------------------
# Gram route: every layer becomes one flattened, centred (N x N) kernel; pairs are its dot products
# ---------------------------------------------------------------------------------------------
def _median(M: torch.Tensor) -> torch.Tensor:
    """Median of all entries, averaging the two middle ones for an even count (as numpy)."""
    flat = M.reshape(-1)
    n = flat.numel()
    low = torch.kthvalue(flat, (n + 1) // 2).values
    if n % 2:
        return low
    return (low + torch.kthvalue(flat, n // 2 + 1).values) / 2


def _double_centre(K: torch.Tensor) -> torch.Tensor:
    """H K H with H = I - 11'/N."""
    rows = K.mean(dim=0)
    return K - rows[None, :] - rows[:, None] + rows.mean()


def _unbiased_centre(K: torch.Tensor) -> torch.Tensor:
    """The linear map of a Gram matrix whose dot products are n(n-3) x the unbiased HSIC."""
    n = K.shape[0]
    K = K.clone()
    K.fill_diagonal_(0)
    means = K.sum(dim=0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    K = K - means[:, None] - means[None, :]
    K.fill_diagonal_(0)
    return K


def _prepare_kernel(X: torch.Tensor, measure: str, options: dict) -> torch.Tensor:
    Xc = centre_columns(X)
    K = gram_float64(Xc.T)  # (N, N), already double-centred since Xc is
    if measure == "cka_rbf":
        norms = K.diagonal()
        sq = (norms[:, None] + norms[None, :] - 2 * K).clamp_(min=0)
        sq.fill_diagonal_(0)
        median = _median(sq)  # over the full matrix, diagonal zeros included (Kornblith et al.)
        if not median > 0:
            raise ValueError(
                "cka_rbf: the median squared distance between stimuli is 0 (most stimuli have "
                "identical activations); the kernel width is undefined: use another measure"
            )
        K = _double_centre(torch.exp(sq / (-2 * options["threshold"] ** 2 * median)))
    elif measure == "rv2":
        K.fill_diagonal_(0)
    elif measure == "cka_debiased":
        K = _unbiased_centre(K)
    # Kernels of up to _EXACT_KERNEL_ELEMENTS entries stay float64: their dot products then
    # do not depend on how the pairs are batched (layer_grid vs similarity agree to 1e-12).
    exact = K.numel() <= _EXACT_KERNEL_ELEMENTS
    return K.reshape(-1, 1).to(torch.float64 if exact else X.dtype)


def _kernel_grid(states_a: list, states_b: list, measure: str) -> np.ndarray:
    self_a = [float(tn_float64(g, g)) for g in states_a]
    self_b = self_a if states_b is states_a else [float(tn_float64(g, g)) for g in states_b]
    for value in self_a + self_b:
        _check_self(measure, value)
    cross = tn_float64(torch.cat(states_a, dim=1), torch.cat(states_b, dim=1)).cpu().numpy()
    return cross / np.sqrt(np.outer(self_a, self_b))


# ---------------------------------------------------------------------------------------------
# CCA family
# ---------------------------------------------------------------------------------------------
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
    M = tn_float64(a.F, b.F).cpu().numpy()
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


def _prepare_cca(X: torch.Tensor, measure: str, options: dict) -> _CCASide:
    return _basis(X, options.get("keep") if measure == "svcca" else None)


def _pair_cca(measure: str, a: _CCASide, b: _CCASide, options: dict) -> float:
    return float(_singular_values(_whitened_cross(a, b)).mean())


@dataclass
class _PWState:
    """One side of PWCCA: google/svcca's symmetric whitening, its Gram matrix and neuron means."""

    side: _CCASide  # F = Xc with W = Sxx^-1/2 (symmetric), or a Gram eigenbasis when D >= N
    S: np.ndarray | None  # Xc'Xc (float64) when D < N: this side can supply the weights
    mean: np.ndarray  # (D,) float64 neuron means
    full_rank: bool  # no direction of Sxx was dropped


def _prepare_pwcca(X: torch.Tensor, measure: str, options: dict) -> _PWState:
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


def _pair_pwcca(measure: str, a: _PWState, b: _PWState, options: dict) -> float:
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


# ---------------------------------------------------------------------------------------------
# Procrustes
# ---------------------------------------------------------------------------------------------
def _prepare_procrustes(X: torch.Tensor, measure: str, options: dict) -> torch.Tensor:
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


def _pair_procrustes(measure: str, a: torch.Tensor, b: torch.Tensor, options: dict) -> float:
    # Zero-padding the narrower side to equal widths leaves the nuclear norm unchanged.
    nuclear = torch.linalg.svdvals(a.T @ b).sum()
    return float(torch.arccos(nuclear.clamp(-1.0, 1.0)))


# ---------------------------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------------------------
_Prepare = Callable[[torch.Tensor, str, dict], Any]
_Pair = Callable[[str, Any, Any, dict], float]
_ROUTES: dict[str, tuple[_Prepare, _Pair]] = {
    "features": (_prepare_features, _pair_features),
    "cca": (_prepare_cca, _pair_cca),
    "pwcca": (_prepare_pwcca, _pair_pwcca),
    "procrustes": (_prepare_procrustes, _pair_procrustes),
}


def _route(measure: str, n: int, widths_a: list[int], widths_b: list[int]) -> str:
    if measure == "cka_rbf":
        return "kernel"
    if measure in ("cca_mean", "svcca"):
        return "cca"
    if measure in ("pwcca", "procrustes"):
        return measure
    # Linear family: per-pair ||Xc'Yc||^2 costs N Da Db; the Gram route costs N^2 D per layer
    # once, then N^2 per pair. Take the cheaper (the feature form when D < N).
    features = n * (sum(da * db for da in widths_a for db in widths_b)
                    + sum(d * d for d in widths_a + widths_b))
    gram = n * n * (sum(widths_a) + sum(widths_b) + len(widths_a) * len(widths_b))
    return "kernel" if gram < features else "features"


def _check_measure(measure: str, options: dict) -> dict:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid measures: {', '.join(sorted(MEASURES))}")
    defaults = _OPTIONS.get(measure, {})
    unknown = set(options) - set(defaults)
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise ValueError(
            f"measure {measure!r} takes no option {', '.join(sorted(unknown))}; its options: {allowed}"
        )
    resolved = {**defaults, **options}
    if "threshold" in resolved and not (math.isfinite(resolved["threshold"]) and resolved["threshold"] > 0):
        raise ValueError(f"threshold must be a positive number, got {resolved['threshold']!r}")
    if "keep" in resolved and not 0 < resolved["keep"] <= 1:
        raise ValueError(f"keep must be a variance fraction in (0, 1], got {resolved['keep']!r}")
    return resolved


def _as_layer(X: Any, name: str, measure: str, dtype: Any, device: Any) -> torch.Tensor:
    tensor = as_matrix(X, name, dtype=dtype, device=device, min_rows=4 if measure == "cka_debiased" else 3)
    check_not_constant(tensor, name)
    return tensor


def _grid(measure: str, mats_a: list, mats_b: list | None, options: dict) -> np.ndarray:
    """All pairs (a, b); ``mats_b=None`` means the same layers on both sides."""
    with one_blas_thread():
        return _grid_pairs(measure, mats_a, mats_b, options)


def _grid_pairs(measure: str, mats_a: list, mats_b: list | None, options: dict) -> np.ndarray:
    same = mats_b is None
    mats_b = mats_a if same else mats_b
    route = _route(measure, mats_a[0].shape[0], [m.shape[1] for m in mats_a], [m.shape[1] for m in mats_b])
    if route == "kernel":
        states_a = [_prepare_kernel(m, measure, options) for m in mats_a]
        states_b = states_a if same else [_prepare_kernel(m, measure, options) for m in mats_b]
        grid = _kernel_grid(states_a, states_b, measure)
    else:
        prepare, pair = _ROUTES[route]
        states_a = [prepare(m, measure, options) for m in mats_a]
        states_b = states_a if same else [prepare(m, measure, options) for m in mats_b]
        grid = np.empty((len(states_a), len(states_b)))
        mirror = same and measure in _SYMMETRIC
        for i, a in enumerate(states_a):
            for j, b in enumerate(states_b):
                if mirror and j < i:
                    grid[i, j] = grid[j, i]
                else:
                    grid[i, j] = pair(measure, a, b, options)
    low, high = MEASURES[measure].range
    return np.clip(grid, low, high)


def similarity(
    X: Any,
    Y: Any,
    measure: str = "cka_linear",
    dtype: Any = None,
    device: str | torch.device | None = None,
    **options: float,
) -> float:
    """Similarity (or distance) of two representations of the same stimuli.

    Parameters
    ----------
    X, Y : array or tensor, shapes (N stimuli, D_x features) and (N, D_y)
        Activations for the same N >= 3 stimuli (N >= 4 for ``cka_debiased``), same order, finite,
        not constant across all stimuli. Widths may differ.
    measure : str
        A key of ``MEASURES``: ``cka_linear``, ``cka_debiased``, ``cka_rbf``, ``rv``, ``rv2``,
        ``cca_mean``, ``svcca``, ``pwcca`` (similarities: higher = more alike, in [0, 1]; ``rv2``
        and ``cka_debiased`` in [-1, 1]) or ``procrustes`` (a distance in radians, [0, pi/2]:
        lower = more alike).
    dtype : float32 (default) or float64
        Precision of the data and GEMMs; reductions and small factorisations are float64.
    device : str or torch.device, optional
        Default CUDA when available, else the CPU.
    **options
        ``threshold`` (``cka_rbf``, default 1.0): kernel width as a multiple of the median
        distance. ``keep`` (``svcca``, default 0.99): variance fraction kept on each side.

    Notes
    -----
    ``pwcca`` reproduces google/svcca ``compute_pwcca``, whose canonical directions add the
    neuron means back before the projection weights are taken: the value then depends on the
    signs LAPACK gives the singular vectors (arbitrary) and, where canonical correlations are
    close, on the directions within their near-degenerate subspace. We use numpy's LAPACK SVD as
    that code does. The value is therefore sensitive to rounding: on the digits zoo's layers
    (701 pairs) float32 results differ from the float64 reference by 2e-3 in the median (up to
    0.17); with ``dtype=float64`` by 5e-13 in the median (up to 0.03 where a sign flips). Pass
    ``dtype=float64`` to reproduce published PWCCA values. It is invariant to scaling X only up
    to such flips.

    Returns
    -------
    float
        ``pwcca`` weighs by ``X``'s neurons when ``D_x <= D_y`` (else ``Y``'s), so it is not
        symmetric; every other measure is.
    """
    options = _check_measure(measure, options)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    Xt = _as_layer(X, "X", measure, dtype, device)
    Yt = _as_layer(Y, "Y", measure, dtype, device)
    check_same_stimuli(Xt, Yt)
    return float(_grid(measure, [Xt], [Yt], options)[0, 0])


def layer_grid(
    acts_a: Mapping[str, Any],
    acts_b: Mapping[str, Any],
    measure: str = "cka_linear",
    dtype: Any = None,
    device: str | torch.device | None = None,
    **options: float,
) -> np.ndarray:
    """``measure`` between every layer of ``acts_a`` and every layer of ``acts_b``.

    Parameters
    ----------
    acts_a, acts_b : dict layer name -> array or tensor (N stimuli, D_l features)
        The same N stimuli, in the same order, in every layer. Pass the same dict twice for a
        network's self-similarity: its layers are then prepared once and symmetric measures
        computed for one triangle.
    measure, dtype, device, **options
        As in ``similarity``.

    Returns
    -------
    np.ndarray, shape (L_A, L_B), float64
        Entry (i, j) equals ``similarity(acts_a[i-th name], acts_b[j-th name], measure)``; rows
        and columns follow the dicts' order. Each layer is prepared once (its centred kernel,
        feature factor or whitened basis), then every pair is formed from those.
    """
    options = _check_measure(measure, options)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    mats_a = _layers(acts_a, "acts_a", measure, dtype, device)
    mats_b = None if acts_b is acts_a else _layers(acts_b, "acts_b", measure, dtype, device)
    if mats_b is not None:
        check_same_stimuli(mats_a[0], mats_b[0], ("acts_a's layers", "acts_b's layers"))
    return _grid(measure, mats_a, mats_b, options)


def _layers(acts: Mapping[str, Any], name: str, measure: str, dtype: Any, device: Any) -> list:
    if not isinstance(acts, Mapping) or not acts:
        raise ValueError(f"{name} must be a non-empty dict of layer name -> (N x D) activations")
    mats = [_as_layer(X, f"{name}[{layer!r}]", measure, dtype, device) for layer, X in acts.items()]
    names = list(acts)
    for layer, mat in zip(names[1:], mats[1:]):
        check_same_stimuli(mats[0], mat, (f"{name}[{names[0]!r}]", f"{name}[{layer!r}]"))
    return mats
