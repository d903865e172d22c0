"""RDMs: RepScope vs scipy pdist, scikit-learn pairwise_distances and rsatoolbox calc_rdm."""
from __future__ import annotations

from benchmarks import peers
from benchmarks.harness import Case, Prepared

FULL = [(1000, 512), (1000, 2048), (2000, 512), (5000, 512), (5000, 2048), (10000, 512), (10000, 2048)]
QUICK = [(1000, 256), (2000, 512)]
PEERS = ("pdist", "sklearn", "rsatoolbox")
# Peers whose RDM is itself one BLAS GEMM (the |x|^2 + |y|^2 - 2 X Y' trick): RepScope is held
# to the GEMM floor and to 1x them, not 10x. rsatoolbox's correlation RDM is a numpy einsum
# (a loop, not BLAS) and scikit-learn's goes through scipy's cdist.
FLOOR_PEERS = {"euclidean": ("sklearn", "rsatoolbox"), "sqeuclidean": ("sklearn", "rsatoolbox")}


def rdm_case(method: str, n: int, d: int, group: str = "rdm") -> Case:
    def prepare(quick: bool) -> Prepared:
        import compute

        rdm = compute.rdm
        X = peers.activations(n, d)
        return Prepared(
            repscope=lambda: rdm(X, method, condensed=True),
            peers={
                "pdist": lambda: peers.pdist_rdm(X, method),
                "sklearn": lambda: peers.sklearn_rdm(X, method),
                "rsatoolbox": lambda: peers.rsatoolbox_rdm(X, method),
            },
            agree=lambda rep, name, res: rep - peers.as_condensed(name, res, method, d),
        )

    return Case(
        group, f"{method} N={n} D={d}", prepare, PEERS,
        cost={p: (f"{p}/{method}", float(n) * n * d) for p in PEERS},
        gemm=(2.0 * n * n * d, (n, d, n)), target="kernel",
        output_bytes=n * (n - 1) // 2 * 4, timeout_s=900, size=n, floor_peers=FLOOR_PEERS.get(method, ()),
    )


def cases(quick: bool) -> list[Case]:
    return [rdm_case(method, n, d) for method in ("correlation", "euclidean") for n, d in (QUICK if quick else FULL)]
