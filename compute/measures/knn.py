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
matrix is never held whole. A pair is then O(N k log k). Permuting a layer's stimuli relabels its
neighbour sets (:func:`permuted`: an index map, no new Gram matrix), unless a tie at some
stimulus's k-th neighbour was broken by the stimuli's order (``ties``).
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
    neighbours, ``self_align`` = Align(K, K) (cknna) and ``ties``: whether a tie at some k-th
    neighbour was broken by the stimuli's order. :func:`permuted` adds a leading permutation
    axis to ``index`` and ``kernel``."""

    index: torch.Tensor
    kernel: torch.Tensor
    self_align: float = 0.0
    ties: bool = False


def _select(S: torch.Tensor, k: int) -> tuple[torch.Tensor, bool]:
    """(Boolean mask of each row's k largest entries, ties going to the lower column index;
    whether a tie was split between chosen and left-out entries)."""
    threshold = torch.topk(S, k, dim=1).values[:, -1:]
    above = S > threshold
    tied = S == threshold
    missing = k - above.sum(dim=1, keepdim=True)
    return above | (tied & (tied.cumsum(dim=1) <= missing)), bool((tied.sum(dim=1, keepdim=True) > missing).any())


def prepare_knn(X: torch.Tensor, measure: str, options: dict) -> _Neighbours:
    """One layer X (N x D): its k nearest neighbours by cosine similarity, self excluded."""
    n = X.shape[0]
    k = check_k(options["k"], n)
    norms = torch.linalg.vector_norm(X, dim=1, keepdim=True, dtype=torch.float64)
    F = X / torch.where(norms > 0, norms, 1.0).to(X.dtype)
    row_means = (F @ F.mean(dim=0, dtype=torch.float64).to(F.dtype)).to(torch.float64)  # mean_l K_il
    block = max(1, _BLOCK_ENTRIES // n)
    index, kernel, ties = [], [], False
    for start in range(0, n, block):
        S = F[start:start + block] @ F.T
        rows = torch.arange(S.shape[0], device=S.device)
        S[rows, rows + start] = -math.inf  # never one's own neighbour
        mask, split = _select(S, k)
        ties |= split
        cols = mask.nonzero()[:, 1].reshape(-1, k)  # row-major: ascending columns per row
        index.append(cols)
        kernel.append(S.gather(1, cols).to(torch.float64) - row_means[start:start + block, None])
    state = _Neighbours(torch.cat(index), torch.cat(kernel), ties=ties)
    if measure == "cknna":
        state.self_align = float(state.kernel.square().sum())
        if not state.self_align > 0:
            raise ValueError(
                "cknna is undefined here: every stimulus is exactly as similar to its neighbours as "
                "to the average stimulus (no variance in the kernel); use another measure"
            )
    return state


def permuted(state: _Neighbours, perms: torch.Tensor) -> _Neighbours:
    """The layer with its stimuli permuted by each row of ``perms`` (P x N): stimulus i is the
    old stimulus perms[s, i], so its neighbours are the old ones' new labels (P x N x k, sorted
    again); the kernel values move with them. Exact unless ``state.ties``."""
    inverse = torch.argsort(perms, dim=1)
    labels = inverse.gather(1, state.index[perms].reshape(len(perms), -1)).reshape(*perms.shape, -1)
    index, order = torch.sort(labels, dim=-1)
    return _Neighbours(index, state.kernel[perms].gather(-1, order), state.self_align, state.ties)


def _shared(a: _Neighbours, b: _Neighbours) -> tuple[torch.Tensor, torch.Tensor]:
    """(found, position): for each of a's neighbours, whether it is among b's neighbours of the
    same stimulus, and where in b's row (valid where found); b may carry permutations (P x N x k)."""
    mine = a.index.expand_as(b.index)
    position = torch.searchsorted(b.index, mine.contiguous()).clamp_(max=b.index.shape[-1] - 1)
    return b.index.gather(-1, position) == mine, position


def knn_values(measure: str, a: _Neighbours, b: _Neighbours) -> torch.Tensor:
    """The neighbourhood similarity of a with b, one per permutation of b's (float64, b's
    leading shape: a scalar for an unpermuted b)."""
    found, position = _shared(a, b)
    n, k = a.index.shape
    if measure == "mutual_knn":
        return found.sum(dim=(-2, -1), dtype=torch.float64) / (n * k)
    if measure == "jaccard_knn":
        shared = found.sum(dim=-1, dtype=torch.float64)
        return (shared / (2 * k - shared)).mean(dim=-1)
    align = torch.where(found, a.kernel * b.kernel.gather(-1, position), 0.0).sum(dim=(-2, -1))
    return align / math.sqrt(a.self_align * b.self_align)


def pair_knn(measure: str, a: _Neighbours, b: _Neighbours, options: dict) -> float:
    """The neighbourhood similarity of two prepared layers."""
    return float(knn_values(measure, a, b))
