"""compute.similarity / layer_grid / MEASURES against independent references, properties and claims."""
from __future__ import annotations

import dataclasses
import math

import hoggorm
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings, strategies as st
from scipy.spatial.distance import pdist, squareform
from scipy.stats import ortho_group

import compute
from compute.measures import cca, numerics
from compute.measures.numerics import one_blas_thread

SIMILARITIES = sorted(m for m in compute.MEASURES if compute.MEASURES[m].kind == "similarity")
SYMMETRIC = sorted(m for m in compute.MEASURES if compute.MEASURES[m].symmetric)
PROPS = settings(max_examples=25, deadline=None)


# --- plain NumPy float64 references ---------------------------------------------------------
def centred(X):
    return X - X.mean(axis=0)


def ref_cka_linear(X, Y):
    n = len(X)
    H = np.eye(n) - 1.0 / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


def hsic_unbiased(K, L):
    """Song et al. (2012), eq. 5, on Gram matrices with zeroed diagonals."""
    n = len(K)
    K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    ones = np.ones(n)
    return (np.trace(K @ L) + (ones @ K @ ones) * (ones @ L @ ones) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * ones @ K @ L @ ones) / (n * (n - 3))


def ref_cka_debiased(X, Y):
    K, L = X @ X.T, Y @ Y.T  # uncentred: the U-statistic does not need centring
    return hsic_unbiased(K, L) / np.sqrt(hsic_unbiased(K, K) * hsic_unbiased(L, L))


def ref_cka_rbf(X, Y, threshold=1.0):
    def gram(A):
        sq = squareform(pdist(A, "sqeuclidean"))
        K = np.exp(-sq / (2 * threshold**2 * np.median(sq)))
        H = np.eye(len(A)) - 1.0 / len(A)
        return H @ K @ H
    K, L = gram(X), gram(Y)
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


def ref_cca_mean(X, Y):
    Qx, _ = scipy.linalg.qr(centred(X), mode="economic")
    Qy, _ = scipy.linalg.qr(centred(Y), mode="economic")
    return np.mean(scipy.linalg.svdvals(Qx.T @ Qy))


def ref_svcca(X, Y, keep=0.99):
    def top(A):
        U, s, _ = np.linalg.svd(centred(A), full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), keep) + 1)
        return U[:, :k]
    return np.mean(scipy.linalg.svdvals(top(X).T @ top(Y)))


def ref_pwcca(X, Y):
    """google/svcca compute_pwcca(acts1, acts2, epsilon=0) re-derived; acts are neurons x data."""
    a1, a2 = X.T, Y.T
    nx = len(a1)
    cov = np.cov(a1, a2)
    sxx, sxy, syy = cov[:nx, :nx], cov[:nx, nx:], cov[nx:, nx:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)

    def psd_sqrt(A):
        w, v = np.linalg.eigh(A)
        return v @ np.diag(np.sqrt(w)) @ v.T

    arr = psd_sqrt(np.linalg.pinv(sxx)) @ (sxy @ psd_sqrt(np.linalg.pinv(syy)))
    u, s, vt = np.linalg.svd(arr)
    acts, coef = (a1, u.T) if len(a1) <= len(a2) else (a2, vt)  # the narrower side's own acts
    mu = acts.mean(axis=1, keepdims=True)
    dirns = coef @ (acts - mu) + mu
    P, _ = np.linalg.qr(dirns.T)
    w = np.sum(np.abs(P.T @ acts.T), axis=1)
    return np.sum(w / w.sum() * np.abs(s))


def ref_procrustes(X, Y):
    A, B = centred(X), centred(Y)
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    width = max(A.shape[1], B.shape[1])
    A = np.pad(A, ((0, 0), (0, width - A.shape[1])))
    B = np.pad(B, ((0, 0), (0, width - B.shape[1])))
    R, _ = scipy.linalg.orthogonal_procrustes(B, A)
    return np.arccos(np.clip(np.sum(A * (B @ R)), -1, 1))


