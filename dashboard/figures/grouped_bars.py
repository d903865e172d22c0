"""Bars of a few series side by side over shared categories (e.g. one value per layer depth)."""
from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go

from dashboard.figures.scatter import CATEGORICAL


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def grouped_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], Sequence[str] | None]],
    title: str,
    y_title: str,
    y_range: tuple[float, float] | None = None,
    missing_text: str = "n/a",
) -> go.Figure:
    """One group of bars per category, one bar per ``(name, values, hover)`` in ``series``.

    ``values`` has one number per category; a missing one (None or NaN) draws no bar but
    ``missing_text`` just above zero where the bar would be. ``hover`` is one HTML line per
    category (or None). ``y_range`` fixes the value axis.
    """
    figure = go.Figure()
    for index, (name, values, hover) in enumerate(series):
        if len(values) != len(categories) or (hover is not None and len(hover) != len(categories)):
            raise ValueError(f"series {name!r}: {len(values)} values and "
                             f"{'no' if hover is None else len(hover)} hover texts for {len(categories)} categories")
        known = [None if _missing(v) else float(v) for v in values]
        figure.add_trace(
            go.Bar(
                x=list(categories), y=known, name=name, offsetgroup=str(index),
                text=["" if v is None else f"{v:.3f}" for v in known], textposition="outside",
                customdata=list(hover) if hover is not None else [""] * len(categories),
                hovertemplate="%{x}: %{y:.4f}<br>%{customdata}<extra>" + name + "</extra>",
                marker={"color": CATEGORICAL[index % len(CATEGORICAL)]},
            )
        )
        # Plotly's default group: bars side by side over the middle 80 % of each category.
        offset = -0.4 + 0.8 * (index + 0.5) / len(series)
        for position, value in enumerate(known):
            if value is None:
                figure.add_annotation(x=position + offset, y=0, text=missing_text, showarrow=False, yshift=10,
                                      hovertext=f"{name}, {categories[position]}: {missing_text}",
                                      font={"size": 11, "color": "#555"})
    figure.update_layout(
        title=title, barmode="group", bargap=0.2, xaxis={"title": ""},
        yaxis={"title": y_title, **({"range": list(y_range)} if y_range else {})},
        legend={"orientation": "h", "y": -0.12}, margin={"l": 60, "r": 20, "t": 60, "b": 40},
        template="plotly_white", uniformtext={"minsize": 9, "mode": "show"},
    )
    return figure
