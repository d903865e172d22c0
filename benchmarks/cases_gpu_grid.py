"""Layer grids on the GPU: the 5 x 5 linear-CKA grid of two random-init resnet18 at
N = 10,000 stimuli, extraction included (issue 20: <= 10 s), in torch's default precision and
with bfloat16 extraction (each against the strict float32 pipeline of the same run); the grid
alone on activations already on the device; and a grid's permutation null.
"""
from __future__ import annotations

import numpy as np

from benchmarks import device
from benchmarks.cases_gpu_extraction import extract_on_gpu
from benchmarks.cases_layer_grid import default_layers, images, resnet18
from benchmarks.harness import Case, Prepared

N, QUICK_N = 10000, 128
NULL_N, NULL_PERMS = 2000, 100
LATENCY_S = 10.0
TOLERANCE = 1e-3  # on CKA values (in [0, 1])


def _models(n: int):
    model_a, model_b = resnet18(0).to(device.gpu()), resnet18(1).to(device.gpu())
    return model_a, model_b, images(n), default_layers(model_a), default_layers(model_b)


def pipeline_row(kind: str, n: int) -> Case:
    """extract both networks (on the host's images) + layer_grid, as a layer-grid job runs."""
    def prepare(quick: bool) -> Prepared:
        import compute

        model_a, model_b, x, layers_a, layers_b = _models(n)

        def run(precision: str):
            acts_a = extract_on_gpu(model_a, x, layers_a, precision)
            acts_b = extract_on_gpu(model_b, x, layers_b, precision)
            return compute.layer_grid(acts_a, acts_b, measure="cka_linear", device=device.gpu())

        def after(result, peer_results):
            return {"agreement": {f"float32 pipeline ({kind} vs f32)": float(np.max(np.abs(result - run("f32"))))}}

        return Prepared(repscope=lambda: run(kind), after=after,
                        notes=[f"{len(layers_a)} x {len(layers_b)} default layers, unpooled; extraction in {kind}"])

    return Case("gpu_grid", f"cka_linear 5 x 5, extract + layer_grid, N={n}, {kind}", prepare,
                target=f"gpu-latency:{LATENCY_S:g}" if kind == "default" else "gpu-variant",
                tolerance=TOLERANCE, timeout_s=600)


def _on_gpu(acts: dict) -> dict:
    import torch

    return {name: torch.from_numpy(a).to(device.gpu()) for name, a in acts.items()}


def grid_only_row(n: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        import compute

        model_a, model_b, x, layers_a, layers_b = _models(n)
        acts_a = _on_gpu(extract_on_gpu(model_a, x, layers_a, "f32"))
        acts_b = _on_gpu(extract_on_gpu(model_b, x, layers_b, "f32"))
        widths = [a.shape[1] for a in list(acts_a.values()) + list(acts_b.values())]
        # One N x N Gram per layer (or its feature-space product when narrower), then all pairs.
        flops = sum(2.0 * n * min(n * w, w * w) for w in widths) + 2.0 * len(acts_a) * len(acts_b) * n * n
        del model_a, model_b

        def after(result, peer_results):
            reference = compute.layer_grid(acts_a, acts_b, measure="cka_linear", dtype=np.float64, device=device.gpu())
            return {"agreement": {"float64 (GPU)": float(np.max(np.abs(result - reference)))}}

        return Prepared(repscope=lambda: compute.layer_grid(acts_a, acts_b, measure="cka_linear", device=device.gpu()),
                        after=after, gemm=(flops, (n, max(widths), n)),
                        notes=[f"widths {min(widths)}-{max(widths)}, activations already on the GPU"])

    return Case("gpu_grid", f"cka_linear 5 x 5, layer_grid only, N={n}", prepare,
                target="gpu-kernel", tolerance=1e-5, timeout_s=600)


def null_row(n: int, n_perm: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        from compute.measures.nulls import grid_null

        model_a, model_b, x, layers_a, layers_b = _models(n)
        acts_a = _on_gpu(extract_on_gpu(model_a, x, layers_a, "f32"))
        acts_b = _on_gpu(extract_on_gpu(model_b, x, layers_b, "f32"))
        return Prepared(repscope=lambda: grid_null(acts_a, acts_b, "cka_linear", n_perm=n_perm, device=device.gpu()).null,
                        notes=[f"{n_perm} permutations of every cell"])

    return Case("gpu_grid", f"cka_linear 5 x 5 grid null, {n_perm} permutations, N={n}", prepare, timeout_s=600)


def cases(quick: bool) -> list[Case]:
    n = QUICK_N if quick else N
    rows = [pipeline_row("default", n), pipeline_row("bf16", n), grid_only_row(n),
            null_row(QUICK_N if quick else NULL_N, 20 if quick else NULL_PERMS)]
    return device.budgeted(rows, 0.35)
