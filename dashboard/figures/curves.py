"""A per-model summary against accuracy, a scatter and its fitted trend per layer depth; and a
per-layer summary against depth, one curve per model."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.scatter import CATEGORICAL


def trend(accuracy: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """The least-squares polynomial in accuracy through ``values`` (``np.polyfit``'s coefficients,
    highest power first): quadratic, or linear when fewer than 4 points have it (at least 2)."""
    return np.polyfit(np.asarray(accuracy, dtype=float), np.asarray(values, dtype=float),
                      min(2, max(1, len(accuracy) - 2)))


def layer_curves(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[str]]],
    title: str,
    y_title: str,
    bands: Sequence[tuple[Sequence[float], Sequence[float]] | None] | None = None,
    band_name: str = "chance band",
    quantity: str = "value",
) -> go.Figure:
    """One scatter per ``(label, accuracies, values, names)`` (a point per model, x its accuracy)
    with its fitted :func:`trend` drawn over the accuracies' range; models without an accuracy
    (None) are left out. ``bands`` (one per curve, or None) are (low, high) per model, each drawn
    as a vertical range at the model's accuracy in its curve's colour, its legend entry
    "<label>: <band_name>". A curve's points, trend and band share one legend entry's toggle;
    ``quantity`` names the values in the hover."""
    figure = go.Figure()
    bands = list(bands) if bands is not None else [None] * len(curves)
    if len(bands) != len(curves):
        raise ValueError(f"{len(bands)} bands for {len(curves)} curves")
    for index, ((label, accuracy, values, names), band) in enumerate(zip(curves, bands)):
        if not (len(accuracy) == len(values) == len(names)):
            raise ValueError(f"curve {label!r}: {len(accuracy)} accuracies, {len(values)} values, {len(names)} names")
        known = sorted((i for i, a in enumerate(accuracy) if a is not None), key=lambda i: (accuracy[i], names[i]))
        x, y = [accuracy[i] for i in known], [values[i] for i in known]
        colour = CATEGORICAL[index % len(CATEGORICAL)]
        if band is not None:
            _ranges(figure, x, [band[0][i] for i in known], [band[1][i] for i in known],
                    f"{label}: {band_name}", colour, label)
        figure.add_trace(go.Scatter(
            x=x, y=y, mode="markers", name=label, text=[names[i] for i in known], legendgroup=label,
            hovertemplate="%{text}<br>accuracy %{x:.1%}<br>" + quantity + " %{y:.4f}<extra>" + label + "</extra>",
            marker={"size": 7, "color": colour, "opacity": 0.8, "line": {"width": 0.5, "color": "#333"}},
        ))
        if len(known) >= 2:
            coefficients = trend(x, y)
            line = np.linspace(min(x), max(x), 60)
            figure.add_trace(go.Scatter(
                x=line, y=np.polyval(coefficients, line), mode="lines", name=f"{label}: {_TREND_WORDS[len(coefficients)]}",
                legendgroup=label, hoverinfo="skip", line={"color": colour, "width": 2.5},
            ))
    figure.update_layout(
        title=title, xaxis={"title": "top-1 accuracy (%)", "tickformat": ".0%"}, yaxis={"title": y_title},
        legend={"title": {"text": "layer depth"}}, margin={"l": 60, "r": 20, "t": 70, "b": 50},
        template="plotly_white",
    )
    return figure


_TREND_WORDS = {2: "linear fit (least squares)", 3: "quadratic fit (least squares)"}


def _ranges(figure: go.Figure, x, low, high, name: str, colour: str, group: str) -> None:
    """A vertical bar from ``low`` to ``high`` at each ``x``: one trace, its bars split by gaps."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    figure.add_trace(go.Scatter(
        x=[v for a in x for v in (a, a, None)], y=[v for pair in zip(low, high) for v in (*pair, None)],
        mode="lines", name=name, legendgroup=group, hoverinfo="skip",
        line={"width": 5, "color": f"rgba({red}, {green}, {blue}, 0.25)"},
    ))


def depth_curves(curves: Sequence[tuple[str, Sequence[str], Sequence[float]]], title: str,
                 y_title: str) -> go.Figure:
    """One line per ``(model, layer names, values)``: x is each layer's depth (1 = its first
    layer, in the order given), the hover names the layer."""
    figure = go.Figure()
    for index, (label, layers, values) in enumerate(curves):
        if len(layers) != len(values):
            raise ValueError(f"curve {label!r}: {len(layers)} layers, {len(values)} values")
        colour = CATEGORICAL[index % len(CATEGORICAL)]
        figure.add_trace(go.Scatter(
            x=list(range(1, len(layers) + 1)), y=list(values), mode="lines+markers", name=label, text=list(layers),
            hovertemplate="layer %{text} (depth %{x})<br>" + y_title + ": %{y:.3f}<extra>" + label + "</extra>",
            line={"color": colour, "width": 1.5}, marker={"size": 7, "color": colour},
        ))
    figure.update_layout(
        title=title, xaxis={"title": "layer (depth order: 1 = first)", "dtick": 1}, yaxis={"title": y_title},
        legend={"title": {"text": "model"}}, margin={"l": 50, "r": 20, "t": 50, "b": 40}, template="plotly_white",
    )
    return figure