REFERENCES = {
    "cka_linear": ref_cka_linear,
    "cka_debiased": ref_cka_debiased,
    "cka_rbf": ref_cka_rbf,
    "rv": lambda X, Y: hoggorm.RVcoeff([centred(X), centred(Y)])[0, 1],
    "rv2": lambda X, Y: hoggorm.RV2coeff([centred(X), centred(Y)])[0, 1],
    "cca_mean": ref_cca_mean,
    "svcca": ref_svcca,
    "pwcca": lambda X, Y: ref_pwcca(X, Y) if X.shape[1] <= Y.shape[1] else ref_pwcca(Y, X),  # narrower first
    "procrustes": ref_procrustes,
}


def related(seed, n=80, dx=12, dy=15, offset=0.0):
    """Two noisy views of a shared latent, with positive neuron means like ReLU activations."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 6))
    X = Z @ rng.standard_normal((6, dx)) + 0.7 * rng.standard_normal((n, dx)) + offset
    Y = np.tanh(Z @ rng.standard_normal((6, dy))) + 0.5 * rng.standard_normal((n, dy)) + offset
    return X, Y


# --- references ---------------------------------------------------------------------------
@pytest.mark.parametrize("measure", sorted(REFERENCES))
@pytest.mark.parametrize("shape", [(80, 12, 15), (40, 60, 25), (60, 9, 9)])
def test_matches_reference(measure, shape):
    n, dx, dy = shape
    if measure in ("pwcca", "cca_mean") and max(dx, dy) >= n:
        shape = (n, min(dx, n // 3), min(dy, n // 4))  # full-rank sides; the wide case is below
        n, dx, dy = shape
    X, Y = related(sum(shape), n, dx, dy, offset=1.5)
    expected = REFERENCES[measure](X, Y)
    assert compute.similarity(X, Y, measure) == pytest.approx(expected, abs=1e-5)
    assert compute.similarity(X, Y, measure, dtype=np.float64) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_pwcca_is_google_narrower_first_in_either_order(seed):
    """Both orders give compute_pwcca(narrower, wider): its directions add the neuron means back,
    so the other order (V of the SVD, not U) differed by the singular vectors' signs."""
    X, Y = related(seed, 120, 20, 7, offset=2.0)  # Y is the narrower
    assert compute.similarity(X, Y, "pwcca", dtype=np.float64) == pytest.approx(ref_pwcca(Y, X), abs=1e-9)
    assert compute.similarity(Y, X, "pwcca", dtype=np.float64) == pytest.approx(ref_pwcca(Y, X), abs=1e-9)
    assert abs(ref_pwcca(X, Y) - ref_pwcca(Y, X)) > 1e-4  # the order-dependent value it used to give


def test_options_match_references():
    X, Y = related(3, 70, 20, 10)
    assert compute.similarity(X, Y, "cka_rbf", threshold=0.5) == pytest.approx(
        ref_cka_rbf(X, Y, 0.5), abs=1e-5)
    assert compute.similarity(X, Y, "svcca", dtype=np.float64, keep=0.8) == pytest.approx(
        ref_svcca(X, Y, 0.8), abs=1e-9)
    # keep=1 keeps every direction: svcca is mean CCA
    assert compute.similarity(X, Y, "svcca", dtype=np.float64, keep=1.0) == pytest.approx(
        ref_cca_mean(X, Y), abs=1e-9)


def test_cca_drops_null_directions():
    X, Y = related(4, 60, 8, 6)
    X_bad = np.hstack([X, np.full((60, 1), 3.0), X[:, :2] @ np.ones((2, 1))])  # constant, collinear
    value = compute.similarity(X_bad, Y, "cca_mean", dtype=np.float64)
    assert value == pytest.approx(ref_cca_mean(X, Y), abs=1e-9)
    assert math.isfinite(compute.similarity(X_bad, Y, "pwcca"))
    assert math.isfinite(compute.similarity(X_bad, Y, "cca_mean"))


def test_wide_layers_use_gram_factors():
    """D > N: CCA fills the N-1 dimensional centred space; procrustes via an N x N factor."""
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((20, 50)), rng.standard_normal((20, 70))
    assert compute.similarity(X, Y, "cca_mean") == pytest.approx(1.0, abs=1e-5)
    assert compute.similarity(X, Y, "procrustes", dtype=np.float64) == pytest.approx(
        ref_procrustes(X, Y), abs=1e-9)
    with pytest.raises(ValueError, match="pwcca needs more stimuli"):
        compute.similarity(X, Y, "pwcca")


