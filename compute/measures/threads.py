"""Host BLAS threads inside the measures.

numpy's and scipy's OpenBLAS keep their worker threads spinning for a while after each call.
Interleaved with torch's own threads (which run the GEMMs) on a machine with few cores, each
library's threads then wait for the other's: on this project's 2-core machine a 1.5 ms torch
GEMM took 16 ms right after a scipy ``eigh``, and a 256 x 256 triangular solve took 8 ms on two
OpenBLAS threads and 1 ms on one. The measures' host linear algebra is small (D x D), so it runs
on one OpenBLAS thread; torch's GEMMs (MKL / OpenMP) are not affected by the limit.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    import scipy.linalg  # noqa: F401  scipy's own OpenBLAS must be loaded to be found
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """Context manager: numpy's and scipy's BLAS/LAPACK on one thread (process-wide while inside)."""
    return _controller().limit(limits=1, user_api="blas")
