"""Figures of training dynamics: each layer's similarity to its final state over training, and
pairwise similarity within and between groups of models, per layer."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.scatter import CATEGORICAL

_MARGIN = {"l": 60, "r": 20, "t": 60, "b": 50}


def over_training(steps: Sequence[int], values, layers: Sequence[str], names: Sequence[str],
                  title: str, y_title: str) -> go.Figure:
    """One line per layer through its ``values`` (L layers x T checkpoints) at ``steps`` (T
    training steps >= 0, ascending; ``names`` the checkpoints' models).

    The x axis is logarithmic in step + 1, so that step 0 has a place; ticks show the steps."""
    values = np.asarray(values, dtype=float)
    steps = [int(step) for step in steps]
    if values.shape != (len(layers), len(steps)) or len(names) != len(steps):
        raise ValueError(f"over_training needs values of shape (layers, steps) = ({len(layers)}, {len(steps)}) "
                         f"and one name per step; got {values.shape} and {len(names)} names")
    if any(step < 0 for step in steps) or steps != sorted(steps):
        raise ValueError(f"training steps must be ascending and >= 0, got {steps}")
    shifted = [step + 1 for step in steps]
    figure = go.Figure()
    for index, (layer, row) in enumerate(zip(layers, values)):
        colour = CATEGORICAL[index % len(CATEGORICAL)]
        figure.add_trace(go.Scatter(
            x=shifted, y=row.tolist(), mode="lines+markers", name=layer, customdata=steps, text=list(names),
            hovertemplate="%{text}<br>step %{customdata}<br>" + y_title + " %{y:.4f}<extra>" + layer + "</extra>",
            line={"color": colour, "width": 1.5}, marker={"size": 6, "color": colour},
        ))
    figure.update_layout(
        title=title, template="plotly_white", margin=_MARGIN, legend={"title": {"text": "layer"}},
        xaxis={"title": "training step (log scale of step + 1)", "type": "log", "tickvals": shifted,
               "ticktext": [str(step) for step in steps]},
        yaxis={"title": y_title},
    )
    return figure


def pair_summary(values) -> dict[str, np.ndarray]:
    """Mean, standard deviation (ddof 0), min and max over the pairs (columns) of ``values``
    (layers x pairs, at least one pair), one entry per layer."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] < 1:
        raise ValueError(f"pair_summary needs a (layers x pairs) array with at least one pair, got {values.shape}")
    return {"mean": values.mean(axis=1), "sd": values.std(axis=1), "min": values.min(axis=1),
            "max": values.max(axis=1)}


def within_between(layers: Sequence[str], groups: Sequence[tuple[str, object]], title: str,
                   y_title: str) -> go.Figure:
    """Grouped bars, one bar per ``(label, values)`` of ``groups`` at each layer: the mean over
    its pairs (``values``: layers x pairs), whiskers from the min to the max pair."""
    figure = go.Figure()
    for index, (label, values) in enumerate(groups):
        values = np.asarray(values, dtype=float)
        if values.ndim != 2 or values.shape[0] != len(layers):
            raise ValueError(f"{label!r}: values must be (layers x pairs) with {len(layers)} layers, got {values.shape}")
        stats = pair_summary(values)
        hover = [f"{values.shape[1]} pairs<br>SD {sd:.4f}<br>min {low:.4f}, max {high:.4f}"
                 for sd, low, high in zip(stats["sd"], stats["min"], stats["max"])]
        figure.add_trace(go.Bar(
            x=list(layers), y=stats["mean"].tolist(), name=label, text=hover, textposition="none",
            error_y={"type": "data", "symmetric": False, "array": (stats["max"] - stats["mean"]).tolist(),
                     "arrayminus": (stats["mean"] - stats["min"]).tolist(), "thickness": 1.2, "width": 4},
            marker={"color": CATEGORICAL[index % len(CATEGORICAL)]},
            hovertemplate="%{x}<br>mean " + y_title + " %{y:.4f}<br>%{text}<extra>" + label + "</extra>",
        ))
    figure.update_layout(title=title, barmode="group", template="plotly_white", margin=_MARGIN,
                         xaxis={"title": "layer"}, yaxis={"title": y_title}, legend={"title": {"text": "pairs"}})
    return figure
