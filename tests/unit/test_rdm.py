"""compute.rdm against scipy's pdist and rsatoolbox, its symmetries, blocking and bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

import compute
import compute.measures.rdm as rdm_module

METHODS = ["correlation", "cosine", "euclidean", "sqeuclidean", "spearman"]
TOLERANCE = {None: 1e-5, np.float64: 1e-9}


def reference(X: np.ndarray, method: str) -> np.ndarray:
    if method == "spearman":
        return pdist(rankdata(X, axis=1), "correlation")
    return pdist(X, method)


def activations(seed: int, n: int = 40, d: int = 15) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) / np.sqrt(d)


@pytest.mark.parametrize("dtype", [None, np.float64])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_pdist(method, dtype, seed):
    X = activations(seed)
    ref = reference(X, method)
    condensed = compute.rdm(X, method, condensed=True, dtype=dtype, device="cpu")
    square = compute.rdm(X, method, dtype=dtype, device="cpu")
    assert condensed.dtype == (np.float64 if dtype else np.float32)
    assert square.shape == (40, 40)
    np.testing.assert_allclose(condensed, ref, rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(square, squareform(ref), rtol=0, atol=TOLERANCE[dtype])


def test_spearman_rdm_with_tied_features():
    X = np.random.default_rng(2).integers(0, 4, size=(20, 12)).astype(float)
    X[:, 0] = np.arange(20)  # no constant rows
    ref = reference(X, "spearman")
    np.testing.assert_allclose(compute.rdm(X, "spearman", True, np.float64, "cpu"), ref, atol=1e-9)


def test_matches_rsatoolbox():
    import rsatoolbox

    X = activations(3)
    data = rsatoolbox.data.Dataset(X)
    corr = rsatoolbox.rdm.calc_rdm(data, method="correlation").get_vectors()[0]
    np.testing.assert_allclose(compute.rdm(X, "correlation", True, np.float64), corr, atol=1e-9)
    # rsatoolbox's 'euclidean' is the mean squared difference per feature.
    euclid = rsatoolbox.rdm.calc_rdm(data, method="euclidean").get_vectors()[0]
    ours = compute.rdm(X, "sqeuclidean", True, np.float64) / X.shape[1]
    np.testing.assert_allclose(ours, euclid, atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_input_is_left_unchanged(method):
    X = activations(12)
    before = X.copy()
    compute.rdm(torch.from_numpy(X), method, dtype=np.float64, device="cpu")  # shares X's memory
    np.testing.assert_array_equal(X, before)


def test_accepts_torch_tensors():
    X = activations(4)
    ours = compute.rdm(torch.from_numpy(X), "correlation", condensed=True, device="cpu")
    np.testing.assert_allclose(ours, pdist(X, "correlation"), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_pdist(method):
    X = activations(5, n=300, d=64)
    ours = compute.rdm(torch.from_numpy(X).cuda(), method, condensed=True, device="cuda")
    np.testing.assert_allclose(ours, reference(X, method), atol=1e-5)
    ours64 = compute.rdm(X, method, condensed=True, dtype=np.float64, device="cuda")
    np.testing.assert_allclose(ours64, reference(X, method), atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_small_blocks_equal_one_block(method, monkeypatch):
    X = activations(6, n=23, d=5)
    whole_square = compute.rdm(X, method, dtype=np.float64, device="cpu")
    whole = compute.rdm(X, method, condensed=True, dtype=np.float64, device="cpu")
    monkeypatch.setattr(rdm_module, "BLOCK_ELEMENTS", 7)  # one or a few rows per block
    blocked = compute.rdm(X, method, condensed=True, dtype=np.float64, device="cpu")
    blocked_square = compute.rdm(X, method, dtype=np.float64, device="cpu")
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-12)
    np.testing.assert_allclose(blocked_square, whole_square, rtol=0, atol=1e-12)
    assert np.array_equal(blocked_square, blocked_square.T)
    np.testing.assert_array_equal(squareform(blocked, checks=False), blocked_square)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 12),
    d=st.integers(2, 8),
    method=st.sampled_from(METHODS),
)
def test_symmetric_zero_diagonal_and_permutation_equivariant(seed, n, d, method):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10)
    D = compute.rdm(X, method, dtype=np.float64, device="cpu")
    assert np.array_equal(D, D.T)
    assert np.all(np.diag(D) == 0)
    assert np.all(D >= 0)
    perm = rng.permutation(n)
    D_perm = compute.rdm(X[perm], method, dtype=np.float64, device="cpu")
    np.testing.assert_allclose(D_perm, D[np.ix_(perm, perm)], atol=1e-9 * max(1.0, D.max()))


def test_two_clusters_give_a_block_rdm():
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(2, 30)) * 5
    X = np.repeat(centres, 10, axis=0) + 0.1 * rng.normal(size=(20, 30))
    labels = np.repeat([0, 1], 10)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(20, dtype=bool)
    for method in METHODS:
        D = compute.rdm(X, method, device="cpu")
        assert D[same & off_diagonal].max() < D[~same].min(), method


def test_exact_duplicates_are_at_distance_zero():
    X = activations(8, n=10, d=6) + 100.0  # large offset: the norm trick alone would not give 0
    X = np.vstack([X, X[2]])
    for method in ("euclidean", "sqeuclidean"):
        D = compute.rdm(X, method, device="cpu")
        assert D[2, 10] == 0.0
        # The reference sees the same float32-rounded input: the offset costs input digits only.
        ref = squareform(pdist(X[:10].astype(np.float32).astype(np.float64), method))
        np.testing.assert_allclose(D[:10, :10], ref, rtol=1e-5)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.ones((4, 3, 2)), "must be 2-D"),
        (np.ones((2, 3)), "2 stimuli"),
        (np.array([[1.0, 2], [np.nan, 1], [3, 4], [5, np.inf]]), r"rows 1, 3"),
    ],
)
def test_bad_activations(X, match):
    with pytest.raises(ValueError, match=match):
        compute.rdm(X)


@pytest.mark.parametrize("dtype", [None, np.float64])
@pytest.mark.parametrize("method", ["correlation", "spearman"])
def test_constant_patterns_are_named(method, dtype, monkeypatch):
    monkeypatch.setattr(rdm_module, "_CACHE_ELEMENTS", 16)  # rows in several chunks
    X = activations(9, n=12, d=3)
    X[[1, 10]] = 0.1  # three float64 0.1s do not average to 0.1: a rounding residue is left
    with pytest.raises(ValueError, match=r"2 constant activation patterns \(stimuli 1, 10\)"):
        compute.rdm(X, method, dtype=dtype)
    X[[1, 10], 0] += 1e-9  # nearly constant is not constant
    assert np.isfinite(compute.rdm(X, method, dtype=np.float64)).all()


def test_zero_patterns_under_cosine_are_named():
    X = activations(10, n=6, d=4)
    X[5] = 0.0
    with pytest.raises(ValueError, match=r"all-zero.*stimuli 5"):
        compute.rdm(X, "cosine")


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown RDM method 'chebyshev'"):
        compute.rdm(activations(0), "chebyshev")


def test_registry_lists_the_methods():
    assert sorted(compute.RDM_METHODS) == sorted(METHODS)
    assert all(m.kind == "distance" for m in compute.RDM_METHODS.values())


def test_rank_rows_matches_scipy():
    X = np.random.default_rng(11).integers(0, 5, size=(7, 30)).astype(float)
    ranks = rdm_module.rank_rows(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(ranks, rankdata(X, axis=1))


@pytest.mark.parametrize("method", ["euclidean", "correlation", "cosine"])
def test_real_activations_at_the_default_precision_match_pdist(method, monkeypatch):
    """google/svcca's MNIST layer-4 activations (units up to ~170, unequal scales), 600 stimuli:
    the syrk route at float32 against scipy's pdist in float64, and the blocked GEMM route."""
    from tests.support import external_data

    path = external_data("svcca") / "mnist_model0_lay04.npy"
    if not path.exists():
        pytest.skip(f"google/svcca's tutorial activations are not at {path.parent}")
    X = np.load(path, allow_pickle=False)[:600]
    ref = pdist(X.astype(np.float64), method)
    syrk = compute.rdm(X, method, condensed=True, device="cpu")
    assert syrk.dtype == np.float32
    np.testing.assert_allclose(syrk, ref, rtol=1e-5, atol=1e-5 * ref.max())
    monkeypatch.setattr(rdm_module, "SYRK_ROWS", 0)  # the blocked GEMM route on the same data
    blocked = compute.rdm(X, method, condensed=True, device="cpu")
    np.testing.assert_allclose(blocked, ref, rtol=1e-5, atol=1e-5 * ref.max())
