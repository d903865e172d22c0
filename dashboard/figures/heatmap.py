"""Dissimilarity-matrix heatmaps (RDMs, model RDMs, layer grids)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

# Perceptually uniform and colour-blind safe.
SEQUENTIAL = "Viridis"


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
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(labels),
            y=list(labels),
            colorscale=SEQUENTIAL,
            colorbar={"title": {"text": colorbar_title}},
            hovertemplate=f"%{{y}}<br>%{{x}}<br>{hover_label}: %{{z:.4f}}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        yaxis={"autorange": "reversed", "scaleanchor": "x", "showticklabels": len(labels) <= 40},
        xaxis={"showticklabels": len(labels) <= 40},
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
    )
    return figure
