"""Curves of a per-model summary against accuracy, one curve per layer depth; and of a per-layer
summary against depth, one curve per model."""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from dashboard.figures.scatter import CATEGORICAL


def layer_curves(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[str]]],
    title: str,
    y_title: str,
    bands: Sequence[tuple[Sequence[float], Sequence[float]] | None] | None = None,
    band_name: str = "chance band",
) -> go.Figure:
    """One line per ``(label, accuracies, values, names)``, its points in order of accuracy;
    models without an accuracy (None) are left out of their curve. ``bands`` (one per curve, or
    None) are (low, high) per model, each drawn as a shaded band in its curve's colour, its legend
    entry "<label>: <band_name>"."""
    figure = go.Figure()
    bands = list(bands) if bands is not None else [None] * len(curves)
    if len(bands) != len(curves):
        raise ValueError(f"{len(bands)} bands for {len(curves)} curves")
    for index, ((label, accuracy, values, names), band) in enumerate(zip(curves, bands)):
        if not (len(accuracy) == len(values) == len(names)):
            raise ValueError(f"curve {label!r}: {len(accuracy)} accuracies, {len(values)} values, {len(names)} names")
        known = [i for i, a in enumerate(accuracy) if a is not None]
        known.sort(key=lambda i: (accuracy[i], names[i]))
        if band is not None:
            _band(figure, [accuracy[i] for i in known], [band[0][i] for i in known], [band[1][i] for i in known],
                  f"{label}: {band_name}", CATEGORICAL[index % len(CATEGORICAL)])
        figure.add_trace(
            go.Scatter(
                x=[accuracy[i] for i in known], y=[values[i] for i in known], mode="lines+markers", name=label,
                text=[names[i] for i in known],
                hovertemplate="%{text}<br>accuracy %{x:.3f}<br>" + y_title + " %{y:.4f}<extra>" + label + "</extra>",
                line={"color": CATEGORICAL[index % len(CATEGORICAL)], "width": 1},
                marker={"size": 6, "color": CATEGORICAL[index % len(CATEGORICAL)]},
            )
        )
    figure.update_layout(
        title=title, xaxis={"title": "accuracy", "tickformat": ".0%"}, yaxis={"title": y_title},
        legend={"title": {"text": "layer depth"}}, margin={"l": 50, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
    )
    return figure


def _band(figure: go.Figure, x, low, high, name: str, colour: str) -> None:
    """A shaded band from ``low`` to ``high`` over ``x`` (ascending): one closed, filled outline."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    figure.add_trace(go.Scatter(
        x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1], mode="lines", fill="toself", name=name,
        fillcolor=f"rgba({red}, {green}, {blue}, 0.18)", line={"width": 0, "color": colour}, hoverinfo="skip",
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
