"""compute.confusion_matrix: top-1 against scikit-learn, top-k by hand, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import compute


def test_top1_matches_sklearn_row_normalised():
    from sklearn.metrics import confusion_matrix as sk_confusion

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 6))
    labels = rng.integers(0, 6, size=200)
    expected = sk_confusion(labels, scores.argmax(axis=1), labels=range(6), normalize="true")
    np.testing.assert_allclose(compute.confusion_matrix(scores, labels), expected, atol=1e-12)


def test_top_k_by_hand():
    scores = np.array([
        [0.6, 0.3, 0.1],  # class 0: top-2 {0, 1}
        [0.1, 0.2, 0.7],  # class 0: top-2 {2, 1}
        [0.2, 0.5, 0.3],  # class 1: top-2 {1, 2}
    ])
    labels = np.array([0, 0, 1])
    expected = np.array([[0.5, 1.0, 0.5], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(compute.confusion_matrix(scores, labels, k=2), expected)


def test_top5_rows_sum_to_five_and_empty_classes_are_zero():
    rng = np.random.default_rng(1)
    scores = torch.from_numpy(rng.normal(size=(300, 12)))
    labels = torch.from_numpy(rng.integers(0, 11, size=300))  # class 11 has no stimuli
    C = compute.confusion_matrix(scores, labels, k=5, n_classes=12)
    assert C.shape == (12, 12)
    np.testing.assert_allclose(C[:11].sum(axis=1), 5.0)
    assert np.all(C[11] == 0) and np.all((C >= 0) & (C <= 1))


def test_k_equal_to_classes_fills_the_present_rows():
    C = compute.confusion_matrix(np.random.rand(10, 3), np.arange(10) % 3, k=3)
    np.testing.assert_array_equal(C, np.ones((3, 3)))


@pytest.mark.parametrize(
    "scores, labels, kwargs, match",
    [
        (np.random.rand(5, 3), np.zeros(5, int), {"k": 4}, "k must be an integer from 1 to"),
        (np.random.rand(5, 3), np.zeros(4, int), {}, r"labels must have shape \(5,\)"),
        (np.random.rand(5, 3), np.array([0, 1, 3, 2, -1]), {}, "outside \\[0, 3\\).*row 2"),
        (np.random.rand(5, 3), np.array([0, 1, 0.5, 2, 1]), {}, "integer class indices"),
        (np.random.rand(5, 3), np.zeros(5, int), {"n_classes": 4}, "n_classes is 4"),
        (np.array([[1.0, np.nan], [0, 1]]), np.zeros(2, int), {}, "rows 0"),
        (np.random.rand(5), np.zeros(5, int), {}, "2-D"),
    ],
)
def test_bad_input(scores, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compute.confusion_matrix(scores, labels, **kwargs)


def test_confusion_rdm_is_one_minus_the_symmetrised_confusion():
    from scipy.spatial.distance import squareform

    from compute.measures.confusion import confusion_rdm

    M = np.array([[0.8, 0.2, 0.0], [0.4, 0.6, 0.0], [0.0, 0.1, 0.9]])
    D = squareform(confusion_rdm(M))
    assert np.allclose(D, [[0.0, 0.7, 1.0], [0.7, 0.0, 0.95], [1.0, 0.95, 0.0]])
    with pytest.raises(ValueError, match="square"):
        confusion_rdm(np.zeros((3, 4)))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_topk_accuracy_matches_sklearn(k):
    from sklearn.metrics import top_k_accuracy_score

    from compute.measures.confusion import topk_accuracy

    rng = np.random.default_rng(k)
    scores = rng.normal(size=(300, 7))
    labels = rng.integers(0, 7, size=300)
    expected = top_k_accuracy_score(labels, scores, k=k, labels=range(7))
    assert topk_accuracy(torch.from_numpy(scores), labels, k) == pytest.approx(expected, abs=1e-6)


def test_topk_accuracy_by_hand_and_k_beyond_the_classes():
    from compute.measures.confusion import topk_accuracy

    scores = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3], [0.5, 0.4, 0.1]])
    labels = [0, 0, 2, 2]  # top-1 right for row 0 only; top-2 also for row 2
    assert topk_accuracy(scores, labels) == 0.25
    assert topk_accuracy(scores, labels, k=2) == 0.5
    assert topk_accuracy(scores, labels, k=10) == 1.0  # k is capped at the number of classes