@pytest.mark.parametrize("offset", [0.0, 1e2, 1e4, 1e6])
def test_pwcca_weights_without_the_n_by_d_qr(offset, monkeypatch):
    """compute_pwcca's N x D QR of the directions is replaced by D x D algebra while the
    directions are well conditioned (neuron means up to ~1e4 x their spread here) and kept
    beyond: either way the reference's value to 1e-9."""
    X, Y = related(21, 200, 15, 6, offset=offset)
    qr_calls, real_qr = [], torch.linalg.qr
    monkeypatch.setattr(torch.linalg, "qr", lambda *a, **k: qr_calls.append(1) or real_qr(*a, **k))
    assert compute.similarity(Y, X, "pwcca", dtype=np.float64) == pytest.approx(ref_pwcca(Y, X), abs=1e-9)
    assert bool(qr_calls) == (offset >= 1e6)


def test_pwcca_weights_from_dxd_equal_the_qr_route():
    X, _ = related(22, 300, 12, 5, offset=3.0)
    state = cca.prepare_pwcca(torch.from_numpy(X), "pwcca", {})
    U = ortho_group.rvs(12, random_state=1)
    fast = cca._projection_weights(state, U)
    qr = cca._projection_weights(dataclasses.replace(state, full_rank=False), U)
    np.testing.assert_allclose(fast, qr, rtol=1e-11)


def test_gram_from_upper_blocks_equals_the_full_product():
    F = torch.from_numpy(np.random.default_rng(6).standard_normal((2000, 1000)).astype(np.float32))
    G = numerics.gram_float64(F).numpy()  # 135-column blocks, the last one 55 wide
    F64 = F.numpy().astype(np.float64)
    np.testing.assert_allclose(G, F64.T @ F64, rtol=0, atol=2e-6 * np.abs(F64.T @ F64).max())


def test_host_blas_on_one_thread_only_inside_the_measures():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    with one_blas_thread():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


# --- properties (hypothesis) ----------------------------------------------------------------
def random_pair(seed, n, dx, dy):
    return related(seed, n, dx, dy, offset=0.3)


dims = dict(seed=st.integers(0, 2**31), n=st.integers(12, 40), dx=st.integers(2, 8), dy=st.integers(2, 8))


@PROPS
@given(**dims, scale=st.floats(0.01, 100.0), shift=st.floats(-10, 10))
def test_orthogonal_scaling_translation_invariance(seed, n, dx, dy, scale, shift):
    X, Y = random_pair(seed, n, dx, dy)
    Q = ortho_group.rvs(dx, random_state=seed % 2**32) if dx > 1 else np.array([[-1.0]])
    X2 = scale * X @ Q + shift
    for measure in ("cka_linear", "cka_debiased", "cka_rbf", "rv", "rv2", "svcca", "procrustes"):
        before = compute.similarity(X, Y, measure, dtype=np.float64)
        assert compute.similarity(X2, Y, measure, dtype=np.float64) == pytest.approx(before, abs=1e-8)


@PROPS
@given(**dims)
def test_cca_invariant_to_invertible_linear_maps(seed, n, dx, dy):
    X, Y = random_pair(seed, n, dx, dy)
    rng = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(rng.standard_normal((dx, dx)))
    Q2, _ = np.linalg.qr(rng.standard_normal((dx, dx)))
    A = Q1 @ np.diag(np.exp(rng.uniform(-2, 2, dx))) @ Q2  # condition number up to e^4
    X2 = X @ A + rng.standard_normal(dx)
    assert compute.similarity(X2, Y, "cca_mean", dtype=np.float64) == pytest.approx(
        compute.similarity(X, Y, "cca_mean", dtype=np.float64), abs=1e-8)


@PROPS
@given(**dims)
def test_self_similarity_and_symmetry(seed, n, dx, dy):
    X, Y = random_pair(seed, n, dx, dy)
    for measure in SIMILARITIES:
        if measure in ("ridge_r", "pls_r"):  # a penalised or low-rank fit of X from itself: near 1, not 1
            assert compute.similarity(X, X, measure) > 0.999
            continue
        assert compute.similarity(X, X, measure) == pytest.approx(1.0, abs=1e-5)
    assert compute.similarity(X, X, "procrustes") == pytest.approx(0.0, abs=1e-6)
    for measure in SYMMETRIC:
        assert compute.similarity(X, Y, measure, dtype=np.float64) == pytest.approx(
            compute.similarity(Y, X, measure, dtype=np.float64), abs=1e-9)


