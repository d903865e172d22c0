"""compare_rdms and model_rdm against rsatoolbox, scipy and closed forms; properties; bad input."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform

import compute
from tests.unit.peers import METHODS, RSATOOLBOX_NAMES

RANK_METHODS = ["spearman", "kendall_tau_a", "rho_a"]
TOLERANCE = {None: 1e-5, np.float64: 1e-9}


def rdm_pair(seed: int, n: int = 25, ties: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    a = pdist(X)
    b = pdist(X + rng.normal(size=X.shape))
    if ties:
        b[::7] = b[1]
        a = np.round(a, 1)
    return a, b


@pytest.mark.parametrize("dtype", [None, np.float64])
@pytest.mark.parametrize("method", list(RSATOOLBOX_NAMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_rsatoolbox(method, dtype, seed):
    import rsatoolbox

    a, b = rdm_pair(seed)
    ref = rsatoolbox.rdm.compare(a[None], b[None], RSATOOLBOX_NAMES[method])[0, 0]
    ours = compute.compare_rdms(a, b, method, dtype=dtype, device="cpu")
    assert isinstance(ours, float)
    assert abs(ours - ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [None, np.float64])
def test_matches_scipy_and_closed_forms(dtype):
    a, b = rdm_pair(2, ties=False)
    tol = TOLERANCE[dtype]
    cmp = lambda m: compute.compare_rdms(a, b, m, dtype=dtype, device="cpu")  # noqa: E731
    assert abs(cmp("spearman") - scipy.stats.spearmanr(a, b).statistic) <= tol
    assert abs(cmp("pearson") - scipy.stats.pearsonr(a, b).statistic) <= tol
    # Without ties tau-a equals scipy's tau-b; rho-a equals Spearman's rho.
    assert abs(cmp("kendall_tau_a") - scipy.stats.kendalltau(a, b).statistic) <= tol
    assert abs(cmp("rho_a") - scipy.stats.spearmanr(a, b).statistic) <= tol
    assert abs(cmp("cosine") - a @ b / np.linalg.norm(a) / np.linalg.norm(b)) <= tol
    assert abs(cmp("euclidean") - np.linalg.norm(a - b)) <= tol * np.linalg.norm(a - b)
    assert abs(cmp("manhattan") - np.abs(a - b).sum()) <= tol * np.abs(a - b).sum()


def test_kendall_tau_a_counts_pairs_with_ties():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=276).astype(float)  # 24 stimuli, many ties
    b = a + rng.integers(0, 3, size=276)
    got = compute.compare_rdms(a, b, "kendall_tau_a", dtype=np.float64)
    i, j = np.triu_indices(276, 1)
    brute = np.mean(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]))  # O(K^2) definition
    assert abs(got - brute) <= 1e-12


def test_kendall_tau_a_on_large_rdms():
    n = 500  # K = 124,750 pairs: quadratic algorithms would not finish in a test
    rng = np.random.default_rng(4)
    a = rng.random(n * (n - 1) // 2)
    b = a + rng.random(a.size)
    tau = compute.compare_rdms(a, b, "kendall_tau_a", dtype=np.float64)
    assert abs(tau - scipy.stats.kendalltau(a, b).statistic) <= 1e-9


def test_square_and_condensed_inputs_agree():
    a, b = rdm_pair(5)
    for method in METHODS:
        condensed = compute.compare_rdms(a, b, method, dtype=np.float64)
        square = compute.compare_rdms(squareform(a), torch.from_numpy(squareform(b)), method,
                                      dtype=np.float64)
        assert condensed == pytest.approx(square, abs=1e-12)


def test_identical_rdms():
    a, _ = rdm_pair(6, ties=False)
    for method in METHODS:
        expected = 0.0 if compute.COMPARE_METHODS[method].kind == "distance" else 1.0
        assert compute.compare_rdms(a, a, method) == pytest.approx(expected, abs=1e-6), method


rdm_vectors = st.tuples(st.integers(0, 2**32 - 1), st.integers(3, 9)).map(
    lambda t: tuple(np.random.default_rng(t[0]).random((2, t[1] * (t[1] - 1) // 2)))
)


@settings(max_examples=40, deadline=None)
@given(pair=rdm_vectors, method=st.sampled_from(METHODS))
def test_symmetric_in_its_arguments(pair, method):
    a, b = pair
    ab = compute.compare_rdms(a, b, method, dtype=np.float64)
    ba = compute.compare_rdms(b, a, method, dtype=np.float64)
    assert ab == pytest.approx(ba, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(pair=rdm_vectors, method=st.sampled_from(RANK_METHODS))
def test_rank_methods_ignore_monotone_transforms(pair, method):
    a, b = pair
    before = compute.compare_rdms(a, b, method, dtype=np.float64)
    after = compute.compare_rdms(np.exp(3 * a), b**3 + 1, method, dtype=np.float64)
    assert before == pytest.approx(after, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 5), method=st.sampled_from(METHODS))
def test_model_rdm_equals_pairwise_comparisons(seed, m, method):
    rdms = np.random.default_rng(seed).random((m, 21))  # 7 stimuli
    model = compute.model_rdm(rdms, method, dtype=np.float64, device="cpu")
    expected = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i != j:
                value = compute.compare_rdms(rdms[i], rdms[j], method, dtype=np.float64)
                expected[i, j] = value if method in ("euclidean", "manhattan") else 1 - value
    np.testing.assert_allclose(model, expected, rtol=1e-9, atol=1e-9)
    assert np.array_equal(model, model.T)
    assert np.all(np.diag(model) == 0)


def test_model_rdm_formats_and_defaults():
    rng = np.random.default_rng(7)
    rdms = [pdist(rng.normal(size=(10, 3))) for _ in range(4)]
    model = compute.model_rdm(np.stack(rdms))
    assert model.shape == (4, 4) and model.dtype == np.float32
    squares = [squareform(r) for r in rdms]
    np.testing.assert_allclose(compute.model_rdm(squares), model, atol=1e-6)
    np.testing.assert_allclose(compute.model_rdm(np.stack(squares)), model, atol=1e-6)
    np.testing.assert_allclose(compute.model_rdm(torch.from_numpy(np.stack(rdms))), model,
                               atol=1e-6)


def test_model_rdm_distances_keep_magnitude():
    base = np.random.default_rng(8).random(45)
    model = compute.model_rdm(np.stack([base, 2 * base, base + 1]), "euclidean",
                              dtype=np.float64)
    assert model[0, 1] == pytest.approx(np.linalg.norm(base), rel=1e-9)
    assert model[0, 2] == pytest.approx(np.sqrt(45), rel=1e-9)
    ranks = compute.model_rdm(np.stack([base, 2 * base, base + 1]), "spearman")
    np.testing.assert_allclose(ranks, 0, atol=1e-6)


def test_mean_dissimilarity_leaves_out_the_diagonal():
    from compute.measures.summaries import mean_dissimilarity

    matrix = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 4.0], [2.0, 4.0, 0.0]])
    assert mean_dissimilarity(matrix).tolist() == [1.5, 2.5, 3.0]
    with pytest.raises(ValueError, match="square"):
        mean_dissimilarity(np.zeros((1, 1)))


def test_different_sizes_name_the_stimulus_counts():
    with pytest.raises(ValueError, match="a is an RDM over 10 stimuli but b is over 12"):
        compute.compare_rdms(np.random.rand(45), squareform(np.random.rand(66)))
    with pytest.raises(ValueError, match=r"different numbers of stimuli \(\[4, 5\]\)"):
        compute.model_rdm([np.random.rand(6), np.random.rand(10)])


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a", "rho_a"])
def test_constant_rdm_under_correlation_methods(method):
    with pytest.raises(ValueError, match="b is constant"):
        compute.compare_rdms(np.random.rand(10), np.ones(10), method)
    with pytest.raises(ValueError, match="RDMs 1 of rdms"):
        compute.model_rdm(np.stack([np.random.rand(10), np.ones(10)]), method)


def test_constant_rdm_is_fine_for_distances():
    a = np.random.default_rng(9).random(10)
    assert compute.compare_rdms(a, np.ones(10), "euclidean") == pytest.approx(
        np.linalg.norm(a - 1), rel=1e-6)


@pytest.mark.parametrize(
    "a, match",
    [
        (np.random.rand(4, 5), r"square \(N x N\)"),
        (np.random.rand(7), "not N\\*\\(N-1\\)/2"),
        (np.random.rand(2, 2, 2), "square"),
        (np.array([[0, 1, 2], [1, 0, 3], [5, 3, 0.0]]), "not symmetric"),
        (np.array([[0, 1.0], [1, 0]]), "2 stimuli"),
        (np.array([1.0, np.nan, 2, 3, 4, np.inf]), r"2 stimulus pairs \(\(0, 2\), \(2, 3\)\)"),
        (np.array([[0, np.nan, 2], [np.nan, 0, 3], [2, 3, 0.0]]), "rows \\(stimuli\\) 0, 1"),
    ],
)
def test_bad_rdms(a, match):
    with pytest.raises(ValueError, match=match):
        compute.compare_rdms(a, a)


def test_bad_method_and_count():
    with pytest.raises(ValueError, match="unknown RDM comparison method 'tau'"):
        compute.compare_rdms(np.random.rand(3), np.random.rand(3), "tau")
    with pytest.raises(ValueError, match="at least 2 are needed"):
        compute.model_rdm([np.random.rand(3)])


def test_registry_directions():
    kinds = {name: m.kind for name, m in compute.COMPARE_METHODS.items()}
    assert kinds.pop("euclidean") == kinds.pop("manhattan") == "distance"
    assert set(kinds.values()) == {"similarity"}
