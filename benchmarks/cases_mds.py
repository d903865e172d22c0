"""MDS: RepScope's smacof and classical vs scikit-learn and a textbook NumPy classical MDS."""
from __future__ import annotations

import numpy as np

from benchmarks import peers
from benchmarks.harness import Case, Prepared


def distances(n: int, seed: int = 0) -> np.ndarray:
    """Euclidean distances of n points in 10 dimensions, in 5 clusters."""
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5, 10)) * 3
    points = centres[rng.integers(0, 5, n)] + rng.standard_normal((n, 10))
    return squareform(pdist(points))


def embedding_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differences of two embeddings' inter-point distances (blind to rotations and flips)."""
    from scipy.spatial.distance import pdist

    return pdist(a) - pdist(b)


def stress(D: np.ndarray, Y: np.ndarray) -> float:
    from scipy.spatial.distance import pdist, squareform

    return float(((squareform(D, checks=False) - pdist(Y)) ** 2).sum())


def mds_case(method: str, n: int) -> Case:
    peer = "sklearn MDS" if method == "smacof" else "numpy eigh"

    def prepare(quick: bool) -> Prepared:
        import compute

        mds = compute.mds
        D = distances(n)
        fn = (lambda: peers.sklearn_mds(D)) if method == "smacof" else (lambda: peers.numpy_classical_mds(D))

        def after(result, peer_results):
            if peer not in peer_results:
                return {}
            return {"notes": [f"raw stress RepScope {stress(D, result):.4g}, "
                              f"{peer} {stress(D, peer_results[peer]):.4g}"]}

        return Prepared(repscope=lambda: mds(D, n_components=2, method=method, seed=0), peers={peer: fn},
                        agree=lambda rep, name, res: embedding_gap(rep, res), after=after)

    return Case("mds", f"{method} n={n}", prepare, (peer,), timeout_s=600)


def cases(quick: bool) -> list[Case]:
    sizes = (100, 200) if quick else (500, 2000)
    return [mds_case(method, n) for n in sizes for method in ("smacof", "classical")]