@PROPS
@given(**dims, scale=st.integers(-6, 6).map(lambda e: 2.0**e))
def test_pwcca_invariant_to_isotropic_scaling(seed, n, dx, dy, scale):
    """Powers of two keep every rounding, so LAPACK picks the same singular-vector signs; other
    factors can flip a sign, on which compute_pwcca's weights (means added back) depend."""
    X, Y = random_pair(seed, n, dx, dy)
    assert compute.similarity(scale * X, Y, "pwcca", dtype=np.float64) == pytest.approx(
        compute.similarity(X, Y, "pwcca", dtype=np.float64), abs=1e-8)


def test_values_within_declared_ranges():
    X, Y = related(9, 50, 10, 30)
    for name, measure in compute.MEASURES.items():
        low, high = measure.range
        assert low <= compute.similarity(X, Y, name) <= high
        assert measure.kind in ("similarity", "distance") and measure.invariances and measure.description
    assert compute.MEASURES["procrustes"].kind == "distance"
    assert compute.MEASURES["rv2"].range == (-1.0, 1.0)


# --- the seed papers' claims ------------------------------------------------------------------
def test_rv_near_one_but_rv2_low_for_unrelated_small_n_wide_data():
    """Thompson et al. / Smilde et al.: with 30 observations x 200 features RV -> 1 by chance."""
    rng = np.random.default_rng(0)
    rv, rv2, debiased = [], [], []
    for _ in range(5):
        X, Y = rng.standard_normal((30, 200)), rng.standard_normal((30, 200))
        rv.append(compute.similarity(X, Y, "rv"))
        rv2.append(compute.similarity(X, Y, "rv2"))
        debiased.append(compute.similarity(X, Y, "cka_debiased"))
    assert np.mean(rv) > 0.85
    assert np.mean(rv2) < 0.35 and np.mean(rv) - np.mean(rv2) > 0.5
    assert abs(np.mean(debiased)) < 0.05


def test_pwcca_tracks_shared_signal_where_mean_cca_falls():
    """Morcos et al. Fig. 2: 10 shared signal dimensions (sd 1) plus a growing number of weak,
    unshared noise dimensions (sd 0.14), rotated into the neurons. Mean CCA counts directions and
    falls towards 10 / (10 + extra); PWCCA weighs each direction by its summed projection on the
    neurons (which scales with its sd) and follows the signal's share of that, 10 / (10 + 0.14 extra)."""
    rng = np.random.default_rng(1)
    n, signal, noise_sd = 2000, 10, np.sqrt(0.02)
    Z = rng.standard_normal((n, signal))
    cca, pw, signal_share = [], [], []
    for extra in (0, 10, 30, 60):
        views = []
        for _ in range(2):
            latent = np.hstack([Z, noise_sd * rng.standard_normal((n, extra))])
            views.append(latent @ ortho_group.rvs(signal + extra, random_state=rng))
        cca.append(compute.similarity(*views, "cca_mean"))
        pw.append(compute.similarity(*views, "pwcca"))
        signal_share.append(signal / (signal + noise_sd * extra))
    assert np.all(np.diff(cca) < 0) and cca[-1] < 0.3
    assert np.all(np.diff(pw) < 0)
    np.testing.assert_allclose(pw, signal_share, atol=0.08)
    assert pw[-1] - cca[-1] > 0.3


# --- layer_grid -------------------------------------------------------------------------------
@pytest.mark.parametrize("measure", sorted(compute.MEASURES))
def test_layer_grid_equals_pairwise(measure):
    rng = np.random.default_rng(2)
    n = 40
    Z = rng.standard_normal((n, 5))
    widths = {"conv": 60, "fc1": 12, "fc2": 6} if measure != "pwcca" else {"conv": 30, "fc1": 12, "fc2": 6}
    acts_a = {k: np.maximum(Z @ rng.standard_normal((5, d)) + rng.standard_normal((n, d)), 0) + 0.1
              for k, d in widths.items()}
    acts_b = {"x": rng.standard_normal((n, 8)), "y": acts_a["fc1"] + 0.1 * rng.standard_normal((n, 12))}
    for a, b in ((acts_a, acts_b), (acts_a, acts_a)):
        grid = compute.layer_grid(a, b, measure)
        assert grid.shape == (len(a), len(b))
        expected = [[compute.similarity(x, y, measure) for y in b.values()] for x in a.values()]
        np.testing.assert_allclose(grid, expected, atol=1e-6)


