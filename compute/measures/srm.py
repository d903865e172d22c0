"""Shared response model (SRM) across networks, and the analyses of Lu et al. (2018).

Deterministic SRM (Chen et al. 2015; eq. 1 of Lu et al.): for networks i = 1..m with activations
X_i (D_i features x N stimuli, the transpose of our N x D_i convention), find W_i (D_i x k) with
orthonormal columns and a shared response S (k x N) minimising

    sum_i || X_i - W_i S ||_F^2     subject to  W_i' W_i = I_k,

by alternating the two exact partial minimisers: W_i = U V' from the SVD U s V' of X_i S'
(orthogonal Procrustes), and S = mean_i W_i' X_i. The loss never increases.

Each feature is centred on the fitting stimuli first (``center=True``), as fMRI SRM centres each
voxel; ``transform`` and the held-out analyses reuse those training means.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from compute.errors import stop_if_asked
from compute.measures.numerics import crossprod_float64
from compute.measures.validate import (
    as_matrix,
    check_not_constant,
    check_same_stimuli,
    resolve_device,
    resolve_dtype,
)


@dataclass
class SRMResult:
    """A fitted shared response model.

    Attributes
    ----------
    W : list of np.ndarray, shapes (D_i, k)
        Each network's map into the shared space; orthonormal columns.
    S : np.ndarray, shape (k, N)
        The shared response to the N fitting stimuli.
    variance_explained : float
        1 - sum_i ||X_i - W_i S||^2 / sum_i ||X_i||^2 on the fitting stimuli (centred data), in
        [0, 1]: higher = networks better described as rotations of one shared response.
    means : list of np.ndarray, shapes (D_i,)
        Feature means subtracted before fitting (zeros with ``center=False``).
    loss : list of float
        The objective sum_i ||X_i - W_i S||^2 after each iteration (non-increasing).
    """

    W: list[np.ndarray]
    S: np.ndarray
    variance_explained: float
    means: list[np.ndarray]
    loss: list[float] = field(default_factory=list)

    @property
    def k(self) -> int:
        return self.S.shape[0]

    def transform(self, Xs: Sequence[Any]) -> list[np.ndarray]:
        """Each network's responses in the shared space: (X_i - mean_i) W_i, shape (N, k) each.

        ``Xs`` holds one (N stimuli x D_i) matrix per fitted network, in the fitting order; the
        stimuli may be new (held out).
        """
        return [Z @ W for Z, W in zip(_centred_inputs(self, Xs), self.W)]


def fit_srm(
    Xs: Sequence[Any],
    k: int,
    n_iter: int = 10,
    seed: int = 0,
    center: bool = True,
    dtype: Any = None,
    device: str | torch.device | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SRMResult:
    """Fit a deterministic SRM to several networks' responses to the same stimuli.

    Parameters
    ----------
    Xs : sequence of arrays or tensors, shapes (N stimuli, D_i features)
        At least two networks (or layers), the same N >= 3 stimuli in the same order, finite.
    k : int
        Shared dimensions, 1 <= k <= min(N, min_i D_i). ``k = D_i`` makes W_i orthogonal: a
        rigid rotation (possibly with reflection) of network i's space.
    n_iter : int
        Alternating updates (each: m Procrustes solutions, then S).
    seed : int
        The random orthonormal initial W_i come from ``torch.Generator().manual_seed(seed)`` on
        the CPU, so a seed gives the same fit on every device.
    center : bool
        Subtract each feature's mean over the fitting stimuli first.
    dtype, device
        Precision of the data and GEMMs (float32 default; long reductions and the k x k/D x k
        factorisations run in float64), and where to compute.
    should_stop : callable, optional
        Asked before each update; when it returns True, ``compute.errors.Cancelled`` is raised.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise ValueError(f"k must be an integer number of shared dimensions, got {k!r}")
    if not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    mats = _inputs(Xs, dtype, device)
    n = mats[0].shape[0]
    widths = [m.shape[1] for m in mats]
    if not 1 <= k <= min(n, *widths):
        raise ValueError(
            f"k={k} shared dimensions is not possible: it must be between 1 and the smallest of "
            f"N={n} stimuli and the networks' widths {widths}"
        )
    means = [
        m.mean(dim=0, dtype=torch.float64) if center else torch.zeros(m.shape[1], dtype=torch.float64, device=device)
        for m in mats
    ]
    Zs = [m - mu.to(dtype) for m, mu in zip(mats, means)]
    total = sum(float(Z.pow(2).sum(dtype=torch.float64)) for Z in Zs)
    if not total > 0:
        raise ValueError("Xs carry no variance after centring; SRM needs varying activations")

    generator = torch.Generator().manual_seed(int(seed))
    Ws = []
    for width in widths:
        Q, R = torch.linalg.qr(torch.randn(width, k, generator=generator, dtype=torch.float64))
        Ws.append((Q * torch.sign(R.diagonal())).to(device=device, dtype=dtype))  # unique QR signs

    S = _shared(Zs, Ws)  # (N, k): S' in the paper's notation
    loss = []
    for _ in range(n_iter):
        stop_if_asked(should_stop)
        Ws = [_procrustes(Z, S).to(dtype) for Z in Zs]
        S = _shared(Zs, Ws)
        loss.append(_residual(Zs, Ws, S))
    return SRMResult(
        W=[W.to(torch.float64).cpu().numpy() for W in Ws],
        S=S.T.to(torch.float64).cpu().numpy(),
        variance_explained=1.0 - loss[-1] / total,
        means=[mu.cpu().numpy() for mu in means],
        loss=loss,
    )


