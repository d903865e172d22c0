"""Pairwise tests of ranked items as a matrix: which row is significantly better than which column."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

# Row better / no significant difference / column better, colour-blind safe.
_COLOURS = [[0.0, "#D55E00"], [1 / 3, "#D55E00"], [1 / 3, "#f2f2f2"], [2 / 3, "#f2f2f2"],
            [2 / 3, "#0072B2"], [1.0, "#0072B2"]]


def pairwise_matrix(labels: Sequence[str], values: Sequence[float], p: np.ndarray, alpha: float,
                    higher_is_better: bool, title: str, test: str) -> go.Figure:
    """An n x n matrix over ``labels`` (in the order given, best first): cell (i, j) is blue when
    item i is significantly better than item j (``p[i, j] < alpha``, already corrected), orange
    when significantly worse, grey when the difference is not significant; ``test`` says in words
    how ``p`` was obtained (shown under the title and in every cell's hover)."""
    values, p = np.asarray(values, dtype=float), np.asarray(p, dtype=float)
    n = len(labels)
    if p.shape != (n, n) or len(values) != n:
        raise ValueError(f"pairwise_matrix: {n} labels, {len(values)} values and p of shape {p.shape}")
    better = values[:, None] > values[None, :] if higher_is_better else values[:, None] < values[None, :]
    significant = p < alpha
    z = np.where(significant, np.where(better, 1.0, -1.0), 0.0)
    np.fill_diagonal(z, np.nan)
    verdict = np.where(significant, np.where(better, "row better", "column better"), "no significant difference")
    hover = [[f"{labels[i]}<br>vs {labels[j]}<br>{verdict[i, j]}<br>p = {p[i, j]:.3g} ({test})" if i != j else ""
              for j in range(n)] for i in range(n)]
    figure = go.Figure(go.Heatmap(
        z=z, x=list(labels), y=list(labels), zmin=-1.5, zmax=1.5, colorscale=_COLOURS, xgap=1, ygap=1,
        text=hover, hovertemplate="%{text}<extra></extra>",
        colorbar={"title": {"text": f"difference (p < {alpha:g})"}, "tickvals": [-1, 0, 1],
                  "ticktext": ["column better", "not significant", "row better"]},
    ))
    ticks = n <= 40
    figure.update_layout(
        title=f"{title}<br><sup>{test}</sup>", template="plotly_white",
        xaxis={"title": "compared with (column)", "type": "category", "showticklabels": ticks, "tickangle": -45,
               "showgrid": False},
        yaxis={"title": "candidate (row)", "type": "category", "autorange": "reversed", "showticklabels": ticks,
               "scaleanchor": "x", "showgrid": False, "automargin": True},
        margin={"l": 20, "r": 20, "t": 90, "b": 40},
    )
    return figure
