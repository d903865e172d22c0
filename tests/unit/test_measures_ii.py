"""Issue 17's new measures against independent references, closed forms, invariances and bad input:
the local-neighbourhood family (mutual_knn, jaccard_knn, cknna), dcor, linear_reg, cca_rho_top,
the shape metrics (shape_alpha, permutation) and the encoding family (ridge_r, pls_r)."""
from __future__ import annotations

import itertools
import math

import dcor
import numpy as np
import pytest
import scipy.linalg
from hypothesis import example, given, settings, strategies as st
from scipy.stats import ortho_group
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import Ridge

import compute
from compute.measures.encoding import fold_indices

PROPS = settings(max_examples=15, deadline=None)
F64 = dict(dtype=np.float64)


def related(seed, n=80, dx=12, dy=15, offset=0.0):
    """Two noisy views of a shared latent (as in test_similarity)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 6))
    X = Z @ rng.standard_normal((6, dx)) + 0.7 * rng.standard_normal((n, dx)) + offset
    Y = np.tanh(Z @ rng.standard_normal((6, dy))) + 0.5 * rng.standard_normal((n, dy)) + offset
    return X, Y


def centred(X):
    return X - X.mean(axis=0)


# --- plain numpy references, written from the papers' definitions ------------------------------
def cosine_kernel(X):
    F = X / np.linalg.norm(X, axis=1, keepdims=True)
    return F @ F.T


def neighbours(X, k):
    """Each stimulus's k nearest by cosine similarity, self excluded, ties to the lower index."""
    S = cosine_kernel(X)
    np.fill_diagonal(S, -np.inf)
    return [set(np.argsort(-S[i], kind="stable")[:k]) for i in range(len(S))]


def ref_mutual_knn(X, Y, k=10):
    nx, ny = neighbours(X, k), neighbours(Y, k)
    return np.mean([len(a & b) / k for a, b in zip(nx, ny)])


def ref_jaccard_knn(X, Y, k=10):
    nx, ny = neighbours(X, k), neighbours(Y, k)
    return np.mean([len(a & b) / len(a | b) for a, b in zip(nx, ny)])


def ref_cknna(X, Y, k=10):
    """Huh et al. 2024: Align(K, L) = sum_i sum_j alpha(i, j) (K_ij - E_l K_il)(L_ij - E_l L_il)."""
    K, L = cosine_kernel(X), cosine_kernel(Y)
    Kc, Lc = K - K.mean(axis=1, keepdims=True), L - L.mean(axis=1, keepdims=True)
    nx, ny = neighbours(X, k), neighbours(Y, k)

    def align(A, B, na, nb):
        return sum(A[i, j] * B[i, j] for i in range(len(A)) for j in na[i] & nb[i])

    return align(Kc, Lc, nx, ny) / math.sqrt(align(Kc, Kc, nx, nx) * align(Lc, Lc, ny, ny))


def ref_linear_reg(X, Y):
    A = np.hstack([np.ones((len(X), 1)), X])
    coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
    return 1 - np.sum((Y - A @ coef) ** 2) / np.sum(centred(Y) ** 2)


def ref_cca_rho_top(X, Y):
    Qx, _ = np.linalg.qr(centred(X))
    Qy, _ = np.linalg.qr(centred(Y))
    return scipy.linalg.svdvals(Qx.T @ Qy)[0]


def padded(X, Y):
    d = max(X.shape[1], Y.shape[1])
    return [np.hstack([A, np.zeros((len(A), d - A.shape[1]))]) for A in (X, Y)]


