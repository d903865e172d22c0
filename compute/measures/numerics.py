"""The measures' shared numerics on float32 data: float64 sums of float32 GEMMs, centring, and
the host's BLAS thread policy.

Data are held in ``dtype`` (float32 by default) on ``device``; every long reduction (over
stimuli, features or Gram entries) is accumulated in float64 by summing float32 GEMMs over row
blocks, and the small (D x D or N x N) linear algebra after it runs in float64. On the CPU the
elementwise passes between the GEMMs run in numpy, in one thread: torch's two-thread passes
stall on a machine whose cores other processes share (see ``rdm``).

numpy's and scipy's OpenBLAS keep their worker threads spinning for a while after each call.
Interleaved with torch's own threads (which run the GEMMs) on a machine with few cores, each
library's threads then wait for the other's: on this project's 2-core machine a 1.5 ms torch
GEMM took 16 ms right after a scipy ``eigh``, and a 256 x 256 triangular solve took 8 ms on two
OpenBLAS threads and 1 ms on one. The measures' host linear algebra is small (D x D), so it runs
on one OpenBLAS thread (``one_blas_thread``); torch's GEMMs (MKL / OpenMP) are not affected.
Small host products (``_CALLING_THREAD_WORK``) run there too, in numpy: a problem of a few
milliseconds then never waits for a second thread.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch

# Rows per block of a float32 GEMM whose partial sums are added in float64.
_ROW_BLOCK = 4096
# Above this many (block x Da x Db) partial-product entries, loop over blocks instead of batching.
_BATCHED_ELEMENTS = 1 << 22
# Least multiply-adds per GEMM call of a symmetric product split into column blocks.
_SELF_BLOCK_WORK = 1 << 28
# Rows per float32 partial sum of a column mean (then added in float64): cache-sized blocks.
_MEAN_BLOCK = 256
# Host products of at most this many multiply-adds (or 4x as many into an output of at most
# _SKINNY_OUTPUT entries) run in numpy on the calling thread (one OpenBLAS thread), not on
# torch's two: a two-thread call waits for both threads, which costs a scheduler time slice
# whenever another process holds a core, and torch's MKL took 20-30 ms for a 64 x 4096 x 64
# product that one OpenBLAS thread did in 0.4 ms. Above it two threads win on an idle machine
# (1000 x 256 x 256: 0.8 ms on torch's two, 1.5 ms on one).
_CALLING_THREAD_WORK = 1 << 25
_SKINNY_OUTPUT = 1 << 14


@lru_cache(maxsize=1)
def _controller():
    import scipy.linalg  # noqa: F401  scipy's own OpenBLAS must be loaded to be found
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_HELD = {"depth": 0, "limiter": None}
_HELD_LOCK = threading.Lock()


@contextmanager
def one_blas_thread():
    """Context manager: numpy's and scipy's BLAS/LAPACK on one thread (process-wide while inside).

    Reentrant and shared between threads: the limit is set by the first to enter and lifted by
    the last to leave (a nested entry costs nothing; setting the limit costs ~40 us)."""
    with _HELD_LOCK:
        if _HELD["depth"] == 0:
            _HELD["limiter"] = _controller().limit(limits=1, user_api="blas")
        _HELD["depth"] += 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            _HELD["depth"] -= 1
            if _HELD["depth"] == 0:
                _HELD["limiter"].restore_original_limits()
                _HELD["limiter"] = None


def _host_crossprod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` (float64) of host arrays on one OpenBLAS thread; float32 ones as GEMMs over
    blocks of ``_ROW_BLOCK`` rows, their results added in float64."""
    out = None
    with one_blas_thread():
        if a.dtype == np.float64 and b.dtype == np.float64:
            return a.T @ b
        for start in range(0, a.shape[0], _ROW_BLOCK):
            part = a[start:start + _ROW_BLOCK].T @ b[start:start + _ROW_BLOCK]
            if out is None:
                out = part.astype(np.float64)
            else:
                out += part
    return out