def srm_variance_explained(result: SRMResult, Xs_test: Sequence[Any]) -> float:
    """Fraction of held-out activity the fitted SRM explains.

    The shared response to the new stimuli is estimated from all networks, S = mean_i W_i'X_i
    (what ``fit_srm`` does for the fitting stimuli), and each network is reconstructed as W_i S:
    1 - sum_i ||X_i - W_i S||^2 / sum_i ||X_i||^2, with X_i centred by the training means.
    1 = every network is exactly a rotation of one shared response; can be negative when the
    training means or maps do not fit the new stimuli at all.

    ``Xs_test``: one (N_test x D_i) matrix per fitted network, in the fitting order.
    """
    Zs = [torch.from_numpy(Z) for Z in _centred_inputs(result, Xs_test)]
    Ws = [torch.from_numpy(W) for W in result.W]
    total = sum(float(Z.pow(2).sum()) for Z in Zs)
    if not total > 0:
        raise ValueError("Xs_test carry no variance after centring; variance explained is undefined")
    return 1.0 - _residual(Zs, Ws, _shared(Zs, Ws)) / total


def stratified_split(labels: Any, train_fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, class-stratified split of stimuli into an SRM-fitting and a held-out set.

    In each class of ``labels`` (shape (N,)), ``round(train_fraction * n_c)`` stimuli, drawn by
    ``np.random.default_rng(seed)``, go to training, bounded to leave at least one on each side.
    Returns the sorted (train, test) stimulus indices; every stimulus is in exactly one.
    Needs at least two stimuli per class and 0 < train_fraction < 1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array of class labels, got shape {labels.shape}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, got {train_fraction!r}")
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        raise ValueError(
            f"class {classes[counts.argmin()]!r} has a single stimulus; a held-out split needs at least "
            "two stimuli per class"
        )
    rng = np.random.default_rng(int(seed))
    train = []
    for label, count in zip(classes, counts):
        members = np.flatnonzero(labels == label)
        size = min(max(int(round(train_fraction * count)), 1), count - 1)
        train.append(rng.permutation(members)[:size])
    train = np.sort(np.concatenate(train))
    return train, np.setdiff1d(np.arange(labels.size), train)


@dataclass
class RSMAgreement:
    """How well the shared space aligns the networks (Lu et al. 2018, Fig. 1B / 2).

    ``shared``: Pearson r between the off-diagonal entries of the inter-network RSM in the shared
    space and of the mean within-network RSM (1 = perfectly aligned). ``native``: the same for the
    inter-network RSM in the native spaces (None when widths differ); near 0 for networks that
    differ by rotations. ``wrsm``, ``irsm_shared``, ``irsm_native``: the (N x N) matrices.
    """

    shared: float
    native: float | None
    wrsm: np.ndarray
    irsm_shared: np.ndarray
    irsm_native: np.ndarray | None


def shared_space_rsm_agreement(result: SRMResult, Xs: Sequence[Any]) -> RSMAgreement:
    """Correlation of the shared-space inter-network RSM with the mean within-network RSM.

    Following Lu et al. (2018): an RSM holds the similarities A'A of stimuli's normalised
    activity patterns (their "column-wise normalised" A), here the cosine similarity of the
    feature-centred patterns. Unlike a Pearson correlation across units (which subtracts each
    pattern's mean over units), it is invariant to the rotations SRM models, so exact rotated
    copies give 1. The within-network RSM (wRSM) of each network is computed in its native
    space (centred by the training means) and averaged over networks. The
    inter-network RSM (iRSM) correlates each network's shared-space patterns (X_i - mean_i) W_i
    with the mean shared-space patterns of the other networks, averaged over networks
    (leave-one-out). If SRM aligns the networks, iRSM ~ wRSM; in the native space, networks that
    differ by a rotation have an unrelated iRSM. The two are compared by the Pearson r of their
    strictly-lower-triangular entries (stimulus pairs i > j).

    ``Xs``: one (N x D_i) matrix per fitted network, in the fitting order; normally held-out
    stimuli (as in the paper). Returns an ``RSMAgreement``.
    """
    natives = [torch.from_numpy(Z) for Z in _centred_inputs(result, Xs)]
    shared = [Z @ torch.from_numpy(W) for Z, W in zip(natives, result.W)]
    for i, (Z, P) in enumerate(zip(natives, shared)):
        for pattern, name in ((Z, f"Xs[{i}]"), (P, f"Xs[{i}] in the shared space")):
            zero = torch.nonzero(pattern.norm(dim=1) == 0).flatten().tolist()
            if zero:
                raise ValueError(
                    f"{name} has all-zero (centred) patterns for stimuli {zero[:10]}; their RSM "
                    "similarity is undefined: drop those stimuli"
                )
    wrsm = torch.stack([_rsm(Z, Z) for Z in natives]).mean(dim=0)
    irsm_shared = _inter_rsm(shared)
    same_width = len({Z.shape[1] for Z in natives}) == 1
    irsm_native = _inter_rsm(natives) if same_width else None
    return RSMAgreement(
        shared=_offdiag_r(irsm_shared, wrsm),
        native=_offdiag_r(irsm_native, wrsm) if same_width else None,
        wrsm=wrsm.numpy(),
        irsm_shared=irsm_shared.numpy(),
        irsm_native=irsm_native.numpy() if same_width else None,
    )


# ---------------------------------------------------------------------------------------------
def _inputs(Xs: Sequence[Any], dtype: Any, device: Any) -> list[torch.Tensor]:
    if isinstance(Xs, (np.ndarray, torch.Tensor)) or not isinstance(Xs, Sequence) or len(Xs) < 2:
        raise ValueError("Xs must be a list of at least two (N stimuli x D_i features) matrices")
    mats = [as_matrix(X, f"Xs[{i}]", dtype=dtype, device=device) for i, X in enumerate(Xs)]
    for i, m in enumerate(mats):
        check_not_constant(m, f"Xs[{i}]")
        check_same_stimuli(mats[0], m, ("Xs[0]", f"Xs[{i}]"))
    return mats


def _centred_inputs(result: SRMResult, Xs: Sequence[Any]) -> list[np.ndarray]:
    """float64 (N x D_i) inputs for a fitted model, centred by its training means."""
    if isinstance(Xs, (np.ndarray, torch.Tensor)) or not isinstance(Xs, Sequence) or len(Xs) != len(result.W):
        raise ValueError(f"Xs must be a list of {len(result.W)} matrices, one per fitted network")
    mats = [as_matrix(X, f"Xs[{i}]", dtype=torch.float64, device="cpu") for i, X in enumerate(Xs)]
    for i, (m, W) in enumerate(zip(mats, result.W)):
        check_same_stimuli(mats[0], m, ("Xs[0]", f"Xs[{i}]"))
        if m.shape[1] != W.shape[0]:
            raise ValueError(
                f"Xs[{i}] has {m.shape[1]} features but the model was fitted with {W.shape[0]}; "
                "pass the same layers, in the same order, as to fit_srm"
            )
    return [m.numpy() - mu for m, mu in zip(mats, result.means)]


def _shared(Zs: list[torch.Tensor], Ws: list[torch.Tensor]) -> torch.Tensor:
    """S' = mean_i X_i' W_i, shape (N, k)."""
    return sum(Z @ W for Z, W in zip(Zs, Ws)) / len(Zs)


def _procrustes(Z: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """argmin over W'W = I of ||Z' - W S'||: W = U V' from the SVD of Z'S (float64)."""
    U, _, Vh = torch.linalg.svd(crossprod_float64(Z, S.to(Z.dtype)), full_matrices=False)
    return U @ Vh


def _residual(Zs: list[torch.Tensor], Ws: list[torch.Tensor], S: torch.Tensor) -> float:
    return sum(float((Z - S @ W.T).pow(2).sum(dtype=torch.float64)) for Z, W in zip(Zs, Ws))


def _unit_rows(P: torch.Tensor) -> torch.Tensor:
    return P / P.norm(dim=1, keepdim=True)


def _rsm(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """(N x N) cosine similarities between the patterns (rows) of A and of B."""
    return _unit_rows(A) @ _unit_rows(B).T


def _inter_rsm(patterns: list[torch.Tensor]) -> torch.Tensor:
    total = sum(patterns)
    m = len(patterns)
    return sum(_rsm(P, (total - P) / (m - 1)) for P in patterns) / m


def _offdiag_r(A: torch.Tensor, B: torch.Tensor) -> float:
    rows, cols = torch.tril_indices(A.shape[0], A.shape[0], offset=-1)
    a, b = A[rows, cols], B[rows, cols]
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))
