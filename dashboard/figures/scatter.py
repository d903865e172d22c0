"""Embeddings (MDS) as scatter plots coloured by a continuous value such as accuracy."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

# What an MDS map's distances mean (its axes have no meaning of their own: any rotation fits as well).
MDS_X_TITLE = "MDS 1 (distance between points ≈ their dissimilarity)"
# Kruskal's (1964) guide to stress-1: the upper bound of each word.
_KRUSKAL = ((0.025, "excellent"), (0.05, "good"), (0.1, "fair"), (0.2, "fair to poor"),
            (float("inf"), "poor: read distances with care"))
_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon"]


def stress_words(stress: float) -> str:
    """How well an MDS keeps the dissimilarities it embeds (compute.mds_stress), for its figure's subtitle."""
    rating = next(word for bound, word in _KRUSKAL if stress < bound)
    return f"Kruskal stress-1 {stress:.3f}, {rating} (0 = every distance exact)"


def with_stress(title: str, stress) -> str:
    """``title`` with an MDS's ``stress`` artifact (a (1,) array of stress-1) in its subtitle,
    or as is when it is ``None``."""
    if stress is None:
        return title
    words = stress_words(float(stress[0]))
    if title.endswith("</sup>"):  # a subtitle already: the stress joins it
        return f"{title.removesuffix('</sup>')}; {words}</sup>"
    return f"{title}<br><sup>{words}</sup>"


def embedding_scatter(
    coords: np.ndarray,
    names: Sequence[str],
    color: Sequence[float | None],
    color_title: str,
    groups: Sequence[str],
    hover: Sequence[str],
    title: str,
    color_format: str = "",
) -> go.Figure:
    """One trace per group (symbol) over a shared continuous colour scale with one colour bar.

    ``coords`` is (n, 2); ``color`` may hold ``None`` (drawn at the low end of the scale); ``hover`` is
    per-point HTML; ``color_format`` is the colour bar's d3 tick format (".0%" for fractions as percent).
    """
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] < 2 or coords.shape[0] != len(names):
        raise ValueError(f"coords of shape {coords.shape} do not match {len(names)} names")
    values = np.array([np.nan if c is None else c for c in color], dtype=float)
    known = values[np.isfinite(values)]
    low, high = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    figure = go.Figure()
    for index, group in enumerate(dict.fromkeys(groups)):
        members = [i for i, g in enumerate(groups) if g == group]
        figure.add_trace(
            go.Scatter(
                x=coords[members, 0],
                y=coords[members, 1],
                mode="markers",
                name=group,
                customdata=[names[i] for i in members],
                text=[hover[i] for i in members],
                hovertemplate="%{text}<extra></extra>",
                marker={
                    "symbol": _SYMBOLS[index % len(_SYMBOLS)],
                    "size": 11,
                    "color": [v if np.isfinite(v) else low for v in values[members]],
                    "colorscale": "Viridis",
                    "cmin": low,
                    "cmax": high,
                    "showscale": index == 0,
                    "colorbar": {"title": {"text": color_title}, "x": 1.02, "tickformat": color_format},
                    "line": {"width": 0.5, "color": "#333"},
                },
            )
        )
    figure.update_layout(
        title=title,
        xaxis={"title": MDS_X_TITLE, "zeroline": False},
        yaxis={"title": "MDS 2", "zeroline": False, "scaleanchor": "x"},
        legend={"orientation": "h", "y": -0.15},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
    )
    return figure


# Okabe-Ito and Tableau colours: distinguishable categories, colour-blind safe for the first 8.
CATEGORICAL = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
               "#8c564b", "#7f7f7f", "#bcbd22", "#17becf"]


def class_scatter(
    coords: np.ndarray,
    labels: Sequence[int],
    class_names: Sequence[str],
    hover: Sequence[str],
    title: str,
) -> go.Figure:
    """An embedding of stimuli (``coords`` n x 2), one trace (colour) per class in class order;
    ``hover`` is per-point HTML; each point's ``customdata`` is its stimulus index."""
    coords = np.asarray(coords, dtype=float)
    labels = np.asarray(labels)
    if coords.ndim != 2 or coords.shape[1] < 2 or coords.shape[0] != len(labels) or len(hover) != len(labels):
        raise ValueError(f"coords of shape {coords.shape} do not match {len(labels)} labels and hover texts")
    hover = np.asarray(hover, dtype=object)
    traces = []
    for index, cls in enumerate(sorted(set(labels.tolist()))):
        members = np.flatnonzero(labels == cls)
        traces.append(
            go.Scatter(
                x=coords[members, 0], y=coords[members, 1], mode="markers", name=str(class_names[cls]),
                customdata=members.tolist(), text=hover[members], hovertemplate="%{text}<extra></extra>",
                marker={"size": 6, "color": CATEGORICAL[index % len(CATEGORICAL)], "opacity": 0.85},
            )
        )
    figure = go.Figure(traces)  # one construction: validating 10,000-point traces once, not per add
    figure.update_layout(
        title=title,
        xaxis={"title": MDS_X_TITLE, "zeroline": False},
        yaxis={"title": "MDS 2", "zeroline": False, "scaleanchor": "x"},
        legend={"title": {"text": "class"}},
        margin={"l": 40, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
    )
    return figure


def score_against_accuracy(labels: Sequence[str], accuracy: Sequence[float | None], score: Sequence[float],
                           low: Sequence[float], high: Sequence[float], groups: Sequence[str], title: str,
                           y_title: str, legend_title: str = "") -> go.Figure:
    """Each item's score (y, with its interval when finite) against its model's top-1 accuracy
    (x, a fraction shown in %; items without one are left out), one colour per group."""
    accuracy = np.array([np.nan if a is None else a for a in accuracy], dtype=float)
    score, low, high = (np.asarray(a, dtype=float) for a in (score, low, high))
    figure = go.Figure()
    for index, group in enumerate(dict.fromkeys(groups)):
        members = [i for i, g in enumerate(groups) if g == group and np.isfinite(accuracy[i])]
        if not members:
            continue
        has_ci = bool(np.isfinite(low[members]).any())
        figure.add_trace(go.Scatter(
            x=accuracy[members], y=score[members], mode="markers", name=group,
            marker={"color": CATEGORICAL[index % len(CATEGORICAL)], "size": 9, "line": {"width": 0.5, "color": "#333"}},
            error_y={"type": "data", "symmetric": False, "visible": has_ci, "thickness": 1, "color": "#999",
                     "array": np.nan_to_num(high[members] - score[members]),
                     "arrayminus": np.nan_to_num(score[members] - low[members])},
            text=[labels[i] for i in members],
            hovertemplate="%{text}<br>accuracy %{x:.1%}<br>score %{y:.4f}<extra></extra>",
        ))
    figure.update_layout(
        title=title, template="plotly_white", legend={"title": {"text": legend_title}},
        xaxis={"title": "top-1 accuracy on the stimulus set (%)", "tickformat": ".0%"},
        yaxis={"title": y_title}, margin={"l": 40, "r": 20, "t": 60, "b": 40},
    )
    return figure
