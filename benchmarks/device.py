"""The device a benchmark run measures: the CPU (default) or CUDA (``--device cuda``).

``configure`` is called once by the command line, before torch touches a device: ``cuda``
without a usable CUDA device stops the run at once with a message saying why; ``cpu`` hides
any GPU from the case processes, so RESULTS.md stays a CPU measurement on a GPU machine (its
cases leave ``device`` to RepScope's ``auto``). The choice travels to the case processes in
``REPSCOPE_BENCH_DEVICE``.

On CUDA the run measures the device's own GEMM roofline (``torch.mm`` in float32, TF32 and
bfloat16, timed with CUDA events), judges the rows against its float32 peak, and writes
RESULTS-gpu.md with the rows of the ``GPU_GROUPS`` (cases_gpu_*.py): kernels, extraction and
layer grids, each faster precision next to the float32 answer it must agree with.

``REPSCOPE_BENCH_GPU_DRY_RUN=1`` runs those GPU rows on the CPU (tiny roofline, results in
benchmarks/out/, never RESULTS-gpu.md): a check of the code paths where no GPU is.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Callable

ENV = "REPSCOPE_BENCH_DEVICE"
DRY_RUN_ENV = "REPSCOPE_BENCH_GPU_DRY_RUN"
PEAK_ENV = "REPSCOPE_BENCH_F32_PEAK"  # the orchestrator's measured float32 peak, for its workers
BUDGET_ENV = "REPSCOPE_BENCH_GPU_BUDGET_S"  # a bound on the GPU rows' total time (gpu_check.sh)
DEVICES = ("cpu", "cuda")
GPU_GROUPS = ("gpu_kernels", "gpu_extraction", "gpu_grid")
GPU_TARGET = 0.5  # issue 20: RDM and CKA-family kernels at >= 0.5 of the device's GEMM peak
RESULTS_GPU = Path(__file__).resolve().parent / "RESULTS-gpu.md"
PRECISIONS = ("f32", "tf32", "bf16")
# (m, k, n) of the roofline: a square GEMM, an RDM / Gram block (N x D @ D x N) and a
# feature-space product (D x N @ N x D) at the sizes the targets are judged at.
ROOFLINE_SHAPES = ((8192, 8192, 8192), (10000, 2048, 10000), (2048, 10000, 2048))


def current() -> str:
    """The device of this run: ``cpu`` or ``cuda``."""
    return os.environ.get(ENV, "cpu")


def is_cuda() -> bool:
    return current() == "cuda"


def dry_run() -> bool:
    return os.environ.get(DRY_RUN_ENV) == "1"


def gpu() -> str:
    """The torch device the GPU rows run on: ``cuda`` (``cpu`` in a dry run)."""
    return "cpu" if dry_run() else "cuda"


def no_cuda_reason() -> str | None:
    """Why torch cannot use a CUDA device here, or None when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    built = torch.version.cuda
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (f"torch {torch.__version__} sees no CUDA device"
            + (f" (it is built for CUDA {built}" if built else " (it is a CPU-only build")
            + (f"; CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ")"))


def configure(name: str) -> None:
    """Fix this run's device (see the module docstring); exits with a message when it cannot."""
    if name not in DEVICES:
        raise SystemExit(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not dry_run():
        reason = no_cuda_reason()
        if reason:
            raise SystemExit(f"--device cuda: {reason}. Run it on a machine with an NVIDIA GPU "
                             "and a CUDA build of torch (benchmarks/gpu_check.sh), or leave --device out.")
    elif name == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ[ENV] = name


def groups(default: tuple[str, ...]) -> tuple[str, ...]:
    return GPU_GROUPS if is_cuda() else default


def results_path(default: Path) -> Path:
    if dry_run():
        return default.parent / "out" / "RESULTS-gpu-dry-run.md"
    return RESULTS_GPU if is_cuda() else default


def raw_name(quick: bool) -> str:
    """The file (under benchmarks/out) that keeps this device's raw records."""
    prefix = ("gpu-dry-run-" if dry_run() else "gpu-") if is_cuda() else ""
    return prefix + ("quick.json" if quick else "full.json")


def budgeted(rows: list, share: float) -> list:
    """The GPU rows share one process, whose limit is the sum of their ``timeout_s``: with
    ``REPSCOPE_BENCH_GPU_BUDGET_S`` set, a group gets ``share`` of it, spread over its rows, so
    that a slow run still ends in time with the rows it finished (the rest marked timed out)."""
    budget = os.environ.get(BUDGET_ENV)
    if budget:
        for row in rows:
            row.timeout_s = float(budget) * share / len(rows)
    return rows


# ---- timing on the device ----

def synchronize(device: str | None = None) -> None:
    if str(device or gpu()).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def synced(fn: Callable[[], Any], device: str | None = None) -> Callable[[], Any]:
    """``fn`` followed by a device synchronisation, so that wall time covers its kernels."""
    def call():
        result = fn()
        synchronize(device)
        return result
    return call


def best_seconds(fn: Callable[[], Any], device: str = "cuda", repeats: int = 10) -> float:
    """Fastest of ``repeats`` calls after two warm-ups; CUDA events on the GPU."""
    import torch

    for _ in range(2):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        if str(device).startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            fn()
            times.append(time.perf_counter() - begin)
    return min(times)


@contextlib.contextmanager
def precision(name: str, device: str | None = None):
    """Run the block in one arithmetic precision (torch's flags restored after).

    ``f32``: IEEE float32 GEMMs and convolutions (TF32 off); ``tf32``: TF32 tensor cores for
    both; ``default``: torch's defaults (float32 GEMMs, TF32 convolutions); ``bf16``/``fp16``:
    autocast to bfloat16 / float16 (float32 elsewhere, TF32 off).
    """
    import torch

    if name not in ("f32", "tf32", "default", "bf16", "fp16"):
        raise ValueError(f"unknown precision {name!r}")
    matmul, conv = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    if name != "default":
        torch.set_float32_matmul_precision("high" if name == "tf32" else "highest")
        torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        if name in ("bf16", "fp16"):
            dtype = torch.bfloat16 if name == "bf16" else torch.float16
            with torch.autocast(torch.device(device or gpu()).type, dtype=dtype):
                yield
        else:
            yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = conv


def matmul_rate(shape: tuple[int, int, int], kind: str = "f32", device: str = "cuda", repeats: int = 10) -> float:
    """Best flop/s of ``torch.mm`` (m x k) @ (k x n) into a preallocated output, in ``kind``
    (``f32``, ``tf32`` or ``bf16``: bfloat16 operands and output)."""
    import torch

    m, k, n = (int(s) for s in shape)
    dtype = torch.bfloat16 if kind == "bf16" else torch.float32
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(m, k, generator=generator, device=device).to(dtype)
    b = torch.randn(k, n, generator=generator, device=device).to(dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    with precision("tf32" if kind == "tf32" else "f32", device):
        seconds = best_seconds(lambda: torch.mm(a, b, out=out), device, repeats)
    return 2.0 * m * k * n / seconds


def roofline(device: str = "cuda", shapes=ROOFLINE_SHAPES, kinds=PRECISIONS, repeats: int = 10) -> dict:
    """The GEMM rates of this device: {"rates": {kind: [[m, k, n, flop/s], ...]}, "peak": {kind: flop/s}}."""
    rates = {kind: [[*shape, matmul_rate(shape, kind, device, repeats)] for shape in shapes] for kind in kinds}
    return {"rates": rates, "peak": {kind: max(row[3] for row in rows) for kind, rows in rates.items()}}


def f32_peak() -> float:
    """The device's float32 GEMM peak: the orchestrator's measurement, else measured here."""
    if os.environ.get(PEAK_ENV):
        return float(os.environ[PEAK_ENV])
    peak = matmul_rate((256, 256, 256) if dry_run() else ROOFLINE_SHAPES[0], "f32", gpu())
    os.environ[PEAK_ENV] = repr(peak)
    return peak


def machine_extra() -> dict:
    """The GPU and its roofline for the results header ({} on the CPU); shares the f32 peak."""
    if not is_cuda():
        return {}
    import torch

    if dry_run():
        measured = roofline("cpu", shapes=((256, 256, 256),), repeats=2)
        os.environ[PEAK_ENV] = repr(measured["peak"]["f32"])
        return {"gpu": {"name": f"none: a dry run on the CPU ({DRY_RUN_ENV}=1)", "memory_gib": 0,
                        "capability": "-", "multiprocessors": 0, "cuda": None, "cudnn": None},
                "roofline": measured}
    props = torch.cuda.get_device_properties(0)
    info = {"name": props.name, "memory_gib": props.total_memory / 2**30,
            "capability": f"{props.major}.{props.minor}", "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    measured = roofline()
    os.environ[PEAK_ENV] = repr(measured["peak"]["f32"])
    torch.cuda.empty_cache()
    return {"gpu": info, "roofline": measured}


def reset_memory() -> None:
    if gpu() == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def memory_notes() -> list[str]:
    """The GPU's peak allocated memory since ``reset_memory`` (nothing in a dry run)."""
    if gpu() != "cuda":
        return []
    import torch

    return [f"GPU peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"]


# ---- judging and the results page ----

def gemm_fraction(record: dict) -> float | None:
    gemm, rep = record.get("gemm"), record.get("repscope")
    return gemm["seconds"] / rep["median"] if gemm and rep else None


def judge(record: dict) -> str:
    """Issue 20's GPU targets. ``gpu-kernel``: >= GPU_TARGET of the device's float32 GEMM peak;
    ``gpu-latency:<s>``: at most that many seconds a call; ``gpu-variant`` (a faster precision):
    only its agreement. Every kind also needs its answers within the row's tolerance (a variant
    that leaves it is not to be used)."""
    kind = record.get("target_kind")
    if record.get("error") or "repscope" not in record:
        return "missed: not measured"
    why = []
    tolerance = record.get("tolerance", 1e-5)
    far = [name for name, value in record["agreement"].items() if value is None or value > tolerance]
    if far:
        why.append(f"differs from {', '.join(far)} by more than {tolerance:g}")
    fraction = gemm_fraction(record)
    if kind == "gpu-kernel":
        if fraction is None:
            why.append("GEMM work not measured")
        elif fraction < GPU_TARGET:
            why.append(f"{fraction:.2f} of the f32 peak < {GPU_TARGET}")
    if kind.startswith("gpu-latency:"):
        limit, seconds = float(kind.split(":")[1]), record["repscope"]["median"]
        if seconds > limit:
            why.append(f"{seconds:.2f} s > {limit:g} s")
    if kind == "gpu-variant" and far:
        return "missed: not within tolerance, keep float32 (" + "; ".join(why) + ")"
    return "met" if not why else "missed: " + "; ".join(why)


def render_all(machine: dict, records: list[dict], quick: bool) -> str:
    """RESULTS-gpu.md: the GPU, its roofline, the targets, one table per group."""
    from benchmarks import harness

    gpu, roof = machine["gpu"], machine["roofline"]
    lines = [
        "# RepScope benchmarks on a GPU",
        "",
        f"Generated by `python -m benchmarks --device cuda{' --quick' if quick else ''}` "
        "(`make bench ARGS=\"--device cuda\"`, or benchmarks/gpu_check.sh); do not edit by hand.",
        "",
        f"- Date: {machine['date']}" + (f"; run took {machine['elapsed_s']:.0f} s" if "elapsed_s" in machine else ""),
        f"- GPU: {gpu['name']}, {gpu['memory_gib']:.0f} GiB, compute capability {gpu['capability']}, "
        f"{gpu['multiprocessors']} SMs; torch {machine['torch']} (CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']})",
        f"- Host: {machine['cpu']}, {machine['cores']} cores; load average {machine['load_before']} before",
        "",
        "## GEMM roofline (this GPU, `torch.mm` into a preallocated output, fastest of 10 calls by CUDA events)",
        "",
        "| shape m x k x n | " + " | ".join(f"{k} TFLOP/s" for k in roof["rates"]) + " |",
        "|---|" + "---|" * len(roof["rates"]),
    ]
    shapes = [tuple(row[:3]) for row in next(iter(roof["rates"].values()))]
    for i, (m, k, n) in enumerate(shapes):
        lines.append(f"| {m} x {k} x {n} | " + " | ".join(f"{rows[i][3] / 1e12:.3g}" for rows in roof["rates"].values()) + " |")
    lines += [
        "",
        "Peak (best shape): " + ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in roof["peak"].items()) + ".",
        "",
        "Times: median of n calls after a warm-up, ± half the range; every call returns host results",
        "(numpy) or ends with `torch.cuda.synchronize()`, so the wall time covers the GPU's work.",
        "GEMM frac = (the row's GEMM flops / the float32 peak above) / RepScope time; issue 20's target",
        f"for RDM and CKA-family kernels at N >= 10,000 is >= {GPU_TARGET}. Rows in TF32 or bfloat16 are",
        "judged only on agreement with the float32 answer of the same run: a precision whose answers",
        "leave the tolerance is not to be used. Agreement = max |difference| (activations: relative",
        "to the layer's largest value). Peak mem = host memory; GPU memory is in the notes. The rows",
        "share one process (one CUDA context); in a time-bounded run (gpu_check.sh) rows it did not",
        "reach say so.",
        "",
    ]
    summary = harness.render_summary(records, ", on the GPU", rules=())
    text = "\n".join(lines) + "\n" + summary + "\n".join(
        harness.render_group(g, [r for r in records if r["group"] == g]) for g in GPU_GROUPS
        if any(r["group"] == g for r in records))
    return text + "\nMisses are explained, with their measured reasons, in benchmarks/MISSED.md.\n"