def partial_whiten(X, alpha):
    """Williams et al. 2021 / netrep's whiten(X, alpha): X (alpha I + (1 - alpha) (X'X)^-1/2), on
    X centred and rescaled so that ||X||_F^2 equals its rank (our documented convention)."""
    Xc = centred(X)
    s = np.linalg.svd(Xc, compute_uv=False)
    r = int(np.sum(s > max(Xc.shape) * np.finfo(np.float64).eps * s[0]))
    Xc = Xc * math.sqrt(r) / np.linalg.norm(Xc)
    lam, V = np.linalg.eigh(Xc.T @ Xc)
    lam = np.maximum(lam, 1e-300)
    d = np.where(lam > 1e-9 * lam.max(), alpha + (1 - alpha) / np.sqrt(lam), 0.0)
    return Xc @ (V * d) @ V.T


def ref_shape_alpha(X, Y, alpha=0.5):
    A, B = padded(partial_whiten(X, alpha), partial_whiten(Y, alpha))
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    U, _, Vt = np.linalg.svd(A.T @ B)
    return np.arccos(np.clip(np.sum(A * (B @ (U @ Vt).T)), -1, 1))


def ref_permutation(X, Y):
    """Brute force over every matching of the units of X and Y, both zero-padded to D_x + D_y
    units: every one-to-one pairing of some units of X with some of Y (the rest meet zeros)."""
    A, B = centred(X), centred(Y)
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    dx, dy = A.shape[1], B.shape[1]
    best = 0.0  # nothing matched
    for k in range(1, min(dx, dy) + 1):
        for rows in itertools.combinations(range(dx), k):
            for cols in itertools.permutations(range(dy), k):
                best = max(best, float(np.sum(A[:, rows] * B[:, cols])))
    return np.arccos(np.clip(best, -1, 1))


def pooled_median_r(predicted, Y):
    r = [np.corrcoef(predicted[:, j], Y[:, j])[0, 1] for j in range(Y.shape[1])]
    return np.median(r)


def alpha_grid(X):
    return np.sum(centred(X) ** 2) / min(X.shape) * 10.0 ** np.arange(-6.0, 7.0)


def gcv_alpha(Xtr, Ytr, alphas):
    """Golub, Heath & Wahba (1979) with an unpenalised intercept, from the dense hat matrix."""
    n = len(Xtr)
    Xc = centred(Xtr)
    scores = []
    for a in alphas:
        H = np.full((n, n), 1.0 / n) + Xc @ np.linalg.solve(Xc.T @ Xc + a * np.eye(Xc.shape[1]), Xc.T)
        scores.append(np.sum(((np.eye(n) - H) @ Ytr) ** 2) / (1 - np.trace(H) / n) ** 2)
    return alphas[int(np.argmin(scores))]


def ref_ridge_r(X, Y, folds=5, seed=0):
    predicted = np.empty_like(Y)
    alphas = alpha_grid(X)
    for test in fold_indices(len(X), folds, seed):
        train = np.setdiff1d(np.arange(len(X)), test)
        model = Ridge(alpha=gcv_alpha(X[train], Y[train], alphas), solver="svd").fit(X[train], Y[train])
        predicted[test] = model.predict(X[test])
    return pooled_median_r(predicted, Y)


def ref_pls_r(X, Y, components=25, folds=5, seed=0):
    predicted = np.empty_like(Y)
    for test in fold_indices(len(X), folds, seed):
        train = np.setdiff1d(np.arange(len(X)), test)
        c = min(components, X.shape[1], len(train) - 1)
        model = PLSRegression(c, scale=False, tol=1e-26, max_iter=100_000).fit(X[train], Y[train])
        predicted[test] = model.predict(X[test])
    return pooled_median_r(predicted, Y)


REFERENCES = {
    "mutual_knn": ref_mutual_knn, "jaccard_knn": ref_jaccard_knn, "cknna": ref_cknna,
    "dcor": lambda X, Y: dcor.distance_correlation(X, Y), "linear_reg": ref_linear_reg,
    "cca_rho_top": ref_cca_rho_top, "shape_alpha": ref_shape_alpha, "ridge_r": ref_ridge_r,
    "pls_r": ref_pls_r,
}
NEW = sorted(REFERENCES) + ["permutation"]


