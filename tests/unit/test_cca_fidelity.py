"""The CCA family's fidelity rules (issue 17): rank decided scale-free, PWCCA the same in either
argument order, dead units dropped by every member. On google/svcca's own tutorial activations."""

import numpy as np
import pytest

import compute
from tests.unit.test_similarity import ref_cca_mean, ref_pwcca, ref_svcca, related
from tests.support import external_data

SVCCA = external_data("svcca")
FAMILY = ("cca_mean", "svcca", "pwcca")


def tutorial(name: str) -> np.ndarray:
    path = SVCCA / f"{name}.npy"
    if not path.exists():
        pytest.skip(f"google/svcca's tutorial activations are not at {SVCCA}")
    return np.load(path, allow_pickle=False)


@pytest.fixture(scope="module")
def mnist():
    """MNIST layer 4 of two nets (10,000 images x 10 units, float32)."""
    return tutorial("mnist_model0_lay04"), tutorial("mnist_model1_lay04")


@pytest.mark.parametrize("measure", ["cca_mean", "pwcca"])
@pytest.mark.parametrize("factor", [0.03, 1e-3, 30.0])
def test_rescaling_one_unit_keeps_float32_at_float64(mnist, measure, factor):
    """The old rank cut (relative to the largest eigenvalue, 1.2e-3 at N = 10,000) dropped a
    rescaled unit at float32: cca_mean moved by 6e-2 and pwcca by 2e-3 from their float64
    values. Mean CCA is invariant to the rescaling; PWCCA's weights (|P'X| over the neurons)
    are not, but its float32 value must be its float64 value."""
    X, Y = mnist
    scaled = X.copy()
    scaled[:, 3] *= factor
    exact = compute.similarity(scaled.astype(np.float64), Y, measure, dtype=np.float64)
    assert compute.similarity(scaled, Y, measure) == pytest.approx(exact, abs=2e-5)
    if measure == "cca_mean":
        assert exact == pytest.approx(compute.similarity(X.astype(np.float64), Y, measure, dtype=np.float64), abs=1e-9)


def test_the_tutorial_values_are_google_s(mnist):
    X, Y = (A.astype(np.float64) for A in mnist)
    assert compute.similarity(X, Y, "cca_mean", dtype=np.float64) == pytest.approx(ref_cca_mean(X, Y), abs=1e-9)
    assert compute.similarity(X, Y, "pwcca", dtype=np.float64) == pytest.approx(ref_pwcca(X, Y), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_strongly_anisotropic_units(seed):
    """Unit scales from 1e-4 to 1e4: mean CCA as for unit scales, and both at float32 as at float64."""
    X, Y = related(seed, 400, 12, 8, offset=1.0)
    scales = np.logspace(-4, 4, X.shape[1])
    np.random.default_rng(seed).shuffle(scales)
    assert compute.similarity((X * scales).astype(np.float32), Y, "cca_mean") == pytest.approx(
        compute.similarity(X, Y, "cca_mean", dtype=np.float64), abs=1e-5)
    assert compute.similarity((X * scales).astype(np.float32), Y, "pwcca") == pytest.approx(
        compute.similarity((X * scales).astype(np.float32).astype(np.float64), Y, "pwcca", dtype=np.float64), abs=1e-5)


def test_pwcca_is_one_value_in_either_order():
    """The tutorial's SVHN layers (1,000 x 200) against a narrower slice: both orders give
    compute_pwcca(narrower, wider)."""
    X = tutorial("svhn_model0_lay06").astype(np.float64)
    Y = tutorial("svhn_model1_lay06").astype(np.float64)[:, :60]
    forward = compute.similarity(X, Y, "pwcca", dtype=np.float64)
    assert compute.similarity(Y, X, "pwcca", dtype=np.float64) == pytest.approx(forward, abs=1e-12)
    assert forward == pytest.approx(ref_pwcca(Y, X), abs=1e-9)


@pytest.mark.parametrize("measure", FAMILY)
@pytest.mark.parametrize("side", ["narrower", "wider"])
def test_a_dead_unit_is_dropped_by_every_member(measure, side):
    """One rule for the family: a constant unit has no variance and no canonical direction, so
    each measure equals its value without it (PWCCA used to weigh it as a zero coefficient)."""
    X, Y = related(7, 150, 6, 10, offset=2.0)  # X is the narrower
    dead = np.full((150, 1), 4.0)
    if side == "narrower":
        value = compute.similarity(np.hstack([X[:, :3], dead, X[:, 3:]]), Y, measure, dtype=np.float64)
    else:
        value = compute.similarity(X, np.hstack([dead, Y]), measure, dtype=np.float64)
    reference = {"cca_mean": ref_cca_mean, "svcca": ref_svcca, "pwcca": ref_pwcca}[measure]
    assert value == pytest.approx(reference(X, Y), abs=1e-9)
    assert compute.similarity(np.hstack([X, dead]).astype(np.float32), Y, measure) == pytest.approx(
        reference(X, Y), abs=1e-5)
