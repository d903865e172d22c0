"""The encoding family: how well one representation predicts another, out of sample.

``ridge_r`` and ``pls_r`` (Brain-Score's neural predictivity, Schrimpf et al. 2018; Yamins et al.
2014) fit a linear map from X (N x D_x) to Y (N x D_y) on k - 1 of ``folds`` folds of the stimuli
and predict the held-out fold; each stimulus is predicted once, by the model that did not see it.
The score is the Pearson r, over all N stimuli, between a Y unit's held-out predictions and its
responses, and the **median over Y's units**: a similarity in [-1, 1], higher = X predicts Y
better. **Asymmetric**: ``similarity(X, Y)`` is X predicting Y; swap the arguments for the reverse
(in a layer grid, row layers predict column layers; the self-grid of a network holds both
directions, one the transpose of the other).

- ``ridge_r``: ridge regression with an unpenalised intercept. Its penalty is chosen in each
  training set by generalised cross-validation (GCV, Golub, Heath & Wahba 1979), the rotation-
  invariant form of leave-one-out, over the grid ``alpha = scale x 10^e`` for e = -6 ... 6, with
  ``scale`` = ||X_c||_F^2 / min(N, D_x) over all stimuli (D_x counting only units that vary) (the mean non-zero eigenvalue of X_c'X_c,
  so the grid follows the data's scale and the score is invariant to scaling X). One alpha for
  all Y units (the one minimising the summed GCV error). GCV rather than exact leave-one-out:
  from one SVD of the training X per fold every alpha's error is O(rank) once U'Y is formed,
  where exact leave-one-out costs an N x D_y product per alpha.
- ``pls_r``: PLS regression (PLS2, NIPALS with regression deflation as scikit-learn's
  ``PLSRegression(scale=False)``, Brain-Score's choice), ``components`` (default 25) clipped to
  the training data's rank; each weight vector is the exact leading singular vector of X_k'Y_k
  (power iteration run to 1e-12).

Folds: a permutation of the stimuli by ``numpy.random.default_rng(seed)`` cut into ``folds``
contiguous parts, the first N mod folds of them one longer (``fold_indices``). Y units constant
over the stimuli have no correlation and are left out of the median; a unit whose held-out
predictions are constant scores 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch

from compute.measures.numerics import centre_columns, crossprod_float64, gram_float64

_GRID_EXPONENTS = np.arange(-6.0, 7.0)
_POWER_TOL = 1e-12
_POWER_ITERATIONS = 10_000


def fold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """The test stimuli of each fold (sorted), from a seeded permutation of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    sizes = np.full(folds, n // folds)
    sizes[: n % folds] += 1
    return [np.sort(part) for part in np.split(order, np.cumsum(sizes)[:-1])]


def check_options(measure: str, options: dict, n: int) -> None:
    folds = options["folds"]
    if not (float(folds).is_integer() and 2 <= folds <= n // 2):
        raise ValueError(
            f"{measure}: folds must be a whole number from 2 to N/2 = {n // 2} (each training and test "
            f"set needs stimuli), got {folds!r}"
        )
    if not (float(options["seed"]).is_integer() and options["seed"] >= 0):
        raise ValueError(f"{measure}: seed must be a non-negative whole number, got {options['seed']!r}")
    if "components" in options and not (float(options["components"]).is_integer() and options["components"] >= 1):
        raise ValueError(f"pls_r: components must be a positive whole number, got {options['components']!r}")


@dataclass
class _Fold:
    """One training set's factors for ridge: U (train x r, the left singular vectors of the
    centred training X), s (r,) its singular values, P (test x r) the centred test X on the
    right singular vectors."""

    train: np.ndarray
    test: np.ndarray
    U: torch.Tensor
    s: torch.Tensor
    P: torch.Tensor


@dataclass
class _Layer:
    """One layer in either role: ``X`` the data (as predictor, its folds are factorised on
    first use and kept), ``live`` the units that vary (as the predicted side)."""

    X: torch.Tensor
    measure: str
    options: dict
    live: torch.Tensor
    scale: float
    _folds: list = field(default_factory=list)

    def folds(self) -> list[_Fold]:
        if not self._folds:
            parts = fold_indices(self.X.shape[0], int(self.options["folds"]), int(self.options["seed"]))
            self._folds = [_factor(self.X, part) for part in parts]
        return self._folds


def _rank_cut(n: int, d: int, dtype: torch.dtype) -> float:
    """Relative singular-value cut below which a direction is the data's rounding (numpy's matrix_rank)."""
    return max(n, d) * torch.finfo(dtype).eps


def _split(n: int, test: np.ndarray, device) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    train = np.setdiff1d(np.arange(n), test)
    return train, torch.from_numpy(train).to(device), torch.from_numpy(test).to(device)


def _factor(X: torch.Tensor, test: np.ndarray) -> _Fold:
    """The SVD of the training X centred by its mean (or of its Gram matrix when D >= N_train),
    and the test X projected on its right singular vectors."""
    n, d = X.shape
    train, tr, te = _split(n, test, X.device)
    Xtr, mean = centre_columns(X.index_select(0, tr), return_mean=True)
    Xte = X.index_select(0, te) - torch.from_numpy(mean).to(X)
    cut = _rank_cut(len(train), d, X.dtype)
    wide = d >= len(train)
    G = gram_float64(Xtr.T if wide else Xtr).cpu().numpy()
    if wide:
        # Centred again in float64: the float32 centring leaves a rounding direction along the
        # ones vector whose eigenvalue (eps-relative, from the float32 products) passes the cut.
        means = G.mean(axis=0)
        G = G - means[None, :] - means[:, None] + means.mean()
    # The eigenvectors of the smaller Gram matrix (one float64 LAPACK call on the host: a float64
    # SVD of the N x D data took 50 s at 1,600 x 1,024 on a shared core). Directions below what
    # an eigensolver resolves (N eps64 of the largest eigenvalue) are dropped: every alpha of
    # the grid shrinks them to nothing anyway.
    values, vectors = scipy.linalg.eigh(G, driver="evd", check_finite=False)
    values, vectors = values[::-1], vectors[:, ::-1]
    kept = values > max(cut * cut, max(G.shape) * np.finfo(np.float64).eps) * values[0]
    s = torch.from_numpy(np.sqrt(values[kept])).to(X.device)
    vectors = torch.from_numpy(np.ascontiguousarray(vectors[:, kept])).to(X.device)
    if wide:
        U, P = vectors, crossprod_float64(Xte.T, Xtr.T) @ vectors / s
    else:
        right = (vectors / s).to(X.dtype)  # V S^-1
        U, P = Xtr @ right, (Xte @ vectors.to(X.dtype)).to(torch.float64)
    return _Fold(train, test, U.to(X.dtype), s, P.to(X.dtype))


def prepare_encoding(X: torch.Tensor, measure: str, options: dict) -> _Layer:
    """One layer X (N x D) for ``ridge_r`` / ``pls_r``; factorised lazily, as a predictor."""
    n, d = X.shape
    check_options(measure, options, n)
    Xc, mean = centre_columns(X, return_mean=True)
    squares = Xc.square().sum(dim=0, dtype=torch.float64).cpu().numpy()
    live = np.sqrt(squares / n) > 8 * torch.finfo(X.dtype).eps * np.abs(mean)
    scale = float(squares.sum()) / min(n, max(int(live.sum()), 1))
    return _Layer(X, measure, dict(options), torch.from_numpy(np.flatnonzero(live)).to(X.device), scale)


def _ridge_fold(fold: _Fold, Y: torch.Tensor, alphas: np.ndarray) -> torch.Tensor:
    """Held-out predictions of the test stimuli (test x D_y) with the GCV-chosen alpha."""
    tr = torch.from_numpy(fold.train).to(Y.device)
    Ytr, mean = centre_columns(Y.index_select(0, tr), return_mean=True)
    B = crossprod_float64(fold.U, Ytr)  # (r, D_y) float64
    total = float(Ytr.square().sum(dtype=torch.float64))
    energy = B.square().sum(dim=1).cpu().numpy()
    # Y's part outside X's column space; rounding when X spans it all (D >= N_train - 1), where
    # it would swamp the GCV errors of the smallest alphas (both tend to 0 there).
    outside = total - energy.sum()
    outside = outside if outside > _rank_cut(len(fold.train), Y.shape[1], Y.dtype) * total else 0.0
    s2 = fold.s.square().cpu().numpy()
    shrink = s2[None, :] / (s2[None, :] + alphas[:, None])  # (alphas, r): f_k
    residual = outside + ((1 - shrink) ** 2 * energy).sum(axis=1)  # ||(I - H) Y_c||^2
    dof = (1 + shrink.sum(axis=1)) / len(fold.train)  # the intercept's 1 included
    best = int(np.argmin(residual / (1 - dof) ** 2))
    gain = fold.s / (fold.s.square() + alphas[best])
    return (fold.P @ (gain[:, None] * B).to(fold.P.dtype)).to(torch.float64) + torch.from_numpy(mean).to(Y.device)


def _leading_left(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The leading left singular vector of X'Y by power iteration on X'Y Y'X (never formed)."""
    start = int(torch.argmax(Y.square().sum(dim=0)))
    w = X.T @ Y[:, start]
    w = w / torch.linalg.vector_norm(w)
    for _ in range(_POWER_ITERATIONS):
        nxt = X.T @ (Y @ (Y.T @ (X @ w)))
        nxt = nxt / torch.linalg.vector_norm(nxt)
        done = float(torch.linalg.vector_norm(nxt - w)) < _POWER_TOL
        w = nxt
        if done:
            break
    return w


def _pls_fold(X: torch.Tensor, test: np.ndarray, Y: torch.Tensor, components: int) -> torch.Tensor:
    """Held-out predictions of the test stimuli from PLS2 fitted on the rest (float64)."""
    n, d = X.shape
    train, tr, te = _split(n, test, X.device)
    Xk = X.index_select(0, tr).to(torch.float64)
    x_mean = Xk.mean(dim=0)
    Xk = Xk - x_mean
    Yk = Y.index_select(0, tr).to(torch.float64)
    y_mean = Yk.mean(dim=0)
    Yk = Yk - y_mean
    rank = int((torch.linalg.svdvals(Xk) > _rank_cut(len(train), d, X.dtype) * torch.linalg.matrix_norm(Xk, 2)).sum())
    W, P, Q = [], [], []
    floor = 1e-12 * float(torch.linalg.matrix_norm(Yk))
    for _ in range(min(components, rank)):
        if not float(torch.linalg.matrix_norm(Yk)) > floor:
            break  # Y fully explained: nothing left to fit
        w = _leading_left(Xk, Yk)
        t = Xk @ w
        tt = t @ t
        p, q = Xk.T @ t / tt, Yk.T @ t / tt
        Xk = Xk - torch.outer(t, p)
        Yk = Yk - torch.outer(t, q)
        W.append(w), P.append(p), Q.append(q)
    Xte = X.index_select(0, te).to(torch.float64) - x_mean
    if not W:
        return y_mean.expand(len(test), -1)
    W, P, Q = torch.stack(W, 1), torch.stack(P, 1), torch.stack(Q, 1)
    coef = W @ torch.linalg.solve(P.T @ W, Q.T)  # x_rotations @ y_loadings'
    return Xte @ coef + y_mean


def _median_r(predicted: torch.Tensor, Y: torch.Tensor) -> float:
    """Median over Y's units of the Pearson r between predictions and responses (float64)."""
    p = predicted - predicted.mean(dim=0)
    y = Y - Y.mean(dim=0)
    norms = torch.linalg.vector_norm(p, dim=0) * torch.linalg.vector_norm(y, dim=0)
    r = torch.where(norms > 0, (p * y).sum(dim=0) / norms.clamp(min=np.finfo(np.float64).tiny), 0.0)
    return float(np.median(r.cpu().numpy()))


def pair_encoding(measure: str, a: _Layer, b: _Layer, options: dict) -> float:
    """How well layer ``a`` predicts layer ``b`` (held-out median Pearson r)."""
    if b.live.numel() == 0:
        raise ValueError(f"{measure}: every unit of the predicted layer is constant; nothing to predict")
    Y = b.X.index_select(1, b.live)
    n = Y.shape[0]
    predicted = torch.empty((n, Y.shape[1]), dtype=torch.float64, device=Y.device)
    if measure == "ridge_r":
        alphas = a.scale * 10.0 ** _GRID_EXPONENTS
        for fold in a.folds():
            predicted[torch.from_numpy(fold.test).to(Y.device)] = _ridge_fold(fold, Y, alphas)
    else:
        components = int(options["components"])
        for test in fold_indices(n, int(options["folds"]), int(options["seed"])):
            predicted[torch.from_numpy(test).to(Y.device)] = _pls_fold(a.X, test, Y, components)
    return _median_r(predicted, Y.to(torch.float64))
