"""Memory: peak resident memory of a large RDM against the size of its condensed output."""
from __future__ import annotations

from benchmarks import peers
from benchmarks.harness import Case, Prepared


def memory_case(n: int, d: int, condensed: bool) -> Case:
    def prepare(quick: bool) -> Prepared:
        import compute

        rdm = compute.rdm
        X = peers.activations(n, d)
        return Prepared(repscope=lambda: rdm(X, "correlation", condensed=condensed),
                        notes=["the square output alone is 2x the condensed size"] if not condensed else [])

    return Case(
        "memory", f"correlation N={n} D={d}, {'condensed' if condensed else 'square'} output", prepare,
        output_bytes=n * (n - 1) // 2 * 4, target="memory:2.5" if condensed else None,
        gemm=(2.0 * n * n * d, (n, d, n)), timeout_s=900,
    )


def cases(quick: bool) -> list[Case]:
    n = 5000 if quick else 20000
    return [memory_case(n, 512, condensed=True), memory_case(n, 512, condensed=False)]