def test_layer_grid_kernel_route_for_wide_layers():
    rng = np.random.default_rng(3)
    acts = {f"l{i}": rng.standard_normal((15, 40 + i)) for i in range(3)}
    for measure in ("cka_linear", "rv2", "cka_debiased"):
        grid = compute.layer_grid(acts, acts, measure, dtype=np.float64)
        for i, x in enumerate(acts.values()):
            for j, y in enumerate(acts.values()):
                expected = REFERENCES[measure](x, y)
                assert grid[i, j] == pytest.approx(expected, abs=1e-9)


# --- bad input ----------------------------------------------------------------------------------
def test_bad_input_raises_value_errors():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 4)), rng.standard_normal((10, 5))
    bad = X.copy()
    bad[[2, 7], 1] = np.nan
    with pytest.raises(ValueError, match=r"rows 2, 7"):
        compute.similarity(bad, Y)
    with pytest.raises(ValueError, match="stimuli"):
        compute.similarity(X, Y[:9])
    with pytest.raises(ValueError, match="at least 3"):
        compute.similarity(X[:2], Y[:2])
    with pytest.raises(ValueError, match="at least 4"):
        compute.similarity(X[:3], Y[:3], "cka_debiased")
    with pytest.raises(ValueError, match="2-D"):
        compute.similarity(X[:, 0], Y)
    with pytest.raises(ValueError, match="cka_linear.*procrustes"):
        compute.similarity(X, Y, "cka")
    with pytest.raises(ValueError, match="same for every stimulus"):
        compute.similarity(np.ones((10, 3)), Y)
    with pytest.raises(ValueError, match="threshold"):
        compute.similarity(X, Y, "cka_linear", threshold=2.0)
    with pytest.raises(ValueError, match="keep"):
        compute.similarity(X, Y, "svcca", keep=1.5)
    with pytest.raises(ValueError, match="acts_a\\['b'\\]"):
        compute.layer_grid({"a": X, "b": Y[:8]}, {"c": Y})
    with pytest.raises(ValueError, match="stimuli"):
        compute.layer_grid({"a": X}, {"c": Y[:8]})
    with pytest.raises(ValueError, match="non-empty dict"):
        compute.layer_grid({}, {"c": Y})


@pytest.mark.parametrize("batched", [True, False])
def test_float32_blocks_are_summed_in_float64(batched, monkeypatch):
    from compute.measures import numerics as module

    if not batched:
        monkeypatch.setattr(module, "_BATCHED_ELEMENTS", 0)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3 * module._ROW_BLOCK + 5, 3)).astype(np.float32) + 10
    B = A[:, :2] * 3
    import torch

    got = module.crossprod_float64(torch.from_numpy(A), torch.from_numpy(B)).numpy()
    np.testing.assert_allclose(got, A.astype(np.float64).T @ B.astype(np.float64), rtol=1e-6)


@pytest.mark.parametrize("measure", ["cka_linear", "rv2", "cka_debiased"])
def test_self_terms_from_column_blocks_equal_the_full_product(measure, monkeypatch):
    """||X'X||^2 from the blocks on and above the diagonal of X'X, as from the full X'X."""
    from compute.measures import numerics as module

    X, Y = related(5, n=300, dx=290, dy=140, offset=1.5)
    whole = compute.similarity(X, Y, measure, dtype=np.float64)
    monkeypatch.setattr(module, "_SELF_BLOCK_WORK", 1)  # 128-column blocks: 3 for X, 2 for Y
    assert compute.similarity(X, Y, measure, dtype=np.float64) == pytest.approx(whole, abs=1e-12)
    assert compute.similarity(X, Y, measure) == pytest.approx(REFERENCES[measure](X, Y), abs=1e-5)
