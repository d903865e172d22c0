"""Top-k accuracy and top-k confusion matrices of a classifier (the RSA-vs-performance paper's
"top-5 confusion")."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from compute.measures.validate import as_matrix


def confusion_matrix(
    scores: Any, labels: Any, k: int = 1, n_classes: int | None = None
) -> np.ndarray:
    """Row-normalised top-k confusion matrix.

    Parameters
    ----------
    scores : array or tensor, shape (N, C)
        Logits or probabilities of N stimuli for C classes (higher = more likely); only their
        order within a row matters. Ties are broken by torch.topk.
    labels : array or tensor of ints, shape (N,)
        True class of each stimulus, in [0, C).
    k : int
        Number of top predictions counted, 1 <= k <= C.
    n_classes : int, optional
        C, checked against ``scores.shape[1]`` when given.

    Returns
    -------
    np.ndarray, shape (C, C), float64
        Entry (i, j) = fraction of class-i stimuli whose top-k predictions include class j,
        in [0, 1]; each row sums to k (top-1: the usual row-normalised confusion matrix,
        diagonal = per-class recall). A class with no stimuli gets a row of zeros.
    """
    S = as_matrix(scores, "scores", dtype=np.float64, device="cpu", min_rows=1)
    n, c = S.shape
    if n_classes is not None and n_classes != c:
        raise ValueError(
            f"scores has {c} columns (classes) but n_classes is {n_classes}; pass one score "
            "per class"
        )
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= c:
        raise ValueError(f"k must be an integer from 1 to the number of classes {c}, got {k!r}")
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    y = y.detach().cpu()
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"labels must have shape ({n},), one class per row of scores; got {tuple(y.shape)}"
        )
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ValueError("labels must be integer class indices")
        y = y.long()
    elif y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = y.long()
    outside = torch.nonzero((y < 0) | (y >= c)).flatten().numpy()
    if len(outside):
        raise ValueError(
            f"labels of {len(outside)} stimuli lie outside [0, {c}) (first: row {outside[0]} "
            f"has label {int(y[outside[0]])}); labels must index the columns of scores"
        )
    top = torch.topk(S, k, dim=1).indices  # (N, k)
    cells = (y[:, None] * c + top).flatten()
    counts = torch.bincount(cells, minlength=c * c).view(c, c).double()
    per_class = torch.bincount(y, minlength=c).double()
    out = counts / per_class.clamp(min=1)[:, None]
    return out.numpy()


def topk_accuracy(scores: torch.Tensor, labels, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (ties broken by index)."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return float((top == labels[:, None]).any(dim=1).float().mean())


def confusion_rdm(confusion: Any) -> np.ndarray:
    """A class RDM from a (top-k) confusion matrix: classes often confused are close.

    Parameters
    ----------
    confusion : array, shape (C, C)
        A row-normalised confusion matrix (``confusion_matrix``), entries in [0, 1], C >= 3.

    Returns
    -------
    np.ndarray, shape (C * (C - 1) / 2,), float64
        Condensed (``squareform`` order) dissimilarity ``1 - (M_ij + M_ji) / 2`` between classes
        i and j, in [0, 1]: 0 = always confused both ways, 1 = never confused. Comparable
        across models with ``model_rdm`` like input RDMs over C "stimuli".
    """
    M = as_matrix(confusion, "confusion", dtype=np.float64, device="cpu", min_rows=3).numpy()
    c = M.shape[0]
    if M.shape != (c, c):
        raise ValueError(f"confusion must be square (C x C), got shape {M.shape}")
    rows, cols = np.triu_indices(c, k=1)
    return 1.0 - (M[rows, cols] + M[cols, rows]) / 2.0
