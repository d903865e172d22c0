"""Dissimilarity-matrix heatmaps (RDMs, model RDMs, layer grids)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

# Perceptually uniform and colour-blind safe.
SEQUENTIAL = "Viridis"


def labelled_heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str,
    colorbar_title: str,
    hover_label: str = "dissimilarity",
    zrange: tuple[float, float] | None = None,
    annotate: bool = False,
) -> go.Figure:
    """A heatmap of ``matrix`` (rows x columns) with labelled axes, row 0 at the top.

    ``zrange`` fixes the colour scale (e.g. a measure's range); ``annotate`` writes each value
    in its cell (for small grids).
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape != (len(row_labels), len(column_labels)):
        raise ValueError(f"matrix of shape {matrix.shape} does not match "
                         f"{len(row_labels)} row and {len(column_labels)} column labels")
    scale = {} if zrange is None else {"zmin": zrange[0], "zmax": zrange[1]}
    text = {"texttemplate": "%{z:.2f}", "textfont": {"size": 10}} if annotate else {}
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(column_labels),
            y=list(row_labels),
            colorscale=SEQUENTIAL,
            colorbar={"title": {"text": colorbar_title}},
            hovertemplate=f"%{{y}}<br>%{{x}}<br>{hover_label}: %{{z:.4f}}<extra></extra>",
            **scale,
            **text,
        )
    )
    figure.update_layout(
        title=title,
        yaxis={"autorange": "reversed", "showticklabels": len(row_labels) <= 40, "type": "category"},
        xaxis={"showticklabels": len(column_labels) <= 40, "type": "category"},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
    )
    return figure


def matrix_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    title: str,
    colorbar_title: str,
    hover_label: str = "dissimilarity",
) -> go.Figure:
    """A square heatmap of ``matrix`` (n x n) with ``labels`` on both axes, row 0 at the top."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(labels):
        raise ValueError(f"matrix of shape {matrix.shape} does not match {len(labels)} labels")
    figure = labelled_heatmap(matrix, labels, labels, title, colorbar_title, hover_label)
    figure.update_layout(yaxis={"scaleanchor": "x"})
    return figure


def block_downsample(matrix: np.ndarray, max_side: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Average ``matrix`` (n x n) over square blocks of ``f = ceil(n / max_side)`` rows and
    columns, so that at most ``max_side`` remain per side; the last block may be smaller.

    Returns the (m x m) block means and the (m,) centre of each block in original row units
    (so class boundaries and labels keep their positions). ``f = 1`` returns the matrix as is.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"block_downsample needs a square matrix, got shape {matrix.shape}")
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    n = matrix.shape[0]
    factor = -(-n // max_side)
    starts = np.arange(0, n, factor)
    sizes = np.diff(np.append(starts, n))
    centres = starts + (sizes - 1) / 2.0
    if factor == 1:
        return matrix, centres
    sums = np.add.reduceat(np.add.reduceat(matrix, starts, axis=0), starts, axis=1)
    return sums / np.outer(sizes, sizes), centres


def class_order(labels: Sequence[int]) -> np.ndarray:
    """Stimulus indices sorted by class, keeping the stimulus order within a class."""
    return np.argsort(np.asarray(labels), kind="stable")


def rdm_heatmap(
    matrix: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    title: str,
    colorbar_title: str,
    max_side: int = 1000,
) -> go.Figure:
    """An input RDM (N x N) with the stimuli sorted by class, lines at the class boundaries and
    each class named at its centre; block-averaged to at most ``max_side`` per side."""
    matrix = np.asarray(matrix, dtype=float)
    labels = np.asarray(labels)
    if matrix.ndim != 2 or matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix of shape {matrix.shape} does not match {len(labels)} labels")
    order = class_order(labels)
    z, centres = block_downsample(matrix[np.ix_(order, order)], max_side)
    sorted_labels = labels[order]
    present = list(dict.fromkeys(sorted_labels.tolist()))
    starts = [int(np.searchsorted(sorted_labels, c, side="left")) for c in present]
    ends = [int(np.searchsorted(sorted_labels, c, side="right")) for c in present]
    ticks = [(a + b - 1) / 2.0 for a, b in zip(starts, ends)]
    names = [str(class_names[c]) for c in present]
    figure = go.Figure(
        go.Heatmap(
            z=z, x=centres, y=centres, colorscale=SEQUENTIAL,
            colorbar={"title": {"text": colorbar_title}},
            hovertemplate="stimulus %{y:.0f} × %{x:.0f}<br>dissimilarity: %{z:.4f}<extra></extra>",
        )
    )
    lines = {"color": "white", "width": 1}
    for boundary in starts[1:]:
        edge = boundary - 0.5
        figure.add_shape(type="line", x0=edge, x1=edge, y0=-0.5, y1=len(labels) - 0.5, line=lines)
        figure.add_shape(type="line", y0=edge, y1=edge, x0=-0.5, x1=len(labels) - 0.5, line=lines)
    axis = {"tickmode": "array", "tickvals": ticks, "ticktext": names, "showgrid": False, "zeroline": False}
    figure.update_layout(
        title=title,
        xaxis=axis,
        yaxis={**axis, "autorange": "reversed", "scaleanchor": "x"},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
    )
    return figure
