"""Reading a condensed RDM as a picture: class-sorted, block-averaged to a bounded size, or a
window of it at full resolution, without ever building the N x N matrix.

The dashboard draws an RDM of N stimuli as at most ``max_side`` blocks per side (block means of
the class-sorted matrix), and a zoomed window from the condensed vector directly; both gather
only what they need, so N = 20,000 costs no more memory than its condensed RDM.
"""
from __future__ import annotations

import numpy as np

from compute.measures.condensed import side_of


def class_order(labels) -> np.ndarray:
    """Stimulus indices sorted by class, keeping the stimulus order within a class."""
    return np.argsort(np.asarray(labels), kind="stable")


def block_factor(n: int, max_side: int) -> int:
    """Rows per block so that at most ``max_side`` blocks cover ``n`` rows."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    return max(1, -(-n // max_side))


def block_layout(n: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks of ``factor`` consecutive rows (the last may be smaller): their ``starts``,
    ``sizes`` and ``centres`` (in row units)."""
    starts = np.arange(0, n, factor)
    sizes = np.diff(np.append(starts, n))
    return starts, sizes, starts + (sizes - 1) / 2.0


def window(condensed, rows, cols) -> np.ndarray:
    """The entries (rows x cols) of the square RDM at original stimulus indices ``rows`` and
    ``cols`` (float32), gathered from the condensed vector; zero where a row meets itself."""
    n = side_of(condensed)
    i = np.asarray(rows, dtype=np.int64)[:, None]
    j = np.asarray(cols, dtype=np.int64)[None, :]
    low, high = np.minimum(i, j), np.maximum(i, j)
    index = n * low - low * (low + 1) // 2 + high - low - 1
    same = low == high
    values = np.asarray(condensed)[np.where(same, 0, index)].astype(np.float32)
    values[np.broadcast_to(same, values.shape)] = 0.0
    return values


def block_means(matrix: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of ``matrix`` (r x c) over square blocks, at most ``max_side`` per side; returns the
    block means and the row and column block centres (in row/column units)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    factor = block_factor(max(matrix.shape), max_side)
    row_starts, row_sizes, row_centres = block_layout(matrix.shape[0], factor)
    col_starts, col_sizes, col_centres = block_layout(matrix.shape[1], factor)
    if factor == 1:
        return matrix, row_centres, col_centres
    sums = np.add.reduceat(np.add.reduceat(matrix, row_starts, axis=0), col_starts, axis=1)
    return sums / np.outer(row_sizes, col_sizes), row_centres, col_centres


def sorted_blocks(condensed, labels, max_side: int = 1000, chunk: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Block means (m x m, float32) of the class-sorted RDM and the block centres, with
    ``m <= max_side``; read from ``condensed`` a band of rows at a time (about ``chunk`` entries)."""
    n = side_of(condensed)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for an RDM of {n} stimuli")
    order = class_order(labels)
    factor = block_factor(n, max_side)
    starts, sizes, centres = block_layout(n, factor)
    blocks_per_band = max(1, chunk // max(1, factor * n))
    out = np.empty((len(starts), len(starts)), dtype=np.float64)
    for first in range(0, len(starts), blocks_per_band):
        last = min(len(starts), first + blocks_per_band)
        band = window(condensed, order[starts[first]:starts[last - 1] + sizes[last - 1]], order)
        sums = np.add.reduceat(np.add.reduceat(band.astype(np.float64), starts[first:last] - starts[first], axis=0),
                               starts, axis=1)
        out[first:last] = sums / np.outer(sizes[first:last], sizes)
    return out.astype(np.float32), centres


def sorted_window(condensed, labels, row_range, col_range, max_side: int = 1000):
    """The class-sorted RDM between sorted positions ``row_range = (start, stop)`` and
    ``col_range`` (clipped to the matrix), at full resolution when it fits ``max_side`` and
    block-averaged otherwise: ``(z, row_centres, col_centres)`` in sorted positions."""
    n = side_of(condensed)
    order = class_order(labels)
    r0, r1 = (int(np.clip(v, 0, n)) for v in row_range)
    c0, c1 = (int(np.clip(v, 0, n)) for v in col_range)
    if r1 <= r0 or c1 <= c0:
        raise ValueError(f"empty window: rows {row_range}, columns {col_range} of {n}")
    z, rows, cols = block_means(window(condensed, order[r0:r1], order[c0:c1]), max_side)
    return z.astype(np.float32), rows + r0, cols + c0
