"""Models on a map: the model RDM of the models' penultimate input RDMs, its MDS, and the scatter
that draws models by accuracy. The Model RDM page shows them; the confusion page's all-models
section shares the same artifacts and scatter."""
from __future__ import annotations

from compute.engine import artifacts
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
    return embedding_scatter(
        coords, [m.name for m in models], [m.accuracy for m in models], "top-1 accuracy (%, higher is better)",
        groups=[group_of(m) for m in models], hover=hover, title=title, color_format=".0%",
    )
