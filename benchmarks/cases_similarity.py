"""Similarity of two activation matrices: CKA, RV/RV2 vs hoggorm, CCA family vs NumPy references."""
from __future__ import annotations

from benchmarks import peers
from benchmarks.harness import Case, Prepared, best_seconds

# measure -> {peer name: callable(X, Y) -> float}
PEERS = {
    "rv": {"hoggorm": lambda X, Y: peers.hoggorm_rv(X, Y)},
    "cka_linear": {},  # = RV of centred data: hoggorm's time and answer are those of the rv row

    "rv2": {"hoggorm": lambda X, Y: peers.hoggorm_rv(X, Y, modified=True)},
    "cka_debiased": {},
    "cka_rbf": {},
    "procrustes": {},
    "cca_mean": {"numpy-ref": peers.reference_cca_mean},
    "svcca": {"numpy-ref": peers.reference_svcca},
    "pwcca": {"numpy-ref": peers.reference_pwcca},
}
CCA = ("cca_mean", "svcca", "pwcca")
TARGETED = ("cka_linear", "cka_debiased", "rv", "rv2") + CCA


def gemm_work(measure: str, n: int, d1: int, d2: int) -> tuple[float, tuple[int, int, int]]:
    """The least GEMM work a measure needs, and its dominant GEMM shape."""
    feature = 2.0 * n * (d1 * d2 + d1 * d1 + d2 * d2)
    gram = 2.0 * n * n * (d1 + d2)
    if measure in ("cka_rbf",):
        return gram, (n, max(d1, d2), n)
    if measure == "procrustes":
        return 2.0 * n * d1 * d2, (d1, n, d2)
    if measure in CCA or feature <= gram:
        return feature, (d1, n, d2)
    return gram, (n, max(d1, d2), n)


def cca_lapack(measure: str, d: int) -> float:
    """Best seconds of the float64 D x D factorisations an exact CCA-family measure cannot
    avoid at width D, on the host's LAPACK with one thread as RepScope runs them (mean CCA: two
    Cholesky factorisations, two triangular solves, one symmetric eigenvalue problem; SVCCA: two
    eigendecompositions and the eigenvalues; PWCCA: two eigendecompositions and compute_pwcca's
    full SVD). With the row's three GEMMs at the roofline they make its floor."""
    import numpy as np
    import scipy.linalg

    from compute.measures.numerics import one_blas_thread

    rng = np.random.default_rng(0)
    B = rng.standard_normal((2 * d, d))
    S, M = B.T @ B, rng.standard_normal((d, d))
    L = np.linalg.cholesky(S)
    steps = {
        "cca_mean": [lambda: scipy.linalg.cholesky(S, lower=True)] * 2
        + [lambda: scipy.linalg.solve_triangular(L, M, lower=True)] * 2
        + [lambda: scipy.linalg.eigh(S, eigvals_only=True, driver="evr")],
        "svcca": [lambda: scipy.linalg.eigh(S, driver="evd")] * 2
        + [lambda: scipy.linalg.eigh(S, eigvals_only=True, driver="evr")],
        "pwcca": [lambda: scipy.linalg.eigh(S, driver="evd")] * 2 + [lambda: np.linalg.svd(M)],
    }[measure]
    with one_blas_thread():
        return sum(best_seconds(step) for step in steps)


def similarity_case(measure: str, n: int, d: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        import compute

        similarity = compute.similarity
        X = peers.activations(n, d, seed=0)
        Y = peers.related(X, seed=1)
        return Prepared(
            repscope=lambda: similarity(X, Y, measure=measure),
            peers={name: (lambda fn=fn: fn(X, Y)) for name, fn in PEERS[measure].items()},
            agree=lambda rep, name, res: rep - res,
            lapack=(lambda: cca_lapack(measure, d)) if measure in CCA else None,
        )

    # hoggorm forms N x N Gram matrices and three N^3 products per pair (4 pairs for 2 inputs).
    cost = {name: (f"{name}/{measure}", float(n) ** 3 if name == "hoggorm" else float(n) * d * d)
            for name in PEERS[measure]}
    return Case(
        "similarity", f"{measure} N={n} D={d}", prepare, tuple(PEERS[measure]), cost=cost,
        gemm=gemm_work(measure, n, d, d), target="kernel" if measure in TARGETED else None,
        # The CCA references are themselves float64 BLAS products and LAPACK factorisations (the
        # floor's work: pwcca's LAPACK alone is ~1/4 of the reference's time), not loops.
        floor_peers=("numpy-ref",) if measure in CCA else (),
        timeout_s=900, reuse_peers=f"rv N={n} D={d}" if measure == "cka_linear" else None, size=n,
    )


def cases(quick: bool) -> list[Case]:
    kernel_sizes = [(1000, 256)] if quick else [(1000, 256), (2000, 512), (10000, 2048)]
    cca_sizes = [(1000, 128)] if quick else [(1000, 128), (2000, 256), (10000, 512)]
    rows = []
    for measure in PEERS:
        for n, d in (cca_sizes if measure in CCA else kernel_sizes):
            rows.append(similarity_case(measure, n, d))
    return rows
