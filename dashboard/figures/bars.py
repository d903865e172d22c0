"""Ranked horizontal bar charts: one bar per item, best at the top, with error bars and a band."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.scatter import CATEGORICAL


def ranking(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Indices of ``values`` from best to worst (NaN last; ties keep their order)."""
    values = np.asarray(values, dtype=float)
    key = np.where(np.isfinite(values), -values if higher_is_better else values, np.inf)
    return np.argsort(key, kind="stable").tolist()


def ranked_bars(
    labels: Sequence[str],
    values: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    groups: Sequence[str],
    hover: Sequence[str],
    title: str,
    x_title: str,
    higher_is_better: bool = True,
    band: tuple[float, float] | None = None,
    band_label: str = "",
    legend_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """Bars ranked best first (top), one colour and legend entry per group (in first-seen order).

    ``low``/``high`` are each bar's interval (error bars; NaN: none); ``band`` a shaded
    vertical band [lower, upper] across the chart (skipped when None or not finite), labelled
    ``band_label``. ``labels`` must be unique: they are the y axis' categories.
    ``legend_title`` names what the groups are, ``y_title`` what a bar is.
    """
    n = len(labels)
    if not (len(values) == len(low) == len(high) == len(groups) == len(hover) == n):
        raise ValueError(f"ranked_bars: {n} labels but {len(values)} values, {len(low)} lows, {len(high)} highs, "
                         f"{len(groups)} groups and {len(hover)} hover texts")
    if len(set(labels)) != n:
        raise ValueError("ranked_bars needs unique labels")
    values, low, high = (np.asarray(a, dtype=float) for a in (values, low, high))
    order = ranking(values, higher_is_better)
    figure = go.Figure()
    for index, group in enumerate(dict.fromkeys(groups)):
        members = [i for i in order if groups[i] == group]
        plus, minus = (np.nan_to_num(d[members], nan=0.0) for d in (high - values, values - low))
        figure.add_trace(go.Bar(
            x=values[members], y=[labels[i] for i in members], orientation="h", name=group,
            marker={"color": CATEGORICAL[index % len(CATEGORICAL)]},
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                     "visible": bool(np.isfinite(low[members]).any()), "color": "#333", "thickness": 1},
            text=[hover[i] for i in members], hoverinfo="text", textposition="none",
        ))
    figure.update_layout(
        title=title, template="plotly_white", barmode="overlay", height=160 + 22 * n,
        legend={"title": {"text": legend_title}},
        xaxis={"title": x_title, "zeroline": True},
        yaxis={"categoryorder": "array", "categoryarray": [labels[i] for i in order], "autorange": "reversed",
               "automargin": True, "title": y_title},
        margin={"l": 20, "r": 20, "t": 100, "b": 50},
    )
    if band is not None and all(np.isfinite(band)):
        x0, x1 = sorted(float(b) for b in band)
        figure.add_shape(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, layer="below",
                         fillcolor="rgba(120, 120, 120, 0.25)", line={"width": 0}, name=band_label)
        figure.add_annotation(x=(x0 + x1) / 2, xref="x", y=1, yref="paper", yanchor="bottom", showarrow=False,
                              text=band_label, font={"size": 11, "color": "#555"})
    return figure
