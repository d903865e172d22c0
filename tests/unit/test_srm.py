"""compute.fit_srm and the SRM analyses of Lu et al. (2018) on synthetic networks."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

import compute
from compute.measures.srm import shared_space_rsm_agreement, srm_variance_explained, stratified_split


def rotated_copies(seed=0, n=300, d=10, m=4, rank=None, noise=0.0):
    """m networks whose (N x D) activations are one representation H under random rotations Q_i."""
    rng = np.random.default_rng(seed)
    rank = rank or d
    H = rng.standard_normal((n, rank)) @ np.diag(np.linspace(3, 1, rank)) @ rng.standard_normal((rank, d))
    H += 2.0  # a common offset per feature, removed by centring
    Qs = [ortho_group.rvs(d, random_state=seed * 10 + i) for i in range(m)]
    return [H @ Q + noise * rng.standard_normal((n, d)) for Q in Qs], Qs


def test_recovers_orthogonally_rotated_copies():
    Xs, Qs = rotated_copies()
    result = compute.fit_srm([X[:200] for X in Xs], k=10)
    assert result.variance_explained == pytest.approx(1.0, abs=1e-5)
    # X_i = H Q_i, so W_i = Q_i' R for one shared rotation R of the shared basis.
    R = [Q @ W for Q, W in zip(Qs, result.W)]
    for Ri in R:
        np.testing.assert_allclose(Ri, R[0], atol=1e-4)
    for W in result.W:
        np.testing.assert_allclose(W.T @ W, np.eye(10), atol=1e-5)
    held_out = [X[200:] for X in Xs]
    assert srm_variance_explained(result, held_out) == pytest.approx(1.0, abs=1e-5)
    agreement = shared_space_rsm_agreement(result, held_out)
    assert agreement.shared == pytest.approx(1.0, abs=1e-5)
    assert agreement.native < 0.9  # misaligned in the native spaces
    assert agreement.wrsm.shape == agreement.irsm_shared.shape == (100, 100)
    shared = result.transform(held_out)
    assert len(shared) == 4 and shared[0].shape == (100, 10)
    np.testing.assert_allclose(shared[1], shared[0], atol=1e-4)


def test_low_rank_shared_response_and_noise():
    Xs, _ = rotated_copies(seed=1, d=12, rank=4)
    exact = compute.fit_srm(Xs, k=4, n_iter=20, dtype=np.float64)
    assert exact.variance_explained == pytest.approx(1.0, abs=1e-9)
    assert exact.S.shape == (4, 300) and all(W.shape == (12, 4) for W in exact.W)
    noisy, _ = rotated_copies(seed=1, d=12, rank=4, noise=1.0)
    fit = compute.fit_srm([X[:200] for X in noisy], k=4, n_iter=20)
    held_out = srm_variance_explained(fit, [X[200:] for X in noisy])
    assert 0.8 < held_out < 0.99 and abs(held_out - fit.variance_explained) < 0.05
    assert shared_space_rsm_agreement(fit, [X[200:] for X in noisy]).shared > 0.8


def test_unrelated_networks_share_little():
    rng = np.random.default_rng(2)
    Xs = [rng.standard_normal((200, 10)) for _ in range(4)]
    fit = compute.fit_srm([X[:150] for X in Xs], k=3)
    assert srm_variance_explained(fit, [X[150:] for X in Xs]) < 0.2


def test_deterministic_for_a_seed_and_loss_non_increasing():
    Xs, _ = rotated_copies(seed=3, noise=0.5, m=3)
    a = compute.fit_srm(Xs, k=5, n_iter=15, seed=7, dtype=np.float64)
    b = compute.fit_srm(Xs, k=5, n_iter=15, seed=7, dtype=np.float64)
    for Wa, Wb in zip(a.W, b.W):
        np.testing.assert_array_equal(Wa, Wb)
    np.testing.assert_array_equal(a.S, b.S)
    assert np.all(np.diff(a.loss) <= 1e-9 * a.loss[0])
    assert 0 < a.variance_explained <= 1


def test_different_widths():
    rng = np.random.default_rng(4)
    H = rng.standard_normal((150, 5))
    Xs = [H @ np.linalg.qr(rng.standard_normal((d, 5)))[0].T for d in (5, 9, 14)]
    fit = compute.fit_srm(Xs, k=5, n_iter=20)
    assert fit.variance_explained == pytest.approx(1.0, abs=1e-5)
    assert [W.shape for W in fit.W] == [(5, 5), (9, 5), (14, 5)]
    assert shared_space_rsm_agreement(fit, Xs).native is None


def test_bad_input():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((20, 6)), rng.standard_normal((20, 4))
    with pytest.raises(ValueError, match="at least two"):
        compute.fit_srm([X], k=2)
    with pytest.raises(ValueError, match="stimuli"):
        compute.fit_srm([X, Y[:15]], k=2)
    with pytest.raises(ValueError, match="k=5"):
        compute.fit_srm([X, Y], k=5)
    with pytest.raises(ValueError, match="k=0"):
        compute.fit_srm([X, Y], k=0)
    bad = X.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="rows 3"):
        compute.fit_srm([bad, Y], k=2)
    with pytest.raises(ValueError, match="same for every stimulus"):
        compute.fit_srm([np.ones((20, 3)), Y], k=2)
    fit = compute.fit_srm([X, Y], k=2)
    with pytest.raises(ValueError, match="fitted with 6"):
        srm_variance_explained(fit, [Y, Y])
    with pytest.raises(ValueError, match="list of 2"):
        shared_space_rsm_agreement(fit, [X])


@pytest.mark.parametrize("fraction, seed", [(0.5, 0), (0.3, 1), (0.8, 2)])
def test_stratified_split_keeps_class_proportions(fraction, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat([3, 7, 9], [10, 21, 4]))
    train, test = stratified_split(labels, fraction, seed)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    for label, count in ((3, 10), (7, 21), (9, 4)):
        assert np.sum(labels[train] == label) == min(max(round(fraction * count), 1), count - 1)
    again = stratified_split(labels, fraction, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    assert not np.array_equal(stratified_split(labels, fraction, seed + 1)[0], train)


def test_stratified_split_bad_input():
    with pytest.raises(ValueError, match="single stimulus"):
        stratified_split(np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="train_fraction"):
        stratified_split(np.array([0, 0, 1, 1]), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((2, 2)))
