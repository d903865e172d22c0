"""Issue 17's new direct measures on real activations: google/svcca's tutorial layers (MNIST's
10-unit output layers of two nets; SVHN's fc(200) layers of two conv nets), on a subsample of
the stimuli, against the same independent references as test_measures_ii, at float64 and at the
default float32; and their declared invariances on those data."""

import numpy as np
import pytest
from scipy.stats import ortho_group

import compute
from tests.support import external_data
from tests.unit.test_measures_ii import REFERENCES, ref_permutation

SVCCA = external_data("svcca")
F64 = dict(dtype=np.float64)
# Both nets' layers on the same stimuli: MNIST's 10 units a side (values up to 170 in size, very
# unequal unit scales); SVHN's ReLU units (the first 40 and 30 of 200; none dead on the sample).
SAMPLES = {"mnist": ("mnist_model{}_lay04", 200, 10, 10), "svhn": ("svhn_model{}_lay06", 100, 40, 30)}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def layers(request):
    name, n, dx, dy = SAMPLES[request.param]
    paths = [SVCCA / f"{name.format(i)}.npy" for i in (0, 1)]
    if not all(path.exists() for path in paths):
        pytest.skip(f"google/svcca's tutorial activations are not at {SVCCA}")
    X, Y = (np.load(path, allow_pickle=False) for path in paths)
    rows = np.sort(np.random.default_rng(0).choice(len(X), n, replace=False))
    return X[rows, :dx], Y[rows, :dy]  # float32, as the tutorial ships them


@pytest.mark.parametrize("measure", sorted(REFERENCES) + ["permutation"])
def test_agrees_with_its_reference(layers, measure):
    X, Y = layers
    if measure == "permutation":  # brute force over matchings: 4 units a side
        X, Y = X[:, :4], Y[:, :4]
    reference = (ref_permutation if measure == "permutation" else REFERENCES[measure])
    expected = reference(X.astype(np.float64), Y.astype(np.float64))
    assert compute.similarity(X, Y, measure, **F64) == pytest.approx(expected, abs=1e-9)
    assert compute.similarity(X, Y, measure) == pytest.approx(expected, abs=1e-5)


def test_declared_invariances_hold(layers):
    X, Y = layers
    rng = np.random.default_rng(1)
    units = np.logspace(-2, 2, X.shape[1])[rng.permutation(X.shape[1])]  # one scale per unit
    scaled = X * units + 3.0

    def same(measure, A, B=Y, abs=1e-8, **options):
        before = compute.similarity(X, Y, measure, **F64, **options)
        assert compute.similarity(A, B, measure, **F64, **options) == pytest.approx(before, abs=abs), measure
        return before

    # the CCA family: any invertible linear map of X's units, here unequal unit scales
    for measure, options in (("cca_rho_top", {}), ("linear_reg", {}), ("shape_alpha", {"alpha": 0.0})):
        exact = same(measure, scaled, **options)
        assert compute.similarity(scaled.astype(np.float32), Y, measure, **options) == pytest.approx(exact, abs=1e-5)
    # permutation: the units' order, a common scale and a shift of either side
    same("permutation", 2.0 * X[:, rng.permutation(X.shape[1])] - 1.0, Y[:, rng.permutation(Y.shape[1])])
    # rotation, scale and shift of X: distance correlation and ridge predictivity; cosine
    # neighbourhoods (no shift) for the k-NN family
    Q = ortho_group.rvs(X.shape[1], random_state=2)
    for measure in ("dcor", "ridge_r"):
        same(measure, 0.5 * X @ Q + 4.0, abs=1e-7)
    for measure in ("mutual_knn", "jaccard_knn", "cknna"):
        same(measure, 7.0 * X @ Q)
