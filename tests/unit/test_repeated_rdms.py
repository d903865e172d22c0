"""RDMs of repeated measurements (crossnobis, Mahalanobis) and the whitened RDM comparisons,
against rsatoolbox on the same data and noise precision, on the Kriegeskorte 2008 RDMs."""

import numpy as np
import pytest
import rsatoolbox
import scipy.io
import scipy.stats
from scipy.spatial.distance import squareform

import compute
from compute.measures.crossnobis import noise_precision
from tests.support import external_data

RSA92 = external_data("rsa92")


def measurements(seed, r=4, n=12, d=7, signal=1.0):
    """R noisy repeats of N stimulus patterns over D correlated channels."""
    rng = np.random.default_rng(seed)
    patterns = signal * rng.standard_normal((1, n, d))
    mixing = np.eye(d) + 0.4 * rng.standard_normal((d, d))
    return patterns + rng.standard_normal((r, n, d)) @ mixing


def dataset(X):
    r, n, d = X.shape
    return rsatoolbox.data.Dataset(X.reshape(r * n, d), obs_descriptors={
        "stimulus": np.tile(np.arange(n), r), "run": np.repeat(np.arange(r), n)})


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("noise", ["identity", "given", "shrinkage"])
def test_crossnobis_and_mahalanobis_are_rsatoolbox_s(seed, noise):
    X = measurements(seed)
    precision = {"identity": None, "given": np.linalg.inv(np.cov(measurements(seed + 9, 1, 40)[0].T)),
                 "shrinkage": noise_precision(X)}[noise]
    for method in ("crossnobis", "mahalanobis"):
        ours = compute.rdm(X, method, noise="shrinkage" if noise == "shrinkage" else precision,
                           condensed=True, dtype=np.float64)
        extra = {"cv_descriptor": "run"} if method == "crossnobis" else {}
        theirs = rsatoolbox.rdm.calc_rdm(dataset(X), method=method, descriptor="stimulus", noise=precision,
                                         **extra).dissimilarities[0]
        assert relative(ours, theirs) < 1e-6
    assert compute.rdm(X, "crossnobis", condensed=False).shape == (12, 12)


def test_the_shrinkage_precision_is_ledoit_wolf_with_the_residual_degrees_of_freedom():
    """rsatoolbox's shrinkage_eye with dof = N (R - 1), the residuals about each stimulus's mean."""
    X = measurements(4, r=5, n=9, d=6)
    theirs = rsatoolbox.data.noise.prec_from_measurements(dataset(X), "stimulus", dof=9 * 4, method="shrinkage_eye")
    assert relative(noise_precision(X), theirs) < 1e-9


def test_crossnobis_is_unbiased_on_pure_noise():
    """Identical stimuli: the expected crossnobis distance is 0 (Mahalanobis' is not)."""
    rng = np.random.default_rng(1)
    draws = [rng.standard_normal((6, 40, 30)) for _ in range(20)]
    crossnobis = np.mean([compute.rdm(X, "crossnobis", condensed=True).mean() for X in draws])
    mahalanobis = np.mean([compute.rdm(X, "mahalanobis", condensed=True).mean() for X in draws])
    assert mahalanobis == pytest.approx(2 / 6, rel=0.05)  # 2 sigma^2 / R per channel
    assert abs(crossnobis) < 0.03 * mahalanobis


def test_crossnobis_is_invariant_to_channel_maps_with_the_precision_mapped_alike():
    X = measurements(2)
    A = np.random.default_rng(3).standard_normal((7, 7)) + 3 * np.eye(7)
    P = noise_precision(X)
    mapped = np.linalg.inv(A).T @ P @ np.linalg.inv(A)
    np.testing.assert_allclose(compute.rdm(X @ A.T, "crossnobis", noise=mapped, dtype=np.float64),
                               compute.rdm(X, "crossnobis", noise=P, dtype=np.float64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bad, message", [
    (np.ones((1, 5, 3)), "at least 2 repeated measurements"),
    (np.ones((5, 3)), r"shape \(R repeats, N stimuli, D channels\)"),
    (np.ones((3, 2, 3)), "N >= 3"),
])
def test_crossnobis_refuses_what_it_cannot_cross_validate(bad, message):
    with pytest.raises(ValueError, match=message):
        compute.rdm(bad, "crossnobis")


def test_bad_noise_and_values_are_named():
    X = measurements(0)
    with pytest.raises(ValueError, match=r"precision matrix.*D = 7.*\(3, 3\)"):
        compute.rdm(X, "crossnobis", noise=np.eye(3))
    with pytest.raises(ValueError, match="'shrinkage' or None"):
        compute.rdm(X, "crossnobis", noise="ledoit")
    with pytest.raises(ValueError, match="noise applies to"):
        compute.rdm(X[0], "correlation", noise=np.eye(7))
    X[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match="repeat 2, stimulus 5"):
        compute.rdm(X, "crossnobis")


