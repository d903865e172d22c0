"""Model RDMs: all pairs of M RDMs, RepScope vs rsatoolbox ``compare``."""
from __future__ import annotations

import numpy as np

from benchmarks import peers
from benchmarks.harness import Case, Prepared


def rdm_set(m: int, n: int, seed: int = 0) -> np.ndarray:
    """(M, K) condensed RDMs over n stimuli: a shared structure plus model-specific noise."""
    rng = np.random.default_rng(seed)
    k = n * (n - 1) // 2
    shared = rng.random(k, dtype=np.float32)
    weights = rng.random((m, 1), dtype=np.float32)
    return (weights * shared + rng.random((m, k), dtype=np.float32)).astype(np.float32)


def model_rdm_case(method: str, m: int, n: int) -> Case:
    k = n * (n - 1) // 2

    def prepare(quick: bool) -> Prepared:
        import compute

        model_rdm = compute.model_rdm
        rdms = rdm_set(m, n)
        return Prepared(
            repscope=lambda: model_rdm(rdms, method=method),
            peers={"rsatoolbox": lambda: peers.rsatoolbox_model_rdm(rdms, method)},
            # rsatoolbox returns similarities; a model RDM holds 1 - similarity.
            agree=lambda rep, name, res: rep - (1.0 - res),
        )

    # rsatoolbox's rank-based methods rank each RDM once per pair of sets; tau-a runs a
    # sort-based count per pair: cost ~ M^2 K.
    units = float(m) * m * k if method == "kendall_tau_a" else float(m) * k
    return Case(
        "model_rdm", f"{method} M={m} N={n} (K={k})", prepare, ("rsatoolbox",),
        cost={"rsatoolbox": (f"rsatoolbox/{method}", units)},
        gemm=(2.0 * m * m * k, (m, k, m)) if method != "kendall_tau_a" else None,
        target="peer10", timeout_s=900,
    )


def cases(quick: bool) -> list[Case]:
    n = 300 if quick else 1000
    return [
        model_rdm_case("spearman", 20 if quick else 40, n),
        model_rdm_case("kendall_tau_a", 4 if quick else 8, n),
        # M=40 would be 780 pairs (about 4x M=20): its time follows as M^2 from this row.
        model_rdm_case("kendall_tau_a", 10 if quick else 20, n),
    ]
