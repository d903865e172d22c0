"""Kernels on the GPU: RDMs, the CKA family, the CCA family and a permutation null.

Inputs are put on the device once (a GPU pipeline's activations live there); each call returns
host results, so its wall time covers the kernels. Every row's answer is checked, untimed,
against RepScope in float64 on the same device; the TF32 and bfloat16 rows also against the
float32 answer of the same run.
"""
from __future__ import annotations

import numpy as np

from benchmarks import device, peers
from benchmarks.cases_similarity import gemm_work
from benchmarks.harness import Case, Prepared

KERNEL_SIZES = [(2000, 512), (10000, 2048)]
CCA_SIZES = [(2000, 256), (10000, 512)]
QUICK = [(500, 128)]
CKA_FAMILY = ("cka_linear", "cka_debiased", "rv", "rv2", "cka_rbf", "dcor")
CCA_FAMILY = ("cca_mean", "svcca", "pwcca")
# Faster precisions tried on one row each: TF32 tensor cores, and bfloat16 autocast (the
# GEMMs RepScope writes into preallocated outputs are not autocast: the row then says so).
VARIANTS = ("tf32", "bf16")
TOLERANCE = 1e-5  # as the CPU rows: float32 against float64


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def host_copy_notes(result) -> list[str]:
    """A large host answer (an RDM) must cross to the host: the time of that copy alone."""
    if not isinstance(result, np.ndarray) or result.size < 1_000_000:
        return []
    import torch

    source = torch.empty(result.size, dtype=torch.float32, device=device.gpu())
    seconds = device.best_seconds(lambda: source.cpu(), device.gpu(), repeats=3)
    return [f"copying an answer of this size ({result.size * 4 / 2**20:.0f} MiB float32) to the host "
            f"alone takes {seconds * 1e3:.1f} ms"]


def gpu_case(group: str, name: str, run, inputs, gemm, kind: str = "f32", target: str | None = None,
             tolerance: float = TOLERANCE, timeout_s: float = 300.0) -> Case:
    """A row timing ``run(*tensors, dtype=None)`` on CUDA in precision ``kind``.

    ``inputs()`` makes numpy arrays (moved to the device once); ``run(..., dtype=float64)`` in
    float32-exact arithmetic is the untimed reference; a variant row also compares with its
    float32 answer. ``gemm`` is ``(flops, shape)`` as in the CPU rows.
    """
    def prepare(quick: bool) -> Prepared:
        import torch

        tensors = [torch.from_numpy(a).to(device.gpu()) for a in inputs()]
        device.reset_memory()

        def repscope():
            with device.precision(kind):
                return device.synced(lambda: run(*tensors))()

        def after(result, peer_results):
            notes = device.memory_notes() + host_copy_notes(result)
            agreement = {"float64 (GPU)": _max_diff(result, run(*tensors, dtype=np.float64))}
            if kind != "f32":
                with device.precision("f32"):
                    f32 = run(*tensors)
                agreement[f"float32 answer ({kind} vs f32)"] = _max_diff(result, f32)
                if np.array_equal(np.asarray(result), np.asarray(f32)):
                    notes.append(f"{kind} gave the float32 answer bit for bit: its GEMMs did not run in {kind}")
            return {"notes": notes, "agreement": agreement}

        return Prepared(repscope=repscope, after=after, gemm=gemm,
                        notes=[] if kind == "f32" else [f"precision {kind}"])

    label = name if kind == "f32" else f"{name}, {kind}"
    return Case(group, label, prepare, target=target, tolerance=tolerance, timeout_s=timeout_s)


def pair(n: int, d: int) -> list[np.ndarray]:
    """Two related (N x D) float32 activation matrices, as the CPU similarity rows use."""
    X = peers.activations(n, d, seed=0)
    return [X, peers.related(X, seed=1)]


def rdm_row(method: str, n: int, d: int, kind: str = "f32") -> Case:
    def run(X, dtype=None):
        import compute

        return compute.rdm(X, method, condensed=True, dtype=dtype, device=device.gpu())

    return gpu_case(
        "gpu_kernels", f"rdm {method} N={n} D={d}", run,
        lambda: [peers.activations(n, d)], (2.0 * n * n * d, (n, d, n)), kind,
        target=("gpu-kernel" if kind == "f32" else "gpu-variant") if n >= 10000 else None)


def similarity_row(measure: str, n: int, d: int, kind: str = "f32") -> Case:
    def run(X, Y, dtype=None):
        import compute

        return compute.similarity(X, Y, measure=measure, dtype=dtype, device=device.gpu())

    gram = measure in ("cka_rbf", "dcor")  # N x N kernels (dcor: distance matrices)
    work = (2.0 * n * n * 2 * d, (n, d, n)) if gram else gemm_work(measure, n, d, d)
    targeted = measure in CKA_FAMILY and n >= 10000
    return gpu_case(
        "gpu_kernels", f"{measure} N={n} D={d}", run, lambda: pair(n, d), work, kind,
        target=("gpu-kernel" if kind == "f32" else "gpu-variant") if targeted else None,
        # PWCCA's value depends on singular-vector signs (compute.similarity's notes): recorded only.
        tolerance=TOLERANCE if measure != "pwcca" else 1e-2)


def null_row(measure: str, n: int, d: int, n_perm: int) -> Case:
    from compute.measures.nulls import activation_null

    def run(X, Y, dtype=None):
        estimate, null = activation_null(X, Y, measure, n_perm=n_perm, dtype=dtype, device=device.gpu())
        return np.concatenate([[estimate], null])

    # Each permutation forms one cross product of the prepared layers (cases_nulls' cost model).
    flops, shape = gemm_work(measure, n, d, d)
    return gpu_case("gpu_kernels", f"{measure} null, {n_perm} permutations, N={n} D={d}", run,
                    lambda: pair(n, d), (flops * n_perm / 3, shape))


def cases(quick: bool) -> list[Case]:
    """The judged sizes (N = 10,000) for every kernel; N = 2,000 for the first of each family."""
    kernel, cca = (QUICK, QUICK) if quick else (KERNEL_SIZES, CCA_SIZES)
    big, big_cca = kernel[-1], cca[-1]
    rows = [rdm_row("correlation", n, d) for n, d in kernel] + [rdm_row("euclidean", *big)]
    rows += [rdm_row("correlation", *big, kind) for kind in VARIANTS]
    rows += [similarity_row("cka_linear", n, d) for n, d in kernel]
    rows += [similarity_row(measure, *big) for measure in CKA_FAMILY[1:]]
    rows += [similarity_row("cka_linear", *big, kind) for kind in VARIANTS]
    rows += [similarity_row("cca_mean", n, d) for n, d in cca]
    rows += [similarity_row(measure, *big_cca) for measure in CCA_FAMILY[1:]]
    rows.append(null_row("cka_linear", *(QUICK[0] if quick else (2000, 512)), n_perm=100 if quick else 1000))
    return device.budgeted(rows, 0.45)
