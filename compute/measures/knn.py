"""The local-neighbourhood family: mutual k-NN, k-NN Jaccard and CKNNA (Huh et al. 2024).

Each compares two representations of the same N stimuli, X (N x D_x) and Y (N x D_y), by the
k nearest neighbours of every stimulus in each: a **similarity**, higher = more alike.
Neighbours are by cosine similarity of the stimuli's activation vectors (each row scaled to unit
norm, not centred: the platonic-rep code's default ``normalize=True``), a stimulus never being its
own neighbour, so ``k`` must be below N.

- ``mutual_knn``: the mean over stimuli of |N_X(i) & N_Y(i)| / k, in [0, 1].
- ``jaccard_knn``: the mean over stimuli of |N_X(i) & N_Y(i)| / |N_X(i) | N_Y(i)|, in [0, 1].
- ``cknna``: the paper's centred kernel nearest-neighbour alignment (Huh et al. 2024, appendix):
  Align(K, L) = sum over pairs (i, j), j != i a neighbour of i in both, of
  (K_ij - mean_l K_il)(L_ij - mean_l L_il), with K, L the cosine kernels and the means over all N
  stimuli; CKNNA = Align(K, L) / sqrt(Align(K, K) Align(L, L)), in [-1, 1] by Cauchy-Schwarz
  (Align(K, K) sums over X's own neighbours). Symmetric. The platonic-rep code computes instead
  the unbiased HSIC of the masked kernels, which is neither symmetric nor bounded; we follow the
  paper's formula.

**Ties** between candidate neighbours (equal cosine similarity, e.g. duplicate stimuli) go to the
lower stimulus index, so the neighbour sets are deterministic. A stimulus whose activations are
all zero has cosine similarity 0 with every other (its neighbours are then the lowest indices
among those tied at 0).

A layer is prepared once: its neighbours' indices (N x k, ascending) and kernel values, found
from (row block x N) blocks of its cosine Gram matrix with ``topk`` on its device; the N x N
matrix is never held whole. A pair is then O(N k log k).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Rows of the cosine Gram matrix formed at once: (block x N) entries, 256 MiB of float32 at N = 16,384.
_BLOCK_ENTRIES = 1 << 26


def check_k(k, n: int) -> int:
    """``k`` as an int, refused unless 1 <= k < N (a stimulus has N - 1 others)."""
    if not (float(k).is_integer() and k >= 1):
        raise ValueError(f"k must be a positive whole number of neighbours, got {k!r}")
    if k >= n:
        raise ValueError(
            f"k={int(k)} neighbours needs more than {int(k)} stimuli (each stimulus has N - 1 = {n - 1} "
            "others); use a smaller k or more stimuli"
        )
    return int(k)


@dataclass
class _Neighbours:
    """One layer's k nearest neighbours: ``index`` (N x k, int64, ascending in each row),
    ``kernel`` (N x k, float64) the centred cosine similarity K_ij - mean_l K_il at those
    neighbours, and ``self_align`` = Align(K, K) (cknna)."""

    index: torch.Tensor
    kernel: torch.Tensor
    self_align: float = 0.0


def _select(S: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of each row's k largest entries, ties going to the lower column index."""
    threshold = torch.topk(S, k, dim=1).values[:, -1:]
    above = S > threshold
    tied = S == threshold
    missing = k - above.sum(dim=1, keepdim=True)
    return above | (tied & (tied.cumsum(dim=1) <= missing))


def prepare_knn(X: torch.Tensor, measure: str, options: dict) -> _Neighbours:
    """One layer X (N x D): its k nearest neighbours by cosine similarity, self excluded."""
    n = X.shape[0]
    k = check_k(options["k"], n)
    norms = torch.linalg.vector_norm(X, dim=1, keepdim=True, dtype=torch.float64)
    F = X / torch.where(norms > 0, norms, 1.0).to(X.dtype)
    row_means = (F @ F.mean(dim=0, dtype=torch.float64).to(F.dtype)).to(torch.float64)  # mean_l K_il
    block = max(1, _BLOCK_ENTRIES // n)
    index, kernel = [], []
    for start in range(0, n, block):
        S = F[start:start + block] @ F.T
        rows = torch.arange(S.shape[0], device=S.device)
        S[rows, rows + start] = -math.inf  # never one's own neighbour
        mask = _select(S, k)
        cols = mask.nonzero()[:, 1].reshape(-1, k)  # row-major: ascending columns per row
        index.append(cols)
        kernel.append(S.gather(1, cols).to(torch.float64) - row_means[start:start + block, None])
    state = _Neighbours(torch.cat(index), torch.cat(kernel))
    if measure == "cknna":
        state.self_align = float(state.kernel.square().sum())
        if not state.self_align > 0:
            raise ValueError(
                "cknna is undefined here: every stimulus is exactly as similar to its neighbours as "
                "to the average stimulus (no variance in the kernel); use another measure"
            )
    return state


def _shared(a: _Neighbours, b: _Neighbours) -> tuple[torch.Tensor, torch.Tensor]:
    """(found, position): for each of a's neighbours, whether it is among b's neighbours of the
    same stimulus, and where in b's row (valid where found)."""
    position = torch.searchsorted(b.index, a.index).clamp_(max=b.index.shape[1] - 1)
    return b.index.gather(1, position) == a.index, position


def pair_knn(measure: str, a: _Neighbours, b: _Neighbours, options: dict) -> float:
    """The neighbourhood similarity of two prepared layers."""
    found, position = _shared(a, b)
    k = a.index.shape[1]
    if measure == "mutual_knn":
        return float(found.sum(dtype=torch.float64)) / found.numel()
    if measure == "jaccard_knn":
        shared = found.sum(dim=1, dtype=torch.float64)
        return float((shared / (2 * k - shared)).mean())
    align = (a.kernel * b.kernel.gather(1, position))[found].sum()
    return float(align) / math.sqrt(a.self_align * b.self_align)
