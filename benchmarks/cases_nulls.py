"""Permutation nulls of a layer grid (issue 18): 1000 permutations of a resnet18 x resnet18 grid of
default layers at N = 512, against the time of the grid itself (target: within 20x).

The peer row is RepScope's own grid without its null, on the same activations; scipy's
``permutation_test`` on one cell (a loop over permutations, as a user would write it) shows what
batching buys, scaled to the grid's cell count in the notes.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.cases_layer_grid import default_layers, images, resnet18
from benchmarks.harness import Case, Prepared


def grid_null_case(measure: str, n: int, n_perm: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        import compute
        from compute.sources.activations import extract

        model_a, model_b = resnet18(0), resnet18(1)
        x = images(n)
        acts_a = extract(model_a, x, default_layers(model_a))
        acts_b = extract(model_b, x, default_layers(model_b))
        cells = len(acts_a) * len(acts_b)
        notes = [f"{len(acts_a)} x {len(acts_b)} default layers, {n_perm} permutations of the stimuli"]
        first_a, first_b = next(iter(acts_a.values())), next(iter(acts_b.values()))
        loop_perms = 20  # one cell, a Python loop over permutations: the unbatched way
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(loop_perms):
            compute.similarity(first_a, first_b[rng.permutation(n)], measure)
        per_perm = (time.perf_counter() - start) / loop_perms
        notes.append(f"a loop of compute.similarity per permutation would take ~{per_perm * n_perm * cells:.0f} s "
                     f"for the grid ({per_perm * 1e3:.1f} ms a permutation and cell)")

        def agree(result, name, peer_result):
            return np.asarray(result.values) - np.asarray(peer_result)

        return Prepared(
            repscope=lambda: compute.layer_grid(acts_a, acts_b, measure=measure, null=n_perm),
            peers={"grid without null": lambda: compute.layer_grid(acts_a, acts_b, measure=measure)},
            notes=notes, agree=agree)

    return Case("nulls", f"{measure} grid with a {n_perm}-permutation null, N={n}", prepare,
                ("grid without null",), target="ratio:20", tolerance=1e-6, timeout_s=1800)


def cases(quick: bool) -> list[Case]:
    return [grid_null_case("cka_linear", 64 if quick else 512, 100 if quick else 1000)]
