"""The kernel family: linear CKA, debiased CKA, RV and RV2 (linear kernels) and RBF CKA.

Each compares two representations of the same N stimuli, X (N x D_x) and Y (N x D_y), by their
stimulus-by-stimulus kernels: a normalised inner product of the centred (N x N) kernels, a
**similarity** (higher = more alike). ``cka_linear``, ``rv`` (the same number on centred data)
and ``cka_rbf`` lie in [0, 1], as does ``dcor`` (distance correlation, Szekely et al. 2007: the
same normalised inner product of double-centred Euclidean distance matrices, square-rooted; the
biased V-statistic of ``dcor.distance_correlation``); ``rv2`` (diagonals left out) and ``cka_debiased`` (the unbiased
HSIC of Song et al. 2012) in [-1, 1]. ``registry.MEASURES`` holds their invariances.

Two routes give the same numbers. The feature route keeps each layer as its centred features
and forms ||Xc'Yc||_F^2 = trace(Kx Ky) per pair (cheap while D < N); the Gram route turns each
layer into one flattened, centred N x N kernel (the only route for ``cka_rbf``) and forms every
pair as a dot product. ``similarity`` picks the cheaper for each grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from compute.measures.numerics import centre_columns, crossprod_float64, gram_float64

# Gram-route kernels with at most this many entries (N <= 2048) are kept in float64.
_EXACT_KERNEL_ELEMENTS = 1 << 22


def check_self(measure: str, value: float) -> None:
    """A layer's kernel must have a positive inner product with itself to normalise by."""
    if not value > 0:
        raise ValueError(
            f"{measure} is undefined here: the kernel of one input has no variance left after "
            "centring (with cka_debiased: too few stimuli for the unbiased estimate); "
            "use more stimuli or another measure"
        )


# ---------------------------------------------------------------------------------------------
# feature route (linear kernels): cka_linear, rv, rv2, cka_debiased
# ---------------------------------------------------------------------------------------------
@dataclass
class _Features:
    """A centred layer in feature space, for ||Xc'Yc||_F^2-based statistics."""

    F: torch.Tensor  # (N, D) centred, dtype
    row_sq: torch.Tensor  # (N,) float64 squared row norms = diag(Xc Xc'); 0 for cka_linear/rv
    fro_sq: float  # ||Xc||_F^2 = trace(Xc Xc'); 0 for cka_linear/rv
    self_stat: float = 0.0


def _sum_squares(M: torch.Tensor) -> float:
    """Sum of the squared entries of a float64 tensor."""
    values = M.numpy() if M.device.type == "cpu" else M
    return float((values * values).sum())


def _linear_stat(measure: str, a: _Features, b: _Features) -> float:
    """The (unnormalised) HSIC-type inner product of two layers' linear kernels."""
    cross = _sum_squares(gram_float64(a.F) if a is b else crossprod_float64(a.F, b.F))  # trace(Kx Ky)
    if measure in ("cka_linear", "rv"):
        return cross
    diag = float(a.row_sq @ b.row_sq)  # sum_i Kx_ii Ky_ii
    if measure == "rv2":
        return cross - diag
    # Unbiased HSIC x n(n-3) for centred data (1'K1 = 0, K1 = 0), Song et al. 2012.
    n = a.F.shape[0]
    return cross - n / (n - 2) * diag + a.fro_sq * b.fro_sq / ((n - 1) * (n - 2))


def prepare_features(X: torch.Tensor, measure: str, options: dict) -> _Features:
    """One layer X (N x D) for the feature route: centred, with its self-statistic."""
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
    check_self(measure, state.self_stat)
    return state


def pair_features(measure: str, a: _Features, b: _Features, options: dict) -> float:
    """The similarity of two prepared layers (before clipping to the measure's range)."""
    return float(_linear_stat(measure, a, b)) / math.sqrt(a.self_stat * b.self_stat)


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


def prepare_kernel(X: torch.Tensor, measure: str, options: dict) -> torch.Tensor:
    """One layer X (N x D) for the Gram route: its centred kernel flattened to (N^2 x 1)."""
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
    elif measure == "dcor":
        norms = K.diagonal()
        distances = (norms[:, None] + norms[None, :] - 2 * K).clamp_(min=0).sqrt_()
        distances.fill_diagonal_(0)
        K = _double_centre(distances)  # Szekely et al.'s A_kl: dCov^2 = <A, B> / N^2
    elif measure == "rv2":
        K.fill_diagonal_(0)
    elif measure == "cka_debiased":
        K = _unbiased_centre(K)
    # Kernels of up to _EXACT_KERNEL_ELEMENTS entries stay float64: their dot products then
    # do not depend on how the pairs are batched (layer_grid vs similarity agree to 1e-12).
    exact = K.numel() <= _EXACT_KERNEL_ELEMENTS
    return K.reshape(-1, 1).to(torch.float64 if exact else X.dtype)


def kernel_grid(states_a: list, states_b: list, measure: str) -> np.ndarray:
    """(L_A x L_B) similarities of prepared kernels, from one cross product of their stacks."""
    self_a = [float(crossprod_float64(g, g)) for g in states_a]
    self_b = self_a if states_b is states_a else [float(crossprod_float64(g, g)) for g in states_b]
    for value in self_a + self_b:
        check_self(measure, value)
    cross = crossprod_float64(torch.cat(states_a, dim=1), torch.cat(states_b, dim=1)).cpu().numpy()
    return from_alignment(cross / np.sqrt(np.outer(self_a, self_b)), measure)


def from_alignment(alignment: np.ndarray, measure: str) -> np.ndarray:
    """The measure from its kernels' normalised alignment <K, L> / (|K| |L|): itself, except
    distance correlation, its square root (of a ratio of distance covariances, >= 0 exactly)."""
    return np.sqrt(np.clip(alignment, 0.0, None)) if measure == "dcor" else alignment
