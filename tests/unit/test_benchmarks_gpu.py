"""The GPU benchmark plumbing where no GPU is: `--device cuda` stops at once with a reason, the
roofline and precision switches work on any device, and RESULTS-gpu.md judges issue 20's targets.

No wall-clock time is asserted. The GPU run itself is benchmarks/gpu_check.sh.
"""
from __future__ import annotations

import os

import pytest
import torch

from benchmarks import device, harness


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a CUDA device here")
def test_gpu_run_without_a_gpu_stops_at_once_with_the_reason(monkeypatch):
    monkeypatch.delenv(device.DRY_RUN_ENV, raising=False)
    monkeypatch.delenv(device.ENV, raising=False)
    with pytest.raises(SystemExit) as stopped:
        harness.main(["--device", "cuda"])
    message = str(stopped.value.code)
    assert message.startswith("--device cuda: torch ") and "sees no CUDA device" in message
    assert "gpu_check.sh" in message
    assert device.ENV not in os.environ  # nothing was set up for a run


def test_roofline_and_precisions_on_the_cpu():
    matmul = torch.get_float32_matmul_precision()
    with device.precision("tf32", "cpu"):
        assert torch.get_float32_matmul_precision() == "high"
    with device.precision("bf16", "cpu"):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    assert torch.get_float32_matmul_precision() == matmul
    measured = device.roofline("cpu", shapes=((64, 64, 64), (32, 64, 16)), repeats=2)
    assert set(measured["peak"]) == {"f32", "tf32", "bf16"}
    assert all(len(rows) == 2 and min(r[3] for r in rows) > 0 for rows in measured["rates"].values())


def _record(name: str, target: str, seconds: float, agreement: dict, flops: float | None = None) -> dict:
    record = {"group": "gpu_kernels", "name": name, "peers": {}, "agreement": agreement, "notes": [],
              "error": None, "target_kind": target, "tolerance": 1e-5,
              "repscope": {"median": seconds, "spread": 0.0, "n": 5, "samples": [seconds] * 5}}
    if flops is not None:
        record["gemm"] = {"flops": flops, "shape": [8, 8, 8], "rate": 1e12, "seconds": flops / 1e12}
    return record


def test_results_page_judges_the_gpu_targets():
    fast = _record("rdm correlation N=10000 D=2048", "gpu-kernel", 1.0, {"float64 (GPU)": 1e-7}, flops=6e11)
    slow = _record("cka_linear N=10000 D=2048", "gpu-kernel", 1.0, {"float64 (GPU)": 1e-7}, flops=2e11)
    loose = _record("rdm correlation N=10000 D=2048, tf32", "gpu-variant", 0.5, {"float32 answer": 3e-3})
    grid = _record("cka_linear 5 x 5, extract + layer_grid, N=10000, default", "gpu-latency:10", 12.0,
                   {"float32 pipeline": 1e-6})
    assert harness.judge(fast) == "met"
    assert harness.judge(slow) == "missed: 0.20 of the f32 peak < 0.5"
    assert harness.judge(loose).startswith("missed: not within tolerance, keep float32")
    assert harness.judge(grid) == "missed: 12.00 s > 10 s"
    grid["tolerance"] = 1e-3
    machine = {"date": "today", "torch": "2", "cpu": "cpu", "cores": 16, "load_before": "0",
               "gpu": {"name": "GPU", "memory_gib": 80, "capability": "9.0", "multiprocessors": 132,
                       "cuda": "12", "cudnn": 9},
               "roofline": {"rates": {"f32": [[8, 8, 8, 5e13]], "bf16": [[8, 8, 8, 7e14]]},
                            "peak": {"f32": 5e13, "bf16": 7e14}}}
    page = harness.render_all(machine, [fast, slow, loose, grid], quick=False)
    assert "| 8 x 8 x 8 | 50 | 700 |" in page and "(issue 20, on the GPU)" in page
    assert "1 of 4 rows with a target meet it." in page
    assert "## Kernels on the GPU" in page and "| rdm correlation N=10000 D=2048 | 1.00 s" in page