def column_means(values: np.ndarray) -> np.ndarray:
    """Float64 column means of a host array in one thread; float32 data are summed in float32
    over blocks of ``_MEAN_BLOCK`` rows and the block sums added in float64 (5x faster than
    numpy's float64-cast mean at 10,000 x 512, error ~1e-7 relative)."""
    if values.dtype != np.float32:
        return values.mean(0, dtype=np.float64)
    total = np.zeros(values.shape[1])
    for start in range(0, values.shape[0], _MEAN_BLOCK):
        total += values[start:start + _MEAN_BLOCK].sum(0)
    return total / values.shape[0]


def crossprod_float64(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A.T @ B`` (R's ``crossprod``: a reduction over the rows) as float64, from GEMMs over
    blocks of rows.

    A (N x Da) and B (N x Db) share their rows; the result is (Da x Db) float64, on their device.
    float32 GEMMs accumulate in float32; summing their block results in float64 keeps long
    reductions (N up to 1e5, N^2 Gram entries) at float32-GEMM accuracy per block only.
    """
    rows, blocks = A.shape[0], A.shape[0] // _ROW_BLOCK
    host = A.device.type == "cpu"
    outputs = A.shape[1] * B.shape[1]
    if host and rows * outputs <= _CALLING_THREAD_WORK * (4 if outputs <= _SKINNY_OUTPUT else 1):
        return torch.from_numpy(_host_crossprod(A.numpy(), B.numpy()))
    if A.dtype == torch.float64 and B.dtype == torch.float64:
        return A.T @ B
    if blocks > 1 and blocks * A.shape[1] * B.shape[1] <= _BATCHED_ELEMENTS:
        # Skinny operands (flattened Gram matrices): one batched GEMM instead of a Python loop.
        whole = blocks * _ROW_BLOCK
        parts = torch.bmm(
            A[:whole].reshape(blocks, _ROW_BLOCK, -1).transpose(1, 2),
            B[:whole].reshape(blocks, _ROW_BLOCK, -1),
        )
        out = parts.numpy().sum(0, dtype=np.float64) if host else parts.sum(dim=0, dtype=torch.float64)
        starts = range(whole, rows, _ROW_BLOCK)
    else:
        out, starts = None, range(0, rows, _ROW_BLOCK)
    for start in starts:
        part = A[start:start + _ROW_BLOCK].T @ B[start:start + _ROW_BLOCK]
        part = part.numpy().astype(np.float64) if host else part.to(torch.float64)
        if out is None:
            out = part
        else:
            out += part
    return torch.from_numpy(out) if host else out


def crossprod(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A.T @ B`` in the operands' dtype: one GEMM when the rows fit one block, else
    ``crossprod_float64`` rounded back (so long reductions still add their blocks in float64)."""
    if A.shape[0] <= _ROW_BLOCK:
        return A.T @ B
    return crossprod_float64(A, B).to(A.dtype)


def gram_float64(F: torch.Tensor) -> torch.Tensor:
    """``F.T @ F`` (D x D, float64, for F of N x D) from the column blocks on and above the
    diagonal of the product.

    At most 8 blocks (9/16 of the full GEMM's work), each GEMM call at least N x 128 x D and
    ``_SELF_BLOCK_WORK`` multiply-adds: on a shared machine every call waits for both threads,
    and four calls at N = 2,000, D = 512 took longer than the one full product.
    """
    n, d = F.shape
    width = max(128, -(-d // 8), -(-_SELF_BLOCK_WORK // max(n * d, 1)))
    if width >= d:
        return crossprod_float64(F, F)
    G = torch.empty((d, d), dtype=torch.float64, device=F.device)
    for start in range(0, d, width):
        stop = min(start + width, d)
        block = crossprod_float64(F[:, start:stop], F[:, start:])
        G[start:stop, start:] = block
        G[stop:, start:stop] = block[:, stop - start:].T
    return G


def centre_columns(X: torch.Tensor, return_mean: bool = False):
    """X (N x D) minus each feature's mean over the N stimuli, in X's dtype; with
    ``return_mean``, also the (D,) float64 means as a numpy array."""
    if X.device.type == "cpu":
        values = X.numpy()
        mean = column_means(values)
        centred = torch.from_numpy(values - mean.astype(values.dtype))
    else:
        mean = X.mean(dim=0, dtype=torch.float64)
        centred = X - mean.to(X.dtype)
        mean = mean.cpu().numpy()
    return (centred, mean) if return_mean else centred
