"""Multidimensional scaling of a dissimilarity matrix into a few plottable dimensions, and how
well the picture keeps the dissimilarities (Kruskal's stress-1)."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from scipy.spatial.distance import pdist, squareform

from compute.measures.registry import MDS_METHODS
from compute.measures.validate import as_matrix


def mds(D: Any, n_components: int = 2, method: str = "smacof", seed: int = 0) -> np.ndarray:
    """Embed n items in ``n_components`` dimensions so that distances approximate ``D``.

    Parameters
    ----------
    D : array or tensor, shape (n, n)
        Dissimilarities (an RDM or a model RDM): symmetric, finite, non-negative, zero
        diagonal, n >= 3. Higher = more dissimilar (pass ``1 - S`` for a similarity S).
    n_components : int
        Output dimensions, 1 <= n_components < n.
    method : {"smacof", "classical"}
        ``classical``: Torgerson scaling (double centring of -D**2/2, top eigenvectors);
        exact, up to rotation, when D holds Euclidean distances. ``smacof``: scikit-learn's
        metric MDS on the precomputed D (minimises raw stress), started from the classical
        solution, one run, at most 300 iterations, eps 1e-6.
    seed : int
        Random state for scikit-learn and for the jitter added to a degenerate (zero)
        starting dimension; the result is deterministic for a given ``seed``.

    Returns
    -------
    np.ndarray, shape (n, n_components), float64
        Coordinates, centred, rotated to principal axes (first axis = most variance), each
        axis flipped so that the point with the largest |coordinate| on it is positive:
        the same D always gives the same picture.
    """
    if method not in MDS_METHODS:
        raise ValueError(f"unknown MDS method {method!r}; choose one of {list(MDS_METHODS)}")
    D = _check_dissimilarities(D)
    n = D.shape[0]
    if not isinstance(n_components, (int, np.integer)) or not 1 <= n_components < n:
        raise ValueError(
            f"n_components must be an integer from 1 to n - 1 = {n - 1}, got {n_components!r}"
        )
    Y = _classical(D, int(n_components))
    if method == "smacof":
        from sklearn.manifold import MDS

        degenerate = np.all(np.abs(Y) < 1e-12 * max(1.0, D.max()), axis=0)
        if degenerate.any():
            # SMACOF never leaves a dimension that starts at zero: give it a small seeded start.
            rng = np.random.default_rng(seed)
            Y[:, degenerate] = rng.normal(scale=1e-3 * D.max(), size=(n, int(degenerate.sum())))
        Y = MDS(
            n_components=int(n_components), metric_mds=True, metric="precomputed",
            init="random", n_init=1, max_iter=300, eps=1e-6, random_state=seed,
            normalized_stress=False,
        ).fit_transform(D, init=Y)
    return _orient(Y)


def mds_stress(D: Any, Y: Any) -> float:
    """Kruskal's stress-1 of the embedding ``Y`` of the dissimilarities ``D``: how far the
    distances between the points are from the dissimilarities, relative to those distances.

    stress-1 = sqrt( sum_{i<j} (D_ij - d_ij)^2 / sum_{i<j} d_ij^2 ), d_ij = |y_i - y_j|, with the
    dissimilarities as the disparities (metric MDS): Kruskal (1964), and what scikit-learn's
    ``smacof(..., normalized_stress=True)`` reports. 0: the plot's distances are the
    dissimilarities exactly; Kruskal's guide: 0.025 excellent, 0.05 good, 0.1 fair, 0.2 poor.
    It compares ``Y``'s scale with ``D``'s (MDS places points on D's scale); it does not change
    when both are scaled together, nor when ``Y`` is rotated, reflected or shifted.

    Parameters
    ----------
    D : array, shape (n, n) or (n (n - 1) / 2,)
        The dissimilarities embedded, square (as :func:`mds` takes them) or condensed.
    Y : array, shape (n, k)
        The embedding, one row per item (what :func:`mds` returns).
    """
    Y = np.asarray(Y, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(f"Y must be an (n, k) embedding, got shape {Y.shape}")
    n = Y.shape[0]
    if D.ndim == 2:
        D = squareform(_check_dissimilarities(D), checks=False)
    if D.ndim != 1 or D.shape[0] != n * (n - 1) // 2:
        raise ValueError(f"D (shape {D.shape}) does not hold the dissimilarities of the {n} embedded items: "
                         f"pass an {n} x {n} matrix or its {n * (n - 1) // 2} condensed entries")
    if not (np.isfinite(D).all() and np.isfinite(Y).all()):
        raise ValueError("D and Y must be finite (no NaN or infinity)")
    distances = pdist(Y)
    total = float(distances @ distances)
    if total == 0.0:
        raise ValueError("all embedded points coincide: stress-1 is undefined (no distances to compare)")
    residual = D - distances
    return float(np.sqrt(residual @ residual / total))


def _check_dissimilarities(D: Any) -> np.ndarray:
    D = as_matrix(D, "D", dtype=np.float64, device="cpu").numpy().copy()
    n, m = D.shape
    if n != m:
        raise ValueError(
            f"D must be a square (n x n) dissimilarity matrix, got shape {(n, m)}; for a "
            "condensed vector use scipy.spatial.distance.squareform(D)"
        )
    scale = max(1.0, float(np.abs(D).max()))
    asym = float(np.abs(D - D.T).max())
    if asym > 1e-6 * scale:
        raise ValueError(f"D is not symmetric (max |D - D.T| = {asym:.3g}); pass (D + D.T) / 2")
    if np.abs(np.diag(D)).max() > 1e-6 * scale:
        raise ValueError(
            "D has a non-zero diagonal; it must hold dissimilarities (0 from an item to itself): "
            "for a similarity matrix S pass 1 - S"
        )
    if D.min() < -1e-6 * scale:
        raise ValueError(f"D has negative dissimilarities (min {D.min():.3g}); they must be >= 0")
    D = np.clip((D + D.T) / 2.0, 0.0, None)
    np.fill_diagonal(D, 0.0)
    return D


def _classical(D: np.ndarray, k: int) -> np.ndarray:
    """Torgerson MDS: top-k eigenvectors of B = -J D^2 J / 2, scaled by sqrt(max(eigenvalue, 0))."""
    n = D.shape[0]
    B = -0.5 * D**2
    B -= B.mean(axis=0, keepdims=True)
    B -= B.mean(axis=1, keepdims=True)
    values, vectors = scipy.linalg.eigh(B, subset_by_index=[n - k, n - 1])
    order = np.argsort(values)[::-1]
    return vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))


def _orient(Y: np.ndarray) -> np.ndarray:
    """Centre, rotate to principal axes, and fix each axis's sign: a canonical picture."""
    Y = Y - Y.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(Y, full_matrices=False)
    Y = Y @ vt.T
    extreme = np.argmax(np.abs(Y), axis=0)
    signs = np.sign(Y[extreme, np.arange(Y.shape[1])])
    return Y * np.where(signs == 0, 1.0, signs)
