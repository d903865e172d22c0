"""bootstrap, permutation_test and noise_ceiling against explicit recomputation and rsatoolbox."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

import compute
from compute.measures.stats import _permutations, _resample_indices
from tests.unit.peers import METHODS, RSATOOLBOX_NAMES


def related_rdms(seed: int, n: int = 14, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    a = pdist(X)
    b = pdist(X + noise * rng.normal(size=X.shape))
    b[::5] = b[1]  # ties
    return a, b


def vector_compare(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """Reference on arbitrary-length vectors: rsatoolbox, or the distance itself."""
    import rsatoolbox

    if method == "euclidean":
        return float(np.linalg.norm(x - y))
    if method == "manhattan":
        return float(np.abs(x - y).sum())
    return float(rsatoolbox.rdm.compare(x[None], y[None], RSATOOLBOX_NAMES[method])[0, 0])


@pytest.mark.parametrize("method", METHODS)
def test_bootstrap_samples_equal_explicit_resamples(method):
    a, b = related_rdms(0)
    n = 14
    result = compute.bootstrap(a, squareform(b), method, n_boot=12, seed=3)
    A, B = squareform(a), squareform(b)
    rows, cols = np.triu_indices(n, 1)
    for s, idx in enumerate(_resample_indices(n, 12, 3)):
        keep = idx[rows] != idx[cols]  # a stimulus against its own copy is dropped
        x = A[np.ix_(idx, idx)][rows, cols][keep]
        y = B[np.ix_(idx, idx)][rows, cols][keep]
        assert result.samples[s] == pytest.approx(vector_compare(x, y, method), abs=1e-9)
    assert result.estimate == pytest.approx(compute.compare_rdms(a, b, method, dtype=np.float64))


def test_bootstrap_interval_and_determinism():
    a, b = related_rdms(1, n=20, noise=0.5)
    first = compute.bootstrap(a, b, n_boot=300, seed=7, ci=0.9)
    again = compute.bootstrap(a, b, n_boot=300, seed=7, ci=0.9)
    np.testing.assert_array_equal(first.samples, again.samples)
    assert first.samples.shape == (300,)
    assert first.low <= first.estimate <= first.high
    finite = first.samples[np.isfinite(first.samples)]
    assert first.low == pytest.approx(np.quantile(finite, 0.05))
    with pytest.raises(AttributeError):
        first.estimate = 0.0  # frozen


def test_bootstrap_undefined_resamples_are_nan():
    a = np.array([1.0, 2.0, 3.0])  # 3 stimuli: many resamples keep fewer than 2 pairs
    result = compute.bootstrap(a, a[::-1].copy(), "spearman", n_boot=50, seed=0)
    assert np.isnan(result.samples).any()
    assert np.isfinite(result.low) and np.isfinite(result.high)


@pytest.mark.parametrize("method", METHODS)
def test_permutation_null_equals_explicit_permutations(method):
    a, b = related_rdms(2, n=10)
    result = compute.permutation_test(a, b, method, n_perm=8, seed=5)
    B = squareform(b)
    for s, perm in enumerate(_permutations(10, 8, 5)):
        permuted = squareform(B[np.ix_(perm, perm)], checks=False)
        expected = compute.compare_rdms(a, permuted, method, dtype=np.float64)
        assert result.null[s] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("method", ["spearman", "euclidean"])
def test_permutation_p_values(method):
    a, b = related_rdms(3, n=16, noise=0.3)
    related = compute.permutation_test(a, b, method, n_perm=199, seed=0)
    assert related.p_value == pytest.approx(1 / 200)  # +1 correction: never 0
    unrelated = compute.permutation_test(a, np.random.default_rng(4).random(a.size), method,
                                         n_perm=199, seed=0)
    assert unrelated.p_value > 0.01
    null, est = unrelated.null, unrelated.estimate
    extreme = (null >= est) if method == "spearman" else (null <= est)
    assert unrelated.p_value == pytest.approx((1 + extreme.sum()) / 200)


@pytest.mark.parametrize("method", list(RSATOOLBOX_NAMES))
def test_noise_ceiling_matches_rsatoolbox(method):
    import rsatoolbox
    from rsatoolbox.inference import boot_noise_ceiling

    rng = np.random.default_rng(5)
    base = rng.random(45)
    subjects = np.stack([base + 0.5 * rng.random(45) for _ in range(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns that tau pools averaged ranks
        ref = boot_noise_ceiling(rsatoolbox.rdm.RDMs(subjects), method=RSATOOLBOX_NAMES[method])
    lower, upper = compute.noise_ceiling(subjects, method)
    assert lower == pytest.approx(ref[0], abs=1e-9)
    assert upper == pytest.approx(ref[1], abs=1e-9)
    assert lower <= upper


def test_noise_ceiling_direction_flips_for_distances():
    rng = np.random.default_rng(6)
    subjects = [squareform(rng.random(10) + 1) for _ in range(4)]
    lower, upper = compute.noise_ceiling(subjects, "euclidean")
    V = np.stack([squareform(s) for s in subjects])
    loo = [(V.sum(0) - v) / 3 for v in V]
    assert lower == pytest.approx(np.mean([np.linalg.norm(v - m) for v, m in zip(V, loo)]))
    assert upper == pytest.approx(np.mean([np.linalg.norm(v - V.mean(0)) for v in V]))
    assert upper < lower


def test_bad_input():
    a = np.random.rand(10)
    with pytest.raises(ValueError, match="rdm_a is an RDM over 5 stimuli but rdm_b is over 4"):
        compute.bootstrap(a, np.random.rand(6))
    with pytest.raises(ValueError, match="ci must lie in"):
        compute.bootstrap(a, a, ci=95)
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        compute.permutation_test(a, a, n_perm=0)
    with pytest.raises(ValueError, match="unknown RDM comparison method"):
        compute.noise_ceiling([a, a], "kendall")
