"""Permutation nulls of the direct similarity indices (issue 18): every null sample is the
measure recomputed with Y's stimuli permuted; p-values are uniform under the null; a
representation against itself calibrates to 1."""
import numpy as np
import pytest

import compute
from compute.errors import Cancelled
from compute.measures import nulls
from compute.measures.nulls import calibrate, grid_null, permutations
from compute.measures.registry import MEASURES


def related(seed, n=40, dx=6, dy=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dx))
    return X, np.tanh(X @ rng.standard_normal((dx, dy))) + 0.8 * rng.standard_normal((n, dy))


@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_each_null_sample_is_the_measure_on_permuted_stimuli(measure):
    X, Y = related(1)
    result = compute.permutation_test(X, Y, measure, n_perm=5, seed=3, dtype=np.float64)
    for value, p in zip(result.null, permutations(40, 5, 3)):
        assert value == pytest.approx(compute.similarity(X, Y[p], measure, dtype=np.float64), abs=1e-9)
    assert result.estimate == pytest.approx(compute.similarity(X, Y, measure, dtype=np.float64), abs=1e-12)
    p, z, calibrated = calibrate(result.estimate, result.null, MEASURES[measure].kind)
    assert (result.p_value, result.z, result.calibrated) == pytest.approx((float(p), float(z), float(calibrated)))


@pytest.mark.parametrize("measure, options", [("procrustes", {}), ("shape_alpha", {"alpha": 0.3}),
                                              ("shape_alpha", {"alpha": 0.0}), ("cca_mean", {}),
                                              ("svcca", {"keep": 0.9}), ("cca_rho_top", {}), ("pwcca", {}),
                                              ("permutation", {}), ("linear_reg", {}), ("mutual_knn", {"k": 4}),
                                              ("jaccard_knn", {"k": 4}), ("cknna", {"k": 4}), ("ridge_r", {})])
def test_batched_nulls_are_the_measure_on_permuted_stimuli_for_wide_and_narrow_layers(measure, options):
    """The batched nulls permute Y's prepared side (its rows, neighbour sets or ridge targets)
    instead of preparing Y again: the same numbers when a layer is wider than the stimuli
    (eigenbases of the Gram), in both argument orders and in a grid."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 45))
    Y = np.tanh(X[:, :8] @ rng.standard_normal((8, 9))) + 0.5 * rng.standard_normal((30, 9))
    for a, b in ((X, Y), (Y, X)):
        result = compute.permutation_test(a, b, measure, n_perm=6, seed=2, dtype=np.float64, **options)
        for value, p in zip(result.null, permutations(30, 6, 2)):
            assert value == pytest.approx(compute.similarity(a, b[p], measure, dtype=np.float64, **options), abs=1e-9)
        # at the default float32 precision too (arccos near 1 amplifies float32 rounding: 1e-4)
        result = compute.permutation_test(a.astype(np.float32), b.astype(np.float32), measure, n_perm=3, seed=2,
                                          **options)
        for value, p in zip(result.null, permutations(30, 3, 2)):
            assert value == pytest.approx(compute.similarity(a, b[p], measure, dtype=np.float64, **options), abs=1e-4)
    # pwcca needs a side narrower than the stimuli in every cell
    acts_b = {"x": X if measure != "pwcca" else np.abs(Y) ** 0.5, "y": Y}
    grid = grid_null({"x": X, "y": Y}, acts_b, measure, n_perm=4, seed=1, dtype=np.float64, **options)
    for s, p in enumerate(permutations(30, 4, 1)):
        permuted = {name: m[p] for name, m in acts_b.items()}
        expected = compute.layer_grid({"x": X, "y": Y}, permuted, measure, dtype=np.float64, **options)
        # arccos near 1 turns a rounding of 3e-16 in the nuclear norm into 3e-8 radians
        np.testing.assert_allclose(grid.null[:, :, s], expected, atol=1e-7)


def test_a_k_nn_null_whose_neighbours_hang_on_the_stimuli_s_order_is_still_the_measure():
    """Duplicate stimuli tie at the k-th neighbour (ties go to the lower index), so relabelling
    Y's neighbour sets would not be the measure on permuted stimuli: such a layer is prepared
    again per permutation."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((24, 5)), np.repeat(rng.standard_normal((12, 4)), 2, axis=0)
    result = compute.permutation_test(X, Y, "mutual_knn", n_perm=4, seed=1, dtype=np.float64, k=4)
    for value, p in zip(result.null, permutations(24, 4, 1)):
        assert value == compute.similarity(X, Y[p], "mutual_knn", dtype=np.float64, k=4)


def test_a_batched_null_asks_to_stop_before_each_chunk_of_permutations(monkeypatch):
    X, Y = related(7)

    def asked(chunk_elements):
        monkeypatch.setattr(nulls, "_CHUNK_ELEMENTS", chunk_elements)
        calls = []
        grid_null({"x": X}, {"y": Y}, "mutual_knn", n_perm=12, should_stop=lambda: calls.append(1), k=3)
        return len(calls)

    assert asked(4 * 40 * 3) - asked(1 << 24) == 2  # chunks of 4 of the 12 permutations: 3 chunks, not 1
    with pytest.raises(Cancelled):
        grid_null({"x": X}, {"y": Y}, "ridge_r", n_perm=12, should_stop=lambda: True)


