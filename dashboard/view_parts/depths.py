"""A model's depths: its default layers in order (the zoo's activations after each block), the
d-th of every model compared at depth d by the layer curves, the reference ranking, the training
dynamics and the shared space."""
from __future__ import annotations

from dashboard import services


def depth_layers(layers) -> list[str]:
    """A model's default layers in order, the penultimate one named "penultimate" so that its
    artifacts are shared with the other views."""
    return ["penultimate" if info.penultimate else info.name for info in layers if info.default]


def depths(models) -> list[list[tuple]]:
    """For each depth d, the (model, layer) pairs of the models with a d-th default layer."""
    per_model = [(m, depth_layers(services.layers(m.key))) for m in models]
    deepest = max((len(layers) for _, layers in per_model), default=0)
    return [[(m, layers[d]) for m, layers in per_model if len(layers) > d] for d in range(deepest)]
