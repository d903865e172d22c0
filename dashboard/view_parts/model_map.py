"""Models on a map: the model RDM of the models' penultimate input RDMs, its MDS, and the scatter
that draws models by accuracy, uploaded models ringed in their own colour and named, and one
model (or the names matching a search) highlighted. The Model RDM page shows them; the confusion
page's all-models section shares the same artifacts and scatter."""
from __future__ import annotations

import plotly.graph_objects as go

from compute.engine import artifacts
from compute.sources.models import UPLOADED_SOURCES
from dashboard.figures.scatter import embedding_scatter
from dashboard.widgets import accuracy_text

MAP_DEFAULTS = {"compare": "spearman", "rdm": "correlation", "mds": "smacof"}


def map_specs(models, stimuli, view: dict, pooling: str = "none") -> tuple[artifacts.Spec, artifacts.Spec]:
    """The model RDM and its MDS for ``models`` (already ordered) under ``view`` (the keys of
    :data:`MAP_DEFAULTS`)."""
    matrix = artifacts.model_rdm_spec([m.key for m in models], stimuli, "penultimate", pooling,
                                      view["rdm"], view["compare"])
    return matrix, artifacts.mds_spec(matrix, method=view["mds"])


def models_scatter(models, coords, title: str, group_of=lambda m: str(m.tags.get("family", m.architecture))):
    """An embedding of models (n x 2), coloured by accuracy, one symbol per group (``group_of``)."""
    hover = [
        f"<b>{m.name}</b><br>architecture: {m.architecture}<br>accuracy: {accuracy_text(m)}"
        + "".join(f"<br>{k}: {v}" for k, v in sorted(m.tags.items()) if k != "family")
        for m in models
    ]
    figure = embedding_scatter(
        coords, [m.name for m in models], [m.accuracy for m in models], "top-1 accuracy (%, higher is better)",
        groups=[group_of(m) for m in models], hover=hover, title=title, color_format=".0%",
    )
    uploaded = [i for i, m in enumerate(models) if getattr(m, "source", None) in UPLOADED_SOURCES]  # any with a name
    if uploaded:
        figure.add_trace(_ring([coords[i][0] for i in uploaded], [coords[i][1] for i in uploaded],
                               [models[i].name for i in uploaded], "uploaded", UPLOADED_COLOUR, 19))
    return figure


UPLOADED_COLOUR = "#D55E00"  # vermilion: not on the accuracy scale (Viridis)
FOUND_COLOUR = "#E6007E"


def _ring(x, y, names, what: str, colour: str, size: int) -> go.Scatter:
    """Open rings with the models' names over points already drawn (``meta``: what they mark)."""
    return go.Scatter(x=list(x), y=list(y), mode="markers+text", name=f"{what} (ringed)", meta=what,
                      customdata=list(names), text=list(names), textposition="top center",
                      textfont={"color": colour}, hoverinfo="skip",
                      marker={"symbol": "circle-open", "size": size, "color": colour, "line": {"width": 3}})


def matching(names, text: str) -> list[str]:
    """The names a search ``text`` finds: the one equal to it, else those containing it (case ignored)."""
    text = (text or "").strip().lower()
    if not text:
        return []
    exact = [n for n in names if n.lower() == text]
    return exact or [n for n in names if text in n.lower()]


_TYPED = ("f8", "f4", "i1", "i2", "i4", "u1", "u2", "u4")


def _values(array) -> list:
    """A trace's array as a list: as given, or decoded from Plotly's typed-array form
    (``{"dtype", "bdata"}``, base64 of the little-endian values)."""
    if isinstance(array, dict) and isinstance(array.get("bdata"), str) and array.get("dtype") in _TYPED:
        import base64
        import binascii

        import numpy as np

        try:
            return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
        except (binascii.Error, ValueError):  # not what Plotly writes
            return []
    return list(array) if isinstance(array, (list, tuple)) else []


def highlight(figure: dict, text: str | None) -> tuple[dict, str]:
    """The model map ``figure`` (a Plotly dict) with the models that ``text`` finds ringed (the
    ring it had before replaced), and a line saying what was found."""
    data = [trace for trace in figure.get("data") or [] if trace.get("meta") != "found"]
    points = {name: (x, y) for trace in data if not trace.get("meta")
              for name, x, y in zip(_values(trace.get("customdata")), _values(trace.get("x")), _values(trace.get("y")))
              if isinstance(name, str)}
    found = matching(list(points), text)
    if found:
        data.append(_ring([points[n][0] for n in found], [points[n][1] for n in found], found, "found",
                          FOUND_COLOUR, 26).to_plotly_json())
    words = "" if not (text or "").strip() else (
        f"{len(found)} model{'s' if len(found) != 1 else ''} found: {', '.join(found[:5])}"
        + (" …" if len(found) > 5 else "") if found else f"no model of the map matches {text.strip()[:80]!r}")
    return {**figure, "data": data}, words
