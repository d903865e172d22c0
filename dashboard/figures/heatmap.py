"""Dissimilarity-matrix heatmaps (RDMs, model RDMs, layer grids)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from compute.measures.blocks import block_factor, block_layout, class_order

# Perceptually uniform and colour-blind safe.
SEQUENTIAL = "Viridis"
# Marks on a Viridis heatmap: a red that stands out from its purples, greens and yellows alike.
MARK_COLOUR = "#e8175d"


def labelled_heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str,
    colorbar_title: str,
    hover_label: str = "dissimilarity",
    zrange: tuple[float, float] | None = None,
    annotate: bool = False,
    x_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """A heatmap of ``matrix`` (rows x columns) with labelled axes, row 0 at the top.

    ``zrange`` fixes the colour scale (e.g. a measure's range); ``annotate`` writes each value
    in its cell (for small grids); ``x_title``/``y_title`` name what the columns and rows are.
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
        yaxis={"autorange": "reversed", "showticklabels": len(row_labels) <= 40, "type": "category",
               "showgrid": False, "title": {"text": y_title}},
        xaxis={"showticklabels": len(column_labels) <= 40, "type": "category", "showgrid": False,
               "title": {"text": x_title}},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
    )
    return figure


def mark_cells(figure: go.Figure, marked: np.ndarray, row_labels: Sequence[str], column_labels: Sequence[str],
               name: str, row: int | None = None, col: int | None = None, showlegend: bool = True) -> go.Figure:
    """Ring each cell of a labelled heatmap where ``marked`` (rows x columns, bool) is True: one
    scatter trace named ``name`` (its legend entry), in subplot (``row``, ``col``) if given."""
    marked = np.asarray(marked, dtype=bool)
    if marked.shape != (len(row_labels), len(column_labels)):
        raise ValueError(f"marks of shape {marked.shape} do not match "
                         f"{len(row_labels)} row and {len(column_labels)} column labels")
    rows, cols = np.nonzero(marked)
    size = max(6, min(26, 360 // max(marked.shape)))
    figure.add_trace(go.Scatter(
        x=[column_labels[j] for j in cols], y=[row_labels[i] for i in rows], mode="markers", name=name,
        marker={"symbol": "circle-open", "size": size, "color": MARK_COLOUR, "line": {"width": 2.5}},
        hoverinfo="skip", showlegend=showlegend, legendgroup=name,
    ), row=row, col=col)
    figure.update_layout(legend={"orientation": "h", "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom"})
    return figure


def small_multiples(panels, colorbar_title: str, zrange: tuple[float, float] | None, title: str,
                    columns: int = 4, marks=None, mark_name: str = "") -> go.Figure:
    """Several labelled heatmaps side by side on one colour scale: ``panels`` is a list of
    ``(matrix, row_labels, column_labels, panel_title)``; ``columns`` panels per row. ``marks``,
    one bool matrix per panel, rings cells as :func:`mark_cells` does (``mark_name`` its legend)."""
    from plotly.subplots import make_subplots

    if not panels:
        raise ValueError("small_multiples needs at least one panel")
    rows = -(-len(panels) // columns)
    cols = min(columns, len(panels))
    measure = colorbar_title.replace("<br>", " ")  # the hover names the value as the colour bar does
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=[p[3] for p in panels],
                           horizontal_spacing=0.06, vertical_spacing=0.18)
    scale = {} if zrange is None else {"cmin": zrange[0], "cmax": zrange[1]}
    for index, (matrix, row_labels, column_labels, _) in enumerate(panels):
        matrix = np.asarray(matrix, dtype=float)
        if matrix.shape != (len(row_labels), len(column_labels)):
            raise ValueError(f"panel {index}: matrix of shape {matrix.shape} does not match its labels")
        figure.add_trace(go.Heatmap(z=matrix, x=list(column_labels), y=list(row_labels), coloraxis="coloraxis",
                                    hovertemplate="%{y}<br>%{x}<br>" + measure + " %{z:.4f}<extra></extra>"),
                         row=index // cols + 1, col=index % cols + 1)
        if marks is not None:
            mark_cells(figure, marks[index], row_labels, column_labels, mark_name,
                       row=index // cols + 1, col=index % cols + 1, showlegend=index == 0)
    if marks is not None:  # below the panels, clear of their titles
        figure.update_layout(legend={"orientation": "h", "x": 0, "y": -0.02, "xanchor": "left", "yanchor": "top"})
    figure.update_yaxes(autorange="reversed", type="category", showgrid=False)
    figure.update_xaxes(type="category", showticklabels=False, showgrid=False)
    figure.update_layout(title=title, coloraxis={"colorscale": SEQUENTIAL, "colorbar": {"title": {"text": colorbar_title}},
                                                 **scale},
                         height=max(420, 300 * rows), margin={"l": 40, "r": 20, "t": 80, "b": 40},
                         template="plotly_white")
    return figure


def group_runs(groups: Sequence) -> tuple[list, list[int], list[int]]:
    """The runs of equal values in ``groups`` (one per row, in display order): each run's value,
    first position and stop (exclusive)."""
    values = np.asarray(groups)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.array([], int)
    stops = np.r_[starts[1:], len(values)]
    return values[starts].tolist(), starts.tolist(), stops.tolist()


def boundary_lines(starts: Sequence[int], n: int) -> list[dict]:
    """White lines between groups starting at ``starts`` on both axes of an n x n heatmap whose
    cells sit at positions 0..n-1."""
    line, end = {"color": "white", "width": 1}, n - 0.5
    return [shape for boundary in starts[1:] for shape in (  # built at once: add_shape copies all
        {"type": "line", "x0": boundary - 0.5, "x1": boundary - 0.5, "y0": -0.5, "y1": end, "line": line},
        {"type": "line", "y0": boundary - 0.5, "y1": boundary - 0.5, "x0": -0.5, "x1": end, "line": line})]


def matrix_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    title: str,
    colorbar_title: str,
    hover_label: str = "dissimilarity",
    groups: Sequence[str] | None = None,
) -> go.Figure:
    """A square heatmap of ``matrix`` (n x n) with ``labels`` on both axes, row 0 at the top.
    With ``groups`` (one per label, equal ones adjacent) lines separate the groups, and where
    there are too many labels to print, each group is named at its middle instead."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(labels):
        raise ValueError(f"matrix of shape {matrix.shape} does not match {len(labels)} labels")
    figure = labelled_heatmap(matrix, labels, labels, title, colorbar_title, hover_label)
    figure.update_layout(yaxis={"scaleanchor": "x"})
    if groups is not None:
        if len(groups) != len(labels):
            raise ValueError(f"{len(groups)} groups for {len(labels)} labels")
        names, starts, stops = group_runs(groups)
        figure.update_layout(shapes=boundary_lines(starts, len(labels)))
        if not figure.layout.xaxis.showticklabels:
            middles = [labels[(a + b - 1) // 2] for a, b in zip(starts, stops)]
            axis = {"showticklabels": True, "tickmode": "array", "tickvals": middles, "ticktext": names}
            figure.update_layout(xaxis=axis, yaxis=axis)
    return figure


def rdm_heatmap(
    blocks: np.ndarray,
    centres: Sequence[float],
    labels: Sequence[int],
    class_names: Sequence[str],
    title: str,
    colorbar_title: str,
) -> go.Figure:
    """An input RDM over the stimuli sorted by class, drawn from its block means (``blocks``,
    m x m, at ``centres`` in sorted-stimulus units; see :mod:`compute.measures.blocks`), with
    lines at the class boundaries and each class named at its centre. ``labels`` are the
    stimuli's classes in their original order. Zooming keeps its state (``uirevision``), so a
    full-resolution window can replace the blocks (see :func:`replace_heatmap`)."""
    blocks = np.asarray(blocks, dtype=float)
    labels = np.asarray(labels)
    if blocks.ndim != 2 or blocks.shape != (len(centres), len(centres)):
        raise ValueError(f"blocks of shape {blocks.shape} do not match {len(centres)} block centres")
    present, starts, stops = group_runs(labels[class_order(labels)])
    ticks = [(a + b - 1) / 2.0 for a, b in zip(starts, stops)]
    names = [str(class_names[c]) for c in present]
    figure = go.Figure(
        go.Heatmap(
            z=blocks.astype(np.float32), x=np.asarray(centres), y=np.asarray(centres), colorscale=SEQUENTIAL,
            colorbar={"title": {"text": colorbar_title}},
            hovertemplate="stimuli %{y:.0f} × %{x:.0f} (positions in class order)<br>dissimilarity: %{z:.4f}"
                          "<extra></extra>",
        )
    )
    axis = {"tickmode": "array", "tickvals": ticks, "ticktext": names, "showgrid": False, "zeroline": False}
    figure.update_layout(
        title=title,
        shapes=boundary_lines(starts, len(labels)),
        # No axis titles (the subtitle says what rows and columns are): they would change the
        # square cells' window, and a zoom's link would open on more rows than asked for.
        # Square cells: where the plot is too wide the columns' range widens, where too tall
        # the rows' plot height shrinks, so a window (a zoom, or a link's) keeps its rows exactly.
        xaxis={**axis, "constrain": "range"},
        yaxis={**axis, "autorange": "reversed", "scaleanchor": "x", "constrain": "domain"},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
        uirevision=title,
    )
    return figure


def sorted_heatmap(stimuli, blocks: np.ndarray, max_side: int, title: str, colorbar_title: str) -> go.Figure:
    """The class-sorted RDM heatmap of ``stimuli`` from its block means (an ``rdm_blocks``
    artifact at most ``max_side`` per side)."""
    n = len(stimuli)
    _, _, centres = block_layout(n, block_factor(n, max_side))
    return rdm_heatmap(blocks, centres, stimuli.labels, stimuli.class_names, title, colorbar_title)


def replace_heatmap(z: np.ndarray, rows: Sequence[float], cols: Sequence[float]):
    """A Dash ``Patch`` swapping a heatmap's cells (its first trace) for ``z`` at ``rows`` x
    ``cols``, leaving the layout (and the user's zoom) as it is."""
    from dash import Patch

    patch = Patch()
    patch["data"][0]["z"] = np.asarray(z, dtype=float)
    patch["data"][0]["x"] = list(cols)
    patch["data"][0]["y"] = list(rows)
    return patch