# --- the whitened comparisons, on the Kriegeskorte 2008 human IT RDMs ---

@pytest.fixture(scope="module")
def human_it():
    path = RSA92 / "92_brainRDMs.mat"
    if not path.exists():
        pytest.skip(f"the Kriegeskorte 2008 RDMs are not at {RSA92}")
    rdms = scipy.io.loadmat(path)["RDMs"]
    return np.stack([squareform(rdms[0, s, k]["RDM"], checks=False) for k in range(2) for s in range(4)]).astype(np.float64)


@pytest.mark.parametrize("ours, theirs", [("cosine_cov", "cosine_cov"), ("corr_cov", "corr_cov"), ("tau_b", "tau-b")])
def test_whitened_comparisons_are_rsatoolbox_s(human_it, ours, theirs):
    expected = rsatoolbox.rdm.compare(rsatoolbox.rdm.RDMs(human_it), rsatoolbox.rdm.RDMs(human_it), theirs)
    for i, j in ((0, 1), (0, 4), (2, 7)):
        assert compute.compare_rdms(human_it[i], human_it[j], ours, dtype=np.float64) == pytest.approx(
            expected[i, j], rel=1e-6)
    model = compute.model_rdm(human_it, ours, dtype=np.float64)
    np.testing.assert_allclose(1 - model[np.triu_indices(8, 1)], expected[np.triu_indices(8, 1)], rtol=1e-6, atol=1e-12)


def test_whitened_comparisons_keep_their_invariances(human_it):
    a, b = human_it[0], human_it[3]
    for method in ("cosine_cov", "corr_cov"):
        base = compute.compare_rdms(a, b, method, dtype=np.float64)
        assert compute.compare_rdms(3.5 * a, b, method, dtype=np.float64) == pytest.approx(base, abs=1e-9)
    assert compute.compare_rdms(2 * a + 1, b, "corr_cov", dtype=np.float64) == pytest.approx(
        compute.compare_rdms(a, b, "corr_cov", dtype=np.float64), abs=1e-9)
    assert compute.compare_rdms(np.round(a, 1), np.round(b, 1), "tau_b", dtype=np.float64) == pytest.approx(
        scipy.stats.kendalltau(np.round(a, 1), np.round(b, 1)).statistic, abs=1e-12)


def test_a_constant_rdm_has_no_whitened_correlation():
    with pytest.raises(ValueError, match="constant"):
        compute.compare_rdms(np.ones(10), np.arange(10.0), "corr_cov")


@pytest.mark.parametrize("method", ["cosine_cov", "corr_cov"])
def test_whitened_noise_ceiling_is_rsatoolbox_s_leave_one_out(human_it, method):
    """rsatoolbox's definition, step by step: pool_rdm (rsatoolbox.util.pooling) of all subjects
    and of the others, compared with each subject. (rsatoolbox's boot_noise_ceiling imports an
    older pool_rdm that differs by ~0.5 % for the whitened methods.)"""
    from rsatoolbox.util.pooling import pool_rdm

    def pooled(rows):
        return pool_rdm(rsatoolbox.rdm.RDMs(human_it[rows]), method=method)

    def compared(pool, i):
        return rsatoolbox.rdm.compare(pool, rsatoolbox.rdm.RDMs(human_it[i][None]), method)[0, 0]

    everyone = list(range(8))
    upper = np.mean([compared(pooled(everyone), i) for i in everyone])
    lower = np.mean([compared(pooled([j for j in everyone if j != i]), i) for i in everyone])
    assert tuple(compute.noise_ceiling(human_it, method)) == pytest.approx((lower, upper), rel=1e-6)


@pytest.mark.parametrize("method", ["cosine_cov", "corr_cov", "tau_b"])
def test_permutation_nulls_are_the_comparisons_of_permuted_rdms(human_it, method):
    from compute.measures.stats import _permutations

    a, b = squareform(human_it[0])[:30, :30], squareform(human_it[5])[:30, :30]
    result = compute.permutation_test(a, b, method, n_perm=6, seed=2)
    for value, p in zip(result.null, _permutations(30, 6, 2)):
        assert value == pytest.approx(compute.compare_rdms(a, b[np.ix_(p, p)], method, dtype=np.float64), abs=1e-9)


def test_whitened_bootstrap_compares_the_distinct_stimuli_drawn(human_it):
    from compute.measures.stats import _resample_indices

    a, b = squareform(human_it[1])[:25, :25], squareform(human_it[2])[:25, :25]
    result = compute.bootstrap(a, b, "corr_cov", n_boot=5, seed=4)
    for value, drawn in zip(result.samples, _resample_indices(25, 5, 4)):
        kept = np.unique(drawn)
        expected = compute.compare_rdms(a[np.ix_(kept, kept)], b[np.ix_(kept, kept)], "corr_cov", dtype=np.float64)
        assert value == pytest.approx(expected, abs=1e-9)