@pytest.mark.parametrize("measure", sorted(REFERENCES))
@pytest.mark.parametrize("shape", [(80, 12, 15), (40, 60, 25)])
def test_matches_reference(measure, shape):
    n, dx, dy = shape
    X, Y = related(sum(shape), n, dx, dy, offset=1.5)
    expected = REFERENCES[measure](X, Y)
    assert compute.similarity(X, Y, measure, **F64) == pytest.approx(expected, abs=1e-9)
    assert compute.similarity(X, Y, measure) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9])
def test_shape_alpha_options_match_reference(alpha):
    X, Y = related(7, 60, 9, 5, offset=2.0)
    assert compute.similarity(X, Y, "shape_alpha", alpha=alpha, **F64) == pytest.approx(
        ref_shape_alpha(X, Y, alpha), abs=1e-9)


@pytest.mark.parametrize("shape", [(30, 5, 4), (25, 3, 6), (20, 6, 6)])
def test_permutation_matches_brute_force(shape):
    n, dx, dy = shape
    X, Y = related(sum(shape), n, dx, dy, offset=0.5)
    assert compute.similarity(X, Y, "permutation", **F64) == pytest.approx(ref_permutation(X, Y), abs=1e-9)
    assert compute.similarity(X, Y, "permutation") == pytest.approx(ref_permutation(X, Y), abs=1e-5)


def test_encoding_options_match_references():
    X, Y = related(8, 90, 10, 7)
    assert compute.similarity(X, Y, "ridge_r", folds=3, seed=4, **F64) == pytest.approx(
        ref_ridge_r(X, Y, 3, 4), abs=1e-9)
    assert compute.similarity(X, Y, "pls_r", components=3, folds=4, seed=1, **F64) == pytest.approx(
        ref_pls_r(X, Y, 3, 4, 1), abs=1e-9)
    assert compute.similarity(X, Y, "mutual_knn", k=4, **F64) == pytest.approx(ref_mutual_knn(X, Y, 4))
    assert compute.similarity(X, Y, "cknna", k=25, **F64) == pytest.approx(ref_cknna(X, Y, 25), abs=1e-9)


def test_folds_partition_the_stimuli_like_kfold():
    parts = fold_indices(23, 5, seed=3)
    assert [len(p) for p in parts] == [5, 5, 5, 4, 4]
    assert sorted(np.concatenate(parts).tolist()) == list(range(23))
    assert all(np.array_equal(a, b) for a, b in zip(parts, fold_indices(23, 5, seed=3)))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, fold_indices(23, 5, seed=4)))


# --- closed forms ---------------------------------------------------------------------------------
def test_closed_forms():
    X, Y = related(1, 50, 8, 8, offset=1.0)
    Q = ortho_group.rvs(8, random_state=0)
    for measure in ("mutual_knn", "jaccard_knn", "cknna"):
        assert compute.similarity(X, 3.0 * X @ Q, measure, **F64) == pytest.approx(1.0, abs=1e-12)
        # k = N - 1: every other stimulus is a neighbour in both layers
    assert compute.similarity(X, Y, "mutual_knn", k=49) == 1.0
    assert compute.similarity(X, Y, "jaccard_knn", k=49) == 1.0
    assert compute.similarity(X, Y, "cknna", k=49, **F64) == pytest.approx(ref_cknna(X, Y, 49), abs=1e-9)
    # shape_alpha: alpha = 1 is procrustes exactly; alpha = 0 the arccos of mean CCA (equal ranks)
    assert compute.similarity(X, Y, "shape_alpha", alpha=1.0) == compute.similarity(X, Y, "procrustes")
    rho = scipy.linalg.svdvals(np.linalg.qr(centred(X))[0].T @ np.linalg.qr(centred(Y))[0])
    assert compute.similarity(X, Y, "shape_alpha", alpha=0.0, **F64) == pytest.approx(
        np.arccos(rho.mean()), abs=1e-9)
    # permutation: a shuffled, scaled, shifted copy is at distance 0; Y = -X for one unit is no
    # match (it stays unmatched): pi/2
    perm = np.random.default_rng(0).permutation(8)
    assert compute.similarity(X, 2 * X[:, perm] + 5, "permutation", **F64) == pytest.approx(0.0, abs=1e-7)
    assert compute.similarity(X[:, :1], -X[:, :1], "permutation", **F64) == pytest.approx(math.pi / 2)
    # linear_reg: Y a linear map of X is fitted exactly; wide X (D >= N - 1) fits anything
    assert compute.similarity(X, X @ np.random.default_rng(1).standard_normal((8, 3)) + 1, "linear_reg") == \
        pytest.approx(1.0, abs=1e-6)
    wide = np.random.default_rng(2).standard_normal((50, 60))
    assert compute.similarity(wide, Y, "linear_reg", **F64) == pytest.approx(1.0, abs=1e-9)