def test_the_scores_follow_their_definitions():
    null = np.array([0.1, 0.2, 0.3, 0.4])
    p, z, calibrated = calibrate(0.35, null, "similarity")
    assert p == pytest.approx((1 + 1) / 5)
    assert z == pytest.approx((0.35 - 0.25) / null.std())
    assert calibrated == pytest.approx((0.35 - 0.25) / (1 - 0.25))
    p, z, calibrated = calibrate(0.15, null, "distance")  # lower is better; best = 0
    assert p == pytest.approx((1 + 1) / 5)
    assert calibrated == pytest.approx((0.25 - 0.15) / 0.25)


def test_a_representation_against_itself_calibrates_to_one():
    X, _ = related(2)
    for measure in ("cka_linear", "cca_mean", "rv"):
        assert compute.permutation_test(X, X, measure, n_perm=20, dtype=np.float64).calibrated == pytest.approx(1.0)
    assert compute.permutation_test(X, X, "procrustes", n_perm=20, dtype=np.float64).calibrated == pytest.approx(
        1.0, abs=1e-6)


def test_p_values_are_uniform_under_the_null():
    """200 pairs of independent noise: p < 0.05 about 5 % of the time, p < 0.5 about half
    (binomial 99.9 % bounds)."""
    rng = np.random.default_rng(0)
    ps = np.array([compute.permutation_test(rng.standard_normal((20, 4)), rng.standard_normal((20, 3)),
                                            "cka_linear", n_perm=99, seed=s).p_value for s in range(200)])
    assert 1 <= (ps < 0.05).sum() <= 22
    assert 75 <= (ps < 0.5).sum() <= 125


def test_a_grid_null_is_each_cell_s_null():
    X, Y = related(4)
    acts_a, acts_b = {"x": X, "x2": X ** 2}, {"y": Y, "y3": Y ** 3}
    for measure in ("cka_linear", "cca_mean"):
        grid = grid_null(acts_a, acts_b, measure, n_perm=30, seed=7, dtype=np.float64)
        assert grid.null.shape == (2, 2, 30) and grid.p.shape == (2, 2)
        for i, a in enumerate(acts_a.values()):
            for j, b in enumerate(acts_b.values()):
                cell = compute.permutation_test(a, b, measure, n_perm=30, seed=7, dtype=np.float64)
                np.testing.assert_allclose(grid.null[i, j], cell.null, atol=1e-9)
                assert grid.p[i, j] == pytest.approx(cell.p_value)
                assert grid.values[i, j] == pytest.approx(cell.estimate, abs=1e-9)


def test_related_layers_beat_chance_and_unrelated_ones_do_not():
    X, Y = related(5, n=80)
    noise = np.random.default_rng(9).standard_normal((80, 5))
    grid = grid_null({"x": X}, {"y": Y, "noise": noise}, "cka_linear", n_perm=200)
    assert grid.p[0, 0] < 0.01 and grid.calibrated[0, 0] > 0.3
    assert grid.p[0, 1] > 0.01 and abs(grid.calibrated[0, 1]) < 0.15


def test_bad_requests_are_named():
    X, Y = related(6)
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        compute.permutation_test(X, Y, "cka_linear", n_perm=0)
    with pytest.raises(ValueError, match="takes no option"):
        compute.permutation_test(X, Y, "cka_linear", n_perm=5, keep=0.5)
    with pytest.raises(ValueError, match="RDM comparisons take no options"):
        compute.permutation_test(np.arange(10.0), np.arange(10.0), "spearman", n_perm=5, keep=0.5)


def test_rdm_permutation_results_carry_their_calibration():
    from scipy.spatial.distance import pdist

    rdm = pdist(np.random.default_rng(1).standard_normal((15, 4)))
    same = compute.permutation_test(rdm, rdm, "pearson", n_perm=50)
    assert same.calibrated == pytest.approx(1.0) and same.z > 3
    far = compute.permutation_test(rdm, rdm, "euclidean", n_perm=50)
    assert far.estimate == pytest.approx(0.0) and far.calibrated == pytest.approx(1.0)


def test_compute_layer_grid_takes_a_null():
    X, Y = related(8)
    plain = compute.layer_grid({"x": X}, {"y": Y}, "cka_linear")
    assert isinstance(plain, np.ndarray) and plain.shape == (1, 1)
    with_null = compute.layer_grid({"x": X}, {"y": Y}, "cka_linear", null=40, null_seed=2)
    assert with_null.values[0, 0] == pytest.approx(plain[0, 0])
    assert with_null.p.shape == with_null.z.shape == with_null.calibrated.shape == (1, 1)
    np.testing.assert_array_equal(with_null.null, grid_null({"x": X}, {"y": Y}, "cka_linear", n_perm=40, seed=2).null)
