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

  Cost, for a layer grid: each layer is centred once with its stimuli in fold order, and as a
  predictor its folds are factorised once (the eigenvectors of each training Gram matrix,
  formed as the whole Gram less the fold's; on the GPU when the layer is there). A pair then
  costs about (2 N + folds x D_x) D_x D_y multiply-adds in GEMMs: X_c'Y_c per test fold, U'Y_c
  as one rotation per fold, the held-out predictions. The per-fold eigendecompositions
  (folds x D_x^3, LAPACK on one host thread) are the floor: at N = 2,000 and widths 64-1,024
  they alone took 1.48 s on a quiet 2-core machine, 13x the linear-CKA grid of the same layers
  (0.11 s); the grid took 2.5 s against its floor of 1.9 s (benchmarks/RESULTS.md).
- ``pls_r``: PLS regression (PLS2, NIPALS with regression deflation as scikit-learn's
  ``PLSRegression(scale=False)``, Brain-Score's choice), ``components`` (default 25) clipped to
  the training data's rank; each weight vector is the exact leading singular vector of X_k'Y_k
  (from the eigenvectors of the smaller side of its Gram when either width is at most 512, else
  power iteration run to 1e-12).

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

from compute.measures.numerics import centre_columns, crossprod, crossprod_float64, gram_float64

_GRID_EXPONENTS = np.arange(-6.0, 7.0)
_POWER_TOL = 1e-12
_POWER_ITERATIONS = 10_000
# Widest Gram of X_k'Y_k solved exactly for the PLS weights (cheaper than power iteration, which
# crawls where the leading singular values are close: 2 s a fit on SVHN's 100 x 40 layers).
_EXACT_WIDTH = 512


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
    """One training set's ridge factors: ``s`` (r,) the singular values of the training X
    centred at its mean, ``P`` (test x r) the test X centred at the same mean on the right
    singular vectors, and what forms U'Y_c. When D < N_train: ``Vs`` (D x r) the right
    singular vectors over ``s`` and ``mean`` (D,) the training mean of X_c, so that
    U'Y_c = Vs' (X_c'Y_c over the training rows - N_train mean m_Y'). When wider: ``U``
    (N_train x r) the left singular vectors and ``u_sum`` = U'1."""

    start: int
    stop: int
    s: torch.Tensor
    P: torch.Tensor
    Vs: torch.Tensor | None = None
    mean: torch.Tensor | None = None
    U: torch.Tensor | None = None
    u_sum: torch.Tensor | None = None


@dataclass
class _Target:
    """A layer as the predicted side: ``Y`` (N x P D_y) its live units centred, in fold order,
    for each of P permutations of its stimuli (one, unpermuted, for a pair; permutation s
    the columns s D_y to (s + 1) D_y); per fold the training means ``means`` (folds x P D_y,
    float64) and sums of squares about the whole mean ``squares`` (folds x P D_y, float64)."""

    Y: torch.Tensor
    means: torch.Tensor
    squares: torch.Tensor
    count: int = 1


@dataclass
class _Layer:
    """One layer in either role. ``X`` the data; for ``ridge_r`` also ``Xc`` (N x D) X minus its
    column means with the stimuli in fold order (row r stimulus ``order[r]``; fold k the rows
    ``bounds[k]``) and ``sums``
    (folds x D, float64) each fold's column sums of ``Xc``. As predictor its folds are
    factorised on first use and kept (once per layer in a grid); ``live`` the units that vary
    (those predicted)."""

    X: torch.Tensor
    measure: str
    options: dict
    live: torch.Tensor
    scale: float
    Xc: torch.Tensor | None = None
    order: torch.Tensor | None = None
    bounds: list = field(default_factory=list)
    sums: torch.Tensor | None = None
    _folds: list = field(default_factory=list)
    _target: _Target | None = None

    def training_means(self, sums: torch.Tensor) -> torch.Tensor:
        """Each fold's training mean (folds x D, float64) from fold column sums."""
        n = self.Xc.shape[0]
        sizes = torch.tensor([n - (b - a) for a, b in self.bounds], dtype=torch.float64, device=sums.device)
        return (sums.sum(dim=0) - sums) / sizes[:, None]

    def folds(self) -> list[_Fold]:
        if not self._folds:
            self._folds = _factor_folds(self)
        return self._folds

    def target(self) -> _Target:
        if self._target is None:
            Y = self.Xc if len(self.live) == self.Xc.shape[1] else self.Xc.index_select(1, self.live)
            self._target = self._as_target(Y, self.sums.index_select(1, self.live))
        return self._target

    def _as_target(self, Y: torch.Tensor, sums: torch.Tensor, count: int = 1) -> _Target:
        squares = torch.stack([Y[a:b].square().sum(dim=0, dtype=torch.float64) for a, b in self.bounds])
        return _Target(Y, self.training_means(sums), squares, count)


def permuted_target(layer: _Layer, perms: torch.Tensor) -> _Target:
    """``layer`` as the predicted side with its stimuli permuted by each row of ``perms``
    (P x N), as ``prepare_encoding(X[perm]).target()`` (up to the rounding of its mean): the
    folds stay where they are, so each fold's rows and their sums come from other stimuli."""
    Y = layer.target().Y  # row r holds stimulus order[r]
    n = Y.shape[0]
    rows = torch.argsort(layer.order)[perms[:, layer.order]]  # row r of permutation s: perms[s, order[r]]
    Y = Y[rows].transpose(0, 1).reshape(n, -1)
    sums = torch.stack([Y[a:b].sum(dim=0, dtype=torch.float64) for a, b in layer.bounds])
    return layer._as_target(Y, sums, len(perms))


def _rank_cut(n: int, d: int, dtype: torch.dtype) -> float:
    """Relative singular-value cut below which a direction is the data's rounding (numpy's matrix_rank)."""
    return max(n, d) * torch.finfo(dtype).eps


def _split(n: int, test: np.ndarray, device) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    train = np.setdiff1d(np.arange(n), test)
    return train, torch.from_numpy(train).to(device), torch.from_numpy(test).to(device)


def _eigen(G: torch.Tensor, cut: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors of the float64 Gram matrix ``G`` above what an
    eigensolver resolves (N eps64 of the largest, and ``cut`` squared): every alpha of the grid
    shrinks the rest to nothing anyway. On the host one float64 LAPACK call (a float64 SVD of
    the N x D data took 50 s at 1,600 x 1,024 on a shared core); on a GPU, torch's."""
    floor = max(cut * cut, max(G.shape) * np.finfo(np.float64).eps)
    if G.device.type == "cpu":
        values, vectors = scipy.linalg.eigh(G.numpy(), driver="evd", check_finite=False)
        kept = int((values > floor * values[-1]).sum())
        return (torch.from_numpy(values[::-1][:kept].copy()),
                torch.from_numpy(np.ascontiguousarray(vectors[:, ::-1][:, :kept])))
    values, vectors = torch.linalg.eigh(G)
    values, vectors = values.flip(0), vectors.flip(1)
    kept = values > floor * values[0]
    return values[kept], vectors[:, kept]


def _factor_folds(layer: _Layer) -> list[_Fold]:
    """Every fold's factors from one pass over the layer: when D < N_train the eigenvectors of
    the training Gram matrix, formed as the whole Gram minus the test fold's (the fold Grams
    add up to the whole, so the N D^2 products are formed once, not once per fold); when D is
    wider, of the training stimuli's Gram matrix."""
    Xc, dtype = layer.Xc, layer.Xc.dtype
    n, d = Xc.shape
    grams = [gram_float64(Xc[a:b]) for a, b in layer.bounds] if any(d < n - (b - a) for a, b in layer.bounds) else []
    whole = sum(grams)
    folds = []
    for k, ((a, b), mean) in enumerate(zip(layer.bounds, layer.training_means(layer.sums))):
        n_train = n - (b - a)
        cut = _rank_cut(n_train, d, dtype)
        Xte = Xc[a:b] - mean.to(dtype)
        if d < n_train:
            values, vectors = _eigen(whole - grams[k] - n_train * torch.outer(mean, mean), cut)
            s = values.sqrt()
            folds.append(_Fold(a, b, s, Xte @ vectors.to(dtype), Vs=(vectors / s).to(dtype), mean=mean.to(dtype)))
            continue
        Xtr = torch.cat([Xc[:a], Xc[b:]]) - mean.to(dtype)
        G = gram_float64(Xtr.T)
        # Centred again in float64: the float32 centring leaves a rounding direction along the
        # ones vector whose eigenvalue (eps-relative, from the float32 products) passes the cut.
        means = G.mean(dim=0)
        values, vectors = _eigen(G - means[None, :] - means[:, None] + means.mean(), cut)
        s = values.sqrt()
        P = crossprod_float64(Xte.T, Xtr.T) @ vectors / s
        folds.append(_Fold(a, b, s, P.to(dtype), U=vectors.to(dtype), u_sum=vectors.sum(dim=0)))
    return folds


def prepare_encoding(X: torch.Tensor, measure: str, options: dict) -> _Layer:
    """One layer X (N x D) for ``ridge_r`` / ``pls_r``; factorised lazily, as a predictor."""
    n, d = X.shape
    check_options(measure, options, n)
    Xc, mean = centre_columns(X, return_mean=True)
    squares = Xc.square().sum(dim=0, dtype=torch.float64).cpu().numpy()
    live = np.sqrt(squares / n) > 8 * torch.finfo(X.dtype).eps * np.abs(mean)
    scale = float(squares.sum()) / min(n, max(int(live.sum()), 1))
    layer = _Layer(X, measure, dict(options), torch.from_numpy(np.flatnonzero(live)).to(X.device), scale)
    if measure == "ridge_r":
        parts = fold_indices(n, int(options["folds"]), int(options["seed"]))
        stops = np.cumsum([len(part) for part in parts])
        layer.bounds = [(int(stop - len(part)), int(stop)) for part, stop in zip(parts, stops)]
        layer.order = torch.from_numpy(np.concatenate(parts)).to(X.device)
        layer.Xc = Xc.index_select(0, layer.order)
        layer.sums = torch.stack([layer.Xc[a:b].sum(dim=0, dtype=torch.float64) for a, b in layer.bounds])
    return layer


def _train_cross(fold: _Fold, Y: torch.Tensor) -> torch.Tensor:
    """U'Y over the training rows (all but the fold's), float64."""
    parts = [(fold.U[:fold.start], Y[:fold.start]), (fold.U[fold.start:], Y[fold.stop:])]
    return sum(crossprod_float64(U, Z) for U, Z in parts if len(U))


def _ridge_r(a: _Layer, t: _Target) -> torch.Tensor:
    """Held-out predictions (N x P D_y, fold order, about Y's mean) of the target's live units
    from ``a``, for each of its P permutations, each fold's alpha chosen by GCV on its training
    set (per permutation): a few GEMMs per fold, the whole alpha grid scored at once from U'Y_c's
    row energies. The factors of ``a``'s folds serve every permutation."""
    n, dtype = t.Y.shape[0], t.Y.dtype
    width = t.Y.shape[1] // t.count
    folds = a.folds()
    alphas = a.scale * 10.0 ** _GRID_EXPONENTS
    # X_c'Y_c of each test fold (N D_x D_y in all); a training set's is their sum less its own.
    tall = any(f.Vs is not None for f in folds)
    crosses = [crossprod(a.Xc[f.start:f.stop], t.Y[f.start:f.stop]) for f in folds] if tall else []
    whole = sum(crosses)
    predicted = torch.empty((n, t.count * width), dtype=dtype, device=t.Y.device)
    squares = t.squares.reshape(len(folds), t.count, width).sum(dim=2).cpu().numpy()  # (folds, P)
    for k, fold in enumerate(folds):
        n_train = n - (fold.stop - fold.start)
        if fold.Vs is not None:
            B = fold.Vs.T @ (whole - crosses[k]).addr_(fold.mean, t.means[k].to(dtype), alpha=-n_train)
        else:
            B = (_train_cross(fold, t.Y) - torch.outer(fold.u_sum, t.means[k])).to(dtype)
        B = B.reshape(B.shape[0], t.count, width)
        means = t.means[k].reshape(t.count, width)
        total = squares.sum(axis=0) - squares[k] - n_train * means.square().sum(dim=1).cpu().numpy()
        energy = torch.linalg.vector_norm(B, dim=2).cpu().numpy().astype(np.float64).T ** 2  # (P, r)
        # Y's part outside X's column space; rounding when X spans it all (D >= N_train - 1), where
        # it would swamp the GCV errors of the smallest alphas (both tend to 0 there).
        outside = total - energy.sum(axis=1)
        outside = np.where(outside > _rank_cut(n_train, width, dtype) * total, outside, 0.0)
        s2 = fold.s.square().cpu().numpy()
        shrink = s2[None, :] / (s2[None, :] + alphas[:, None])  # (alphas, r): f_k
        residual = outside[:, None] + ((1 - shrink) ** 2 * energy[:, None, :]).sum(axis=2)  # ||(I - H) Y_c||^2
        dof = (1 + shrink.sum(axis=1)) / n_train  # the intercept's 1 included
        best = torch.from_numpy(np.argmin(residual / (1 - dof) ** 2, axis=1)).to(fold.s.device)
        gain = (fold.s / (fold.s.square() + torch.from_numpy(alphas).to(fold.s)[best, None])).to(dtype)
        if t.count == 1:
            torch.addmm(t.means[k].to(dtype), fold.P * gain[0], B[:, 0], out=predicted[fold.start:fold.stop])
        else:  # each permutation's gains on its columns of B: one GEMM for all
            torch.addmm(t.means[k].to(dtype), fold.P, (B * gain.T[:, :, None]).reshape(len(gain.T), -1),
                        out=predicted[fold.start:fold.stop])
    return predicted


def _leading_left(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The leading left singular vector of X'Y: from the eigenvectors of the smaller of (X'Y)'(X'Y)
    and (X'Y)(X'Y)' when it is at most ``_EXACT_WIDTH`` wide, else by power iteration on
    X'Y Y'X (never formed)."""
    if min(X.shape[1], Y.shape[1]) <= _EXACT_WIDTH:
        M = X.T @ Y
        if M.shape[1] < M.shape[0]:
            w = M @ torch.linalg.eigh(M.T @ M).eigenvectors[:, -1]
        else:
            w = torch.linalg.eigh(M @ M.T).eigenvectors[:, -1]
        return w / torch.linalg.vector_norm(w)
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


def _median_r(predicted: torch.Tensor, Y: torch.Tensor, count: int = 1) -> np.ndarray:
    """Median over Y's units of the Pearson r between predictions and responses, summed in
    their dtype (torch's cascaded sums: float32 data keep float32 accuracy); for each of
    ``count`` permutations side by side in the columns, (count,)."""
    p = predicted - predicted.mean(dim=0)
    y = Y - Y.mean(dim=0)
    norms = (torch.linalg.vector_norm(p, dim=0) * torch.linalg.vector_norm(y, dim=0)).to(torch.float64)
    dots = (p * y).sum(dim=0).to(torch.float64)
    r = torch.where(norms > 0, dots / norms.clamp(min=np.finfo(np.float64).tiny), 0.0)
    return np.median(r.cpu().numpy().reshape(count, -1), axis=1)


def ridge_values(a: _Layer, t: _Target) -> np.ndarray:
    """``ridge_r`` of ``a`` predicting each permutation of a target (:func:`permuted_target`), (P,)."""
    return _median_r(_ridge_r(a, t), t.Y, t.count)


def pair_encoding(measure: str, a: _Layer, b: _Layer, options: dict) -> float:
    """How well layer ``a`` predicts layer ``b`` (held-out median Pearson r)."""
    if b.live.numel() == 0:
        raise ValueError(f"{measure}: every unit of the predicted layer is constant; nothing to predict")
    if measure == "ridge_r":
        return float(ridge_values(a, b.target())[0])
    Y = b.X.index_select(1, b.live)
    n = Y.shape[0]
    predicted = torch.empty((n, Y.shape[1]), dtype=torch.float64, device=Y.device)
    components = int(options["components"])
    for test in fold_indices(n, int(options["folds"]), int(options["seed"])):
        predicted[torch.from_numpy(test).to(Y.device)] = _pls_fold(a.X, test, Y, components)
    return float(_median_r(predicted, Y.to(torch.float64))[0])
