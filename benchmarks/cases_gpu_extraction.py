"""Extraction on the GPU: RepScope's extract (every default layer, unpooled, channels_last)
against a bare forward pass in the same precision, and each faster precision against the
strict float32 activations of the same run.

Precisions: ``f32`` (TF32 off), ``default`` (torch's defaults: TF32 convolutions: what a user
gets), ``amp`` (``extract(amp=True)``: float16 autocast) and ``bf16`` (bfloat16 autocast).
The model is on the GPU; the images stay on the host, as a stimulus set does.
"""
from __future__ import annotations

import numpy as np

from benchmarks import device, peers
from benchmarks.cases_layer_grid import default_layers, images, resnet18
from benchmarks.harness import Case, Prepared

N, QUICK_N = 10000, 128
BATCH = 256  # extract's default batch size; the bare passes use the same
KINDS = ("f32", "default", "amp", "bf16")
TOLERANCE = {"f32": 1e-4, "default": 1e-2, "amp": 1e-2, "bf16": 1e-2}  # relative to each layer's range


def relative_diff(acts: dict, reference: dict) -> float:
    """max over layers of max |a - b| / max |b|."""
    return max(float(np.max(np.abs(acts[k] - reference[k])) / max(float(np.max(np.abs(reference[k]))), 1e-30))
               for k in reference)


def in_precision(kind: str):
    """The context a ``kind`` runs in (``amp`` is extract's own option, under torch's defaults)."""
    return device.precision("default" if kind == "amp" else kind)


def extract_on_gpu(model, x, layers, kind: str) -> dict:
    from compute.sources.activations import extract

    with in_precision(kind):
        return extract(model, x, layers, batch_size=BATCH, device=device.gpu(), amp=kind == "amp")


def float64_reference(model, x, layers) -> dict:
    """The same extraction in float64 on the GPU (untimed; rounded to float32 by extract)."""
    import copy

    from compute.sources.activations import extract

    return extract(copy.deepcopy(model).double(), x.double(), layers, batch_size=BATCH, device=device.gpu())


def extraction_row(kind: str, n: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        model = resnet18(0).to(device.gpu())
        x = images(n)
        layers = default_layers(model)
        device.reset_memory()

        def bare(channels_last: bool):
            def call():
                with in_precision("fp16" if kind == "amp" else kind):
                    return peers.bare_forward(model, x, BATCH, channels_last=channels_last, device=device.gpu())
            return call

        def after(result, peer_results):
            notes = device.memory_notes()
            if kind == "f32":
                agreement = {"float64 (GPU)": relative_diff(result, float64_reference(model, x, layers))}
            else:
                agreement = {f"float32 activations ({kind} vs f32)":
                             relative_diff(result, extract_on_gpu(model, x, layers, "f32"))}
            return {"notes": notes, "agreement": agreement}

        return Prepared(
            repscope=lambda: extract_on_gpu(model, x, layers, kind),
            peers={"bare forward, channels_last": bare(True), "bare forward": bare(False)},
            after=after,
            notes=[f"{len(layers)} default layers, {n} images 3x64x64 on the host, batch {BATCH}"],
        )

    return Case("gpu_extraction", f"resnet18 N={n}, {kind}", prepare,
                ("bare forward, channels_last", "bare forward"),
                target=None if kind == "f32" else "gpu-variant",
                tolerance=TOLERANCE[kind], timeout_s=300, items=n)


def cases(quick: bool) -> list[Case]:
    return device.budgeted([extraction_row(kind, QUICK_N if quick else N) for kind in KINDS], 0.2)

