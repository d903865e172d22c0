"""Layer x layer CKA of two random-init resnet18: RepScope (extract + layer_grid) vs torch-cka."""
from __future__ import annotations

import numpy as np

from benchmarks import peers
from benchmarks.harness import Case, Prepared, best_seconds


def images(n: int, size: int = 64, seed: int = 0):
    import torch

    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def resnet18(seed: int):
    import torch
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).eval()


def default_layers(model) -> list[str]:
    from compute.sources.layers import list_layers

    return [info.name for info in list_layers(model) if info.default]


def _grid_sizes(acts: dict) -> tuple[int, list[int]]:
    arrays = [np.asarray(a) for a in acts.values()]
    return arrays[0].shape[0], [int(np.prod(a.shape[1:])) for a in arrays]


def grid_case(measure: str, n: int, with_extraction: bool, peer: bool, times_of: str | None = None) -> Case:
    label = "extract + layer_grid" if with_extraction else "layer_grid only (activations given)"

    def prepare(quick: bool) -> Prepared:
        import compute
        from compute.sources.activations import extract

        layer_grid = compute.layer_grid
        model_a, model_b = resnet18(0), resnet18(1)
        x = images(n)
        layers_a, layers_b = default_layers(model_a), default_layers(model_b)
        notes = [f"{len(layers_a)} x {len(layers_b)} default layers"]
        if times_of:
            notes.append("torch-cka computes debiased CKA: its answers are compared on the row above")

        def extract_both():
            return extract(model_a, x, layers_a), extract(model_b, x, layers_b)

        gemm = None
        if with_extraction:
            def repscope():
                acts_a, acts_b = extract_both()
                return layer_grid(acts_a, acts_b, measure=measure)
        else:
            acts_a, acts_b = extract_both()
            _, widths_a = _grid_sizes(acts_a)
            _, widths_b = _grid_sizes(acts_b)
            notes.append(f"widths {min(widths_a)}-{max(widths_a)}")
            # One N x N Gram per layer (or a feature-space product when narrower), then all
            # pairs: an (L_A x N^2) @ (N^2 x L_B) product.
            per_layer = [2.0 * n * min(n * w, w * w) for w in widths_a + widths_b]
            gemm = (sum(per_layer) + 2.0 * len(widths_a) * len(widths_b) * n * n,
                    (n, max(widths_a + widths_b), n))

            def repscope():
                return layer_grid(acts_a, acts_b, measure=measure)

        peer_fns = {}
        after = None
        if peer:
            peer_fns["torch-cka"] = lambda: peers.torch_cka_grid(model_a, model_b, x, layers_a, layers_b, n)

            def after(result, peer_results):
                # torch-cka as shipped sums HSIC in float32; its float64 run shows whether a
                # disagreement is its rounding or ours. One untimed run.
                grid64 = peers.torch_cka_grid(model_a, model_b, x, layers_a, layers_b, n, double=True)
                return {"agreement": {"torch-cka float64 (untimed)": float(np.max(np.abs(result - grid64)))}}

        return Prepared(repscope=repscope, peers=peer_fns, notes=notes, after=after, gemm=gemm,
                        agree=lambda rep, name, res: rep - res)

    return Case(
        "layer_grid", f"{measure}, {label}, N={n}", prepare, ("torch-cka",) if peer else (),
        target="grid10" if peer or times_of else ("kernel" if not with_extraction else None),
        tolerance=1e-4, timeout_s=1200, reuse_peers=times_of, size=n,
        # torch-cka's time is the same forward passes (the extract rows' floor) plus its HSIC.
        floor_peers=("torch-cka",) if with_extraction else (),
    )


def encoding_case(n: int, folds: int = 5) -> Case:
    """ridge_r over a 5 x 5 self-grid of layers (widths 64 to 1,024), held to its floor: its GEMMs
    at the roofline plus the per-fold eigendecompositions of each layer's training Gram matrix
    (``encoding._factor_folds``: one float64 LAPACK call per layer and fold, one thread), timed in
    the same worker. Issue 17 asked for 3x RepScope's linear-CKA grid of the same layers, shown
    beside it for context: those eigendecompositions alone take longer than that."""
    widths = (64, 128, 256, 512, 1024)
    n_train = n - n // folds
    # Multiply-adds: per layer the fold Grams (N D^2) and each fold's held-out rotation (N D^2 in
    # all); per pair (2 N + folds D_x) D_x D_y (encoding's module docstring); two flops each.
    flops = 2.0 * (sum(2 * n * d * d for d in widths)
                   + sum((2 * n + folds * dx) * dx * dy for dx in widths for dy in widths))

    def prepare(quick: bool) -> Prepared:
        import compute

        rng = np.random.default_rng(0)
        latent = rng.standard_normal((n, 32))
        acts = {f"l{i}": (np.maximum(latent @ rng.standard_normal((32, d)) + rng.standard_normal((n, d)), 0)
                          ).astype(np.float32) for i, d in enumerate(widths)}
        return Prepared(
            repscope=lambda: compute.layer_grid(acts, acts, measure="ridge_r"),
            peers={"cka_linear-grid": lambda: compute.layer_grid(acts, acts, measure="cka_linear")},
            lapack=lambda: folds * sum(_eigh_seconds(min(d, n_train)) for d in widths),
            notes=[f"5 x 5 self-grid, widths {widths[0]}-{widths[-1]}, {folds} folds; the cka_linear-grid column is "
                   "RepScope's linear CKA on the same layers, for context (a different measure: no agreement)"])

    return Case("layer_grid", f"ridge_r 5 x 5 grid, N={n}", prepare, ("cka_linear-grid",),
                gemm=(flops, (n, widths[-1], widths[-1])), target="floor", size=n,
                context_peers=("cka_linear-grid",), timeout_s=1200)


def _eigh_seconds(d: int) -> float:
    """Fastest float64 eigendecomposition of a d x d Gram matrix, as ridge_r factorises a fold."""
    import scipy.linalg

    from compute.measures.numerics import one_blas_thread

    A = np.random.default_rng(0).standard_normal((2 * d, d))
    G = A.T @ A
    with one_blas_thread():
        return best_seconds(lambda: scipy.linalg.eigh(G, driver="evd", check_finite=False), max_repeats=5)


def cases(quick: bool) -> list[Case]:
    n = 64 if quick else 512
    first = grid_case("cka_debiased", n, with_extraction=True, peer=True)
    # torch-cka has no biased linear CKA: the time to beat is the same, the answers differ.
    second = grid_case("cka_linear", n, with_extraction=True, peer=False, times_of=first.name)
    # Quick: the second extract row repeats the first one's work (the grid is ~1 % of it).
    # Grids of few stimuli (N = 64: a page's small grids) are judged against their floor too.
    grids = [grid_case(measure, size, with_extraction=False, peer=False)
             for size in sorted({64, n}) for measure in ("cka_linear", "cka_debiased")]
    return [first] + ([] if quick else [second]) + grids + [encoding_case(200 if quick else 2000)]
