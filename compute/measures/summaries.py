"""Per-item summaries of a square dissimilarity matrix (a model RDM).

numpy only: the web process draws these summaries without loading torch or scipy.
"""
from __future__ import annotations

import numpy as np


def mean_dissimilarity(matrix: np.ndarray) -> np.ndarray:
    """Each item's mean dissimilarity to all the others: the off-diagonal mean of each row of
    an (n x n) model RDM, n >= 2. Higher = the model's representation is more unlike the rest."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f"mean_dissimilarity needs a square matrix of at least 2 x 2, got {matrix.shape}")
    n = matrix.shape[0]
    return (matrix.sum(axis=1) - np.diag(matrix)) / (n - 1)
