"""compute.mds: exact recovery of Euclidean configurations, stress vs scikit-learn, orientation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform
from scipy.stats import special_ortho_group

import compute


def configuration(seed: int, n: int = 30, dims: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dims)) * np.array([3.0, 2.0, 1.0][:dims])


@pytest.mark.parametrize("seed", [0, 1])
def test_classical_recovers_euclidean_distances_exactly(seed):
    P = configuration(seed)
    D = squareform(pdist(P))
    Y = compute.mds(D, n_components=3, method="classical")
    np.testing.assert_allclose(squareform(pdist(Y)), D, atol=1e-9)
    # Up to rotation: Y is the centred configuration turned by an orthogonal matrix.
    centred = P - P.mean(axis=0)
    rotation, *_ = np.linalg.lstsq(centred, Y, rcond=None)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)


def test_smacof_recovers_a_planar_configuration():
    P = configuration(2, dims=2)
    Y = compute.mds(squareform(pdist(P)), n_components=2, method="smacof")
    np.testing.assert_allclose(pdist(Y), pdist(P), atol=1e-3)


def test_smacof_stress_is_no_worse_than_sklearn():
    from sklearn.manifold import MDS

    D = squareform(pdist(np.random.default_rng(3).normal(size=(60, 8))))
    stress = lambda Y: ((pdist(Y) - squareform(D)) ** 2).sum()  # noqa: E731
    ours = stress(compute.mds(D, method="smacof"))
    theirs = stress(MDS(metric="precomputed", init="random", n_init=4, random_state=0,
                        normalized_stress=False).fit_transform(D))
    assert ours <= 1.02 * theirs
    assert ours <= 1.0001 * stress(compute.mds(D, method="classical"))


@pytest.mark.parametrize("method", ["smacof", "classical"])
def test_orientation_is_canonical(method):
    P = configuration(4)
    D = squareform(pdist(P))
    Y = compute.mds(D, n_components=2, method=method)
    np.testing.assert_array_equal(Y, compute.mds(D, n_components=2, method=method))
    np.testing.assert_allclose(Y.mean(axis=0), 0, atol=1e-9)
    cov = Y.T @ Y
    assert abs(cov[0, 1]) <= 1e-8 * cov[0, 0] and cov[0, 0] >= cov[1, 1]
    assert np.all(Y[np.argmax(np.abs(Y), axis=0), [0, 1]] > 0)
    # A rotated, reflected, shifted copy of the configuration gives the same picture.
    R = special_ortho_group.rvs(3, random_state=5) * np.array([1, -1, 1])
    D_moved = squareform(pdist(P @ R + 7.0))
    np.testing.assert_allclose(compute.mds(D_moved, 2, method), Y, atol=1e-6)


def test_seed_makes_smacof_deterministic_and_accepts_tensors():
    D = squareform(pdist(np.random.default_rng(6).normal(size=(20, 5))))
    first = compute.mds(torch.from_numpy(D), seed=3)
    np.testing.assert_array_equal(first, compute.mds(D, seed=3))
    assert first.shape == (20, 2)


def test_non_euclidean_dissimilarities_still_embed():
    D = squareform(np.random.default_rng(7).random(45))  # not a Euclidean distance matrix
    for method in ("smacof", "classical"):
        Y = compute.mds(D, 3, method)
        assert Y.shape == (10, 3) and np.all(np.isfinite(Y))


@pytest.mark.parametrize(
    "D, match",
    [
        (np.zeros((3, 4)), "must be a square"),
        (np.array([[0, 1, 2], [1, 0, 1], [3, 1, 0.0]]), "not symmetric"),
        (np.array([[0, -1, 2], [-1, 0, 1], [2, 1, 0.0]]), "negative"),
        (np.array([[1, 0.5, 0.2], [0.5, 1, 0.1], [0.2, 0.1, 1]]), "1 - S"),
        (np.array([[0, 1, np.nan], [1, 0, 1], [np.nan, 1, 0]]), "rows 0, 2"),
        (np.zeros((2, 2)), "2 stimuli"),
        (np.zeros((3, 3, 3)), "2-D"),
    ],
)
def test_bad_dissimilarities(D, match):
    with pytest.raises(ValueError, match=match):
        compute.mds(D)


def test_bad_options():
    D = squareform(pdist(configuration(8, n=5)))
    with pytest.raises(ValueError, match="n_components must be an integer from 1 to n - 1 = 4"):
        compute.mds(D, n_components=5)
    with pytest.raises(ValueError, match="unknown MDS method 'tsne'"):
        compute.mds(D, method="tsne")


@pytest.mark.parametrize("metric_dims", [2, 8])
def test_stress_is_scikit_learns_normalised_stress_of_the_same_configuration(metric_dims):
    from sklearn.manifold import smacof

    D = squareform(pdist(np.random.default_rng(6).normal(size=(40, metric_dims))))
    Y, theirs = smacof(D, metric=True, n_components=2, init=compute.mds(D, method="classical"), n_init=1,
                       max_iter=50, normalized_stress=True)
    assert compute.mds_stress(D, Y) == pytest.approx(theirs, rel=1e-10)
    assert compute.mds_stress(squareform(D), Y) == pytest.approx(theirs, rel=1e-10)  # condensed D alike
    if metric_dims == 2:  # a planar configuration is reproduced: no stress
        assert compute.mds_stress(D, compute.mds(D, method="classical")) < 1e-9


def test_stress_closed_form_and_invariances():
    # Points embedded at half their distances d: each residual and each plotted distance are
    # d/2, so stress-1 = sqrt(sum (d/2)^2 / sum (d/2)^2) = 1.
    P = np.array([[0.0], [1.0], [3.0]])
    D = squareform(pdist(P))
    assert compute.mds_stress(D, np.hstack([P / 2, np.zeros((3, 1))])) == pytest.approx(1.0)
    Y = np.random.default_rng(7).normal(size=(12, 2))
    D = squareform(pdist(np.random.default_rng(8).normal(size=(12, 5))))
    value = compute.mds_stress(D, Y)
    R = special_ortho_group.rvs(2, random_state=9) * np.array([1, -1])
    assert compute.mds_stress(D, Y @ R + 3.0) == pytest.approx(value, rel=1e-12)
    assert compute.mds_stress(4.0 * D, 4.0 * Y) == pytest.approx(value, rel=1e-12)


def test_stress_refuses_what_it_cannot_compare():
    D = squareform(pdist(np.arange(8.0).reshape(4, 2)))
    with pytest.raises(ValueError, match="the 5 embedded items"):
        compute.mds_stress(D, np.zeros((5, 2)) + np.arange(5)[:, None])
    with pytest.raises(ValueError, match="coincide"):
        compute.mds_stress(D, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="finite"):
        compute.mds_stress(squareform(D), np.full((4, 2), np.nan))


def test_stress_of_the_human_it_rdm_as_the_app_stores_it():
    """Kriegeskorte et al. (2008)'s human-IT RDM (92 images, subject 1, session 1, as rsatoolbox
    distributes it) embedded by SMACOF: the stress of the configuration stored as the app stores
    it (float32 coordinates, a float32 condensed RDM) is scikit-learn's stress of that
    configuration to 1e-5 (measured 5e-6), and unchanged by a rotation of the float32 points."""
    import scipy.io
    from sklearn.manifold import smacof

    from tests.support import external_data

    path = external_data("rsa92") / "92_brainRDMs.mat"
    if not path.exists():
        pytest.skip(f"the Kriegeskorte 2008 RDMs are not at {path.parent}")
    D = np.asarray(scipy.io.loadmat(path)["RDMs"][0, 0, 0]["RDM"], dtype=np.float64)
    X, theirs = smacof(D, metric=True, n_components=2, init=compute.mds(D, method="smacof"), n_init=1,
                       max_iter=1, normalized_stress=True)
    stored = X.astype(np.float32)  # what recipes.mds keeps
    ours = compute.mds_stress(squareform(D, checks=False).astype(np.float32), stored)
    assert ours == pytest.approx(theirs, rel=1e-5) and 0.0 < ours < 1.0
    R = special_ortho_group.rvs(2, random_state=10).astype(np.float32)
    assert compute.mds_stress(D, stored @ R) == pytest.approx(ours, rel=1e-5)