def test_knn_ties_go_to_the_lower_index():
    """Duplicate stimuli tie exactly: the lower index is the neighbour, in float32 and float64 alike."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((12, 5))
    X = np.vstack([base, base[:6], base[:6]])  # three copies of the first six stimuli
    Y = rng.standard_normal((24, 4))
    for k in (1, 2, 5):
        for measure in ("mutual_knn", "jaccard_knn"):
            expected = REFERENCES[measure](X, Y, k)
            assert compute.similarity(X, Y, measure, k=k) == pytest.approx(expected, abs=1e-12)
            assert compute.similarity(X, Y, measure, k=k, **F64) == pytest.approx(expected, abs=1e-12)
    zero = X.copy()
    zero[3] = 0.0  # cosine 0 with everything: its neighbours are tied, the lowest indices win
    assert compute.similarity(zero, Y, "mutual_knn", k=3) == pytest.approx(_ref_zero_row(zero, Y, 3), abs=1e-12)


def _ref_zero_row(X, Y, k):
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    F = X / np.where(norms > 0, norms, 1.0)
    S = F @ F.T
    np.fill_diagonal(S, -np.inf)
    nx = [set(np.argsort(-S[i], kind="stable")[:k]) for i in range(len(S))]
    ny = neighbours(Y, k)
    return np.mean([len(a & b) / k for a, b in zip(nx, ny)])


def test_knn_neighbours_come_in_row_blocks(monkeypatch):
    from compute.measures import knn

    X, Y = related(4, 70, 9, 6)
    whole = compute.similarity(X, Y, "cknna", **F64)
    monkeypatch.setattr(knn, "_BLOCK_ENTRIES", 70 * 8)  # 8-row blocks
    assert compute.similarity(X, Y, "cknna", **F64) == pytest.approx(whole, abs=1e-14)


def test_asymmetric_measures_say_so_and_their_self_grid_holds_both_directions():
    assert {m for m in compute.MEASURES if not compute.MEASURES[m].symmetric} == {
        "pwcca", "linear_reg", "ridge_r", "pls_r"}
    X, Y = related(5, 60, 10, 4)
    acts = {"x": X, "y": Y}
    for measure in ("linear_reg", "ridge_r", "pls_r"):
        grid = compute.layer_grid(acts, acts, measure)
        assert grid[0, 1] == pytest.approx(compute.similarity(X, Y, measure), abs=1e-12)
        assert grid[1, 0] == pytest.approx(compute.similarity(Y, X, measure), abs=1e-12)
        assert abs(grid[0, 1] - grid[1, 0]) > 1e-3


# --- invariances and metric properties (hypothesis) -----------------------------------------------
dims = dict(seed=st.integers(0, 2**31), n=st.integers(12, 40), dx=st.integers(2, 7), dy=st.integers(2, 7))


@PROPS
@given(**dims, scale=st.floats(0.01, 100.0), shift=st.floats(-10, 10))
def test_declared_invariances(seed, n, dx, dy, scale, shift):
    X, Y = related(seed, n, dx, dy, offset=0.3)
    rng = np.random.default_rng(seed)
    Q = ortho_group.rvs(dx, random_state=seed % 2**32) if dx > 1 else np.array([[-1.0]])
    moved = scale * X @ Q + shift
    for measure in ("dcor", "shape_alpha", "ridge_r", "pls_r", "cca_rho_top", "linear_reg"):
        before = compute.similarity(X, Y, measure, **F64)
        assert compute.similarity(moved, Y, measure, **F64) == pytest.approx(before, abs=1e-7), measure
    for measure in ("mutual_knn", "jaccard_knn", "cknna"):  # cosine kernels: no translation
        k = min(5, n - 1)
        rows = np.exp(rng.uniform(-2, 2, (n, 1))) if measure != "cknna" else scale
        assert compute.similarity(rows * X @ Q, Y, measure, k=k, **F64) == pytest.approx(
            compute.similarity(X, Y, measure, k=k, **F64), abs=1e-9), measure
    A = Q @ np.diag(np.exp(rng.uniform(-2, 2, dx)))  # invertible linear maps of X
    for measure in ("cca_rho_top", "linear_reg"):
        assert compute.similarity(X @ A + shift, Y, measure, **F64) == pytest.approx(
            compute.similarity(X, Y, measure, **F64), abs=1e-8)
    perm = rng.permutation(dx)
    assert compute.similarity(scale * X[:, perm] + shift, Y, "permutation", **F64) == pytest.approx(
        compute.similarity(X, Y, "permutation", **F64), abs=1e-8)


@PROPS
@given(seed=st.integers(0, 2**31), n=st.integers(8, 30), alpha=st.floats(0.0, 1.0),
       widths=st.tuples(*[st.integers(1, 6)] * 3))
@example(seed=9, n=8, alpha=0.0, widths=(1, 1, 2))  # pairwise padding to the wider side broke it
def test_shape_metrics_obey_the_triangle_inequality(seed, n, alpha, widths):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    layers = [Z @ rng.standard_normal((3, d)) + rng.standard_normal((n, d)) * rng.uniform(0.1, 2) for d in widths]
    for measure, options in (("shape_alpha", {"alpha": alpha}), ("permutation", {})):
        grid = compute.layer_grid(dict(enumerate(layers)), dict(enumerate(layers)), measure, **F64, **options)
        np.testing.assert_allclose(grid, grid.T, atol=1e-9)
        assert np.all(np.abs(np.diag(grid)) < 1e-6)
        for i, j, k in itertools.permutations(range(3)):
            assert grid[i, k] <= grid[i, j] + grid[j, k] + 1e-9


# --- degenerate input -------------------------------------------------------------------------------
def test_degenerate_input_is_refused_clearly():
    X, Y = related(6, 30, 5, 4)
    with pytest.raises(ValueError, match="k=30 neighbours needs more than 30 stimuli"):
        compute.similarity(X, Y, "mutual_knn", k=30)
    with pytest.raises(ValueError, match="k must be"):
        compute.similarity(X, Y, "cknna", k=2.5)
    with pytest.raises(ValueError, match="k must be a positive"):
        compute.similarity(X, Y, "jaccard_knn", k=0)
    with pytest.raises(ValueError, match="at least 4"):
        compute.similarity(X[:3], Y[:3], "cknna", k=2)
    with pytest.raises(ValueError, match="at least 4"):
        compute.similarity(X[:3], Y[:3], "ridge_r")
    with pytest.raises(ValueError, match="folds must be a whole number from 2 to N/2 = 15"):
        compute.similarity(X, Y, "ridge_r", folds=16)
    with pytest.raises(ValueError, match="seed"):
        compute.similarity(X, Y, "pls_r", seed=-1)
    with pytest.raises(ValueError, match="components"):
        compute.similarity(X, Y, "pls_r", components=0)
    with pytest.raises(ValueError, match="alpha must be in"):
        compute.similarity(X, Y, "shape_alpha", alpha=1.5)
    with pytest.raises(ValueError, match="takes no option"):
        compute.similarity(X, Y, "dcor", k=3)
    with pytest.raises(ValueError, match="same for every stimulus"):
        compute.similarity(np.ones((30, 2)), Y, "ridge_r")


def test_constant_units_are_left_out():
    X, Y = related(9, 60, 6, 5)
    Y_dead = np.hstack([Y, np.full((60, 1), 4.0)])
    X_dead = np.hstack([X, np.full((60, 1), -1.0)])
    for measure in ("ridge_r", "pls_r", "linear_reg", "cca_rho_top"):
        assert compute.similarity(X_dead, Y_dead, measure, **F64) == pytest.approx(
            compute.similarity(X, Y, measure, **F64), abs=1e-9), measure


@pytest.mark.parametrize("measure", NEW)
def test_layer_grid_equals_pairwise_with_options(measure):
    options = {"shape_alpha": {"alpha": 0.2}, "mutual_knn": {"k": 4}, "cknna": {"k": 6},
               "ridge_r": {"folds": 3, "seed": 2}, "pls_r": {"components": 3}}.get(measure, {})
    rng = np.random.default_rng(11)
    acts_a = {"a": rng.standard_normal((36, 7)), "b": rng.standard_normal((36, 50))}
    acts_b = {"c": acts_a["a"] @ rng.standard_normal((7, 5)) + 0.3 * rng.standard_normal((36, 5))}
    grid = compute.layer_grid(acts_a, acts_b, measure, **options)
    expected = [[compute.similarity(x, y, measure, **options) for y in acts_b.values()] for x in acts_a.values()]
    np.testing.assert_allclose(grid, expected, atol=1e-9)


# --- dimensionality ---------------------------------------------------------------------------------
def test_dimensionality_against_definitions():
    X, _ = related(12, 70, 9, 3, offset=2.0)
    lam = np.linalg.eigvalsh(np.cov(X.T))
    sigma = np.linalg.svd(centred(X), compute_uv=False)
    p = sigma / sigma.sum()
    assert compute.dimensionality(X, **F64) == pytest.approx(lam.sum() ** 2 / np.sum(lam ** 2), abs=1e-9)
    assert compute.dimensionality(X, "effective_rank", **F64) == pytest.approx(np.exp(-np.sum(p * np.log(p))), abs=1e-9)
    assert compute.dimensionality(X) == pytest.approx(compute.dimensionality(X, **F64), abs=1e-5)
    wide = np.random.default_rng(0).standard_normal((20, 50))  # the Gram route, N x N
    sigma = np.linalg.svd(centred(wide), compute_uv=False)
    assert compute.dimensionality(wide, **F64) == pytest.approx(np.sum(sigma ** 2) ** 2 / np.sum(sigma ** 4), abs=1e-9)
    # closed forms: k equal orthogonal directions give k; invariant to rotation, scale and shift
    even = np.kron(np.eye(4), np.array([[1.0], [-1.0]]))  # 8 stimuli, 4 orthogonal equal directions
    for method in ("participation_ratio", "effective_rank"):
        assert compute.dimensionality(even, method, **F64) == pytest.approx(4.0, abs=1e-9)
        Q = ortho_group.rvs(9, random_state=1)
        assert compute.dimensionality(3 * X @ Q - 7, method, **F64) == pytest.approx(
            compute.dimensionality(X, method, **F64), abs=1e-9)
    with pytest.raises(ValueError, match="participation_ratio, effective_rank"):
        compute.dimensionality(X, "pca")
    with pytest.raises(ValueError, match="same for every stimulus"):
        compute.dimensionality(np.ones((5, 3)))
