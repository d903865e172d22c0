"""On CUDA nothing silently runs on the CPU (issue 20).

A ``TorchDispatchMode`` sees every torch operation while RepScope computes on the GPU: an RDM,
similarities of the CKA and CCA families, a layer grid from extraction, permutation nulls. An
operation that computes a host tensor of more than ``SMALL`` elements from host inputs fails
the test (views of host inputs are not computations). Copies from the GPU to the host are
transfers, recorded apart: the answers must come home, and the CCA family factorises its
D x D matrices in float64 LAPACK on the host by design, so each case bounds what may come back
(never an N x D or N x N matrix that is not the answer). numpy work on the host is invisible
to the mode: the transfer bounds are what keep it to D x D sizes.

Skipped without a CUDA device; benchmarks/gpu_check.sh fails when any CUDA test skips.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import compute
from compute.measures.nulls import activation_null, grid_null
from compute.sources.activations import extract

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL = 64  # elements: a host scalar, a shape or a few indices are not a fallback
DEVICE = "cuda"


class DeviceLog(TorchDispatchMode):
    """Records host computations and GPU-to-host transfers of more than SMALL elements."""

    def __init__(self):
        super().__init__()
        self.host_ops: list[tuple[str, tuple]] = []
        self.to_host: list[tuple[str, tuple]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu" or tensor.numel() <= SMALL:
                continue
            if any(t.device.type != "cpu" for t in inputs):
                self.to_host.append((str(func), tuple(tensor.shape)))
            elif not func.is_view:
                self.host_ops.append((str(func), tuple(tensor.shape)))
        return out

    def check(self, largest: int | None = None, total: int | None = None) -> None:
        """No host computation; each transfer at most ``largest`` elements, all at most ``total``."""
        assert not self.host_ops, f"torch ops computed on the CPU: {self.host_ops[:10]}"
        sizes = [int(np.prod(shape)) for _, shape in self.to_host]
        if largest is not None:
            too_big = [t for t, size in zip(self.to_host, sizes) if size > largest]
            assert not too_big, f"copied to the host, over {largest} elements each: {too_big[:10]}"
        if total is not None:
            assert sum(sizes) <= total, f"{sum(sizes)} elements copied to the host (at most {total}): {self.to_host[:10]}"


def _pair(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X, (X @ rng.standard_normal((d, d)) + rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("method", ["correlation", "euclidean", "spearman"])
def test_cuda_rdm_computes_on_the_gpu(method):
    n = 300
    X, _ = _pair(n, 40)
    with DeviceLog() as log:
        ours = compute.rdm(X, method, condensed=True, device=DEVICE)
    # The answer itself comes home (blocks of the upper triangle), with a few per-row numbers.
    log.check(total=n * n + 4 * n)
    reference = compute.rdm(X, method, condensed=True, device="cpu")
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("measure", ["cka_linear", "cka_debiased", "cka_rbf", "rv2", "dcor",
                                     "cca_mean", "svcca", "pwcca", "procrustes"])
def test_cuda_similarity_computes_on_the_gpu(measure):
    n, d = 400, 32  # N > D: the host may see D x D matrices, never N x D nor N x N
    X, Y = _pair(n, d)
    with DeviceLog() as log:
        ours = compute.similarity(X, Y, measure=measure, device=DEVICE)
    log.check(largest=d * d)
    tolerance = 1e-2 if measure == "pwcca" else 1e-5  # PWCCA: singular-vector signs (see its docs)
    assert abs(ours - compute.similarity(X, Y, measure=measure, device="cpu")) < tolerance


def test_cuda_layer_grid_with_extraction_computes_on_the_gpu(monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, as the CPU's
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()  # on the host, as a job loads it
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    layers = ["layer1", "layer2", "layer3", "layer4", "avgpool"]
    with DeviceLog() as log:
        acts = extract(model, images, layers, device=DEVICE)
    log.check()  # the activations (and the weights, back to the host) are transfers: any size
    with DeviceLog() as log:
        grid = compute.layer_grid(acts, acts, measure="cka_linear", device=DEVICE)
    log.check(largest=64 * 64)  # N x N at most: no layer's N x D activations come back
    on_cpu = extract(model, images, layers, device="cpu")
    np.testing.assert_allclose(grid, compute.layer_grid(on_cpu, on_cpu, measure="cka_linear", device="cpu"), atol=1e-4)


@pytest.mark.parametrize("measure", ["cka_linear", "cca_mean"])
def test_cuda_permutation_nulls_compute_on_the_gpu(measure):
    n, d, n_perm = 800, 16, 10  # N x D (12,800) is more than any bound below
    X, Y = _pair(n, d)
    with DeviceLog() as log:
        estimate, null = activation_null(X, Y, measure, n_perm=n_perm, device=DEVICE)
    log.check(largest=2 * n_perm * d * d)  # per permutation at most a D x D cross product
    cpu_estimate, cpu_null = activation_null(X, Y, measure, n_perm=n_perm, device="cpu")
    assert abs(estimate - cpu_estimate) < 1e-5
    np.testing.assert_allclose(null, cpu_null, atol=1e-5)
    acts = {"a": X, "b": Y}
    with DeviceLog() as log:
        result = grid_null(acts, acts, measure, n_perm=n_perm, device=DEVICE)
    log.check(largest=n_perm * 4 * d * d)
    assert result.null.shape == (2, 2, n_perm)
