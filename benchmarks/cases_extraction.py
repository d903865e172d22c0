"""Extraction: images/s of RepScope's extract (all default layers) vs a bare forward pass."""
from __future__ import annotations

from benchmarks import peers
from benchmarks.cases_layer_grid import default_layers, images, resnet18
from benchmarks.harness import Case, Prepared

BATCH = 256  # extract's default batch size; the bare passes use the same


def extraction_case(n: int, pooling: str) -> Case:
    def prepare(quick: bool) -> Prepared:
        from compute.sources.activations import extract

        model = resnet18(0)
        x = images(n)
        layers = default_layers(model)
        return Prepared(
            repscope=lambda: extract(model, x, layers, pooling=pooling, batch_size=BATCH),
            peers={
                "bare forward": lambda: peers.bare_forward(model, x, BATCH),
                "bare forward, channels_last": lambda: peers.bare_forward(model, x, BATCH, channels_last=True),
            },
            notes=[f"{len(layers)} default layers", f"{n} images 3x64x64, batch {BATCH}"],
        )

    return Case("extraction", f"resnet18 N={n}, pooling={pooling}", prepare,
                ("bare forward", "bare forward, channels_last"), target="extract", timeout_s=900,
                items=n)


def cases(quick: bool) -> list[Case]:
    n = 64 if quick else 512
    return [extraction_case(n, "none"), extraction_case(n, "avg")]
