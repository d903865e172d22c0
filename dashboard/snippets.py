"""The start every "Show code" snippet shares: imports, the stimulus set, and an
``activations(model, layers)`` function that extracts layers (``"penultimate"`` resolved) with
the selection's pooling, exactly as the jobs do."""
from __future__ import annotations


def prelude(selection, *imports: str) -> str:
    """Imports (``imports`` are extra lines), the stimuli and ``activations`` for ``selection``."""
    extra = "".join(f"{line}\n" for line in imports)
    return f"""import numpy as np

import compute
from compute.sources.activations import extract
from compute.sources.layers import list_layers
from compute.sources.models import load_model
from compute.sources.stimuli import get_stimulus_set
{extra}
stimuli = get_stimulus_set({selection.stimulus_set!r})


def activations(name, layers):
    \"\"\"One model's activations (stimuli x features) for each layer, in order.\"\"\"
    model = load_model(name)
    penultimate = next(info.name for info in list_layers(model) if info.penultimate)
    names = [penultimate if layer == "penultimate" else layer for layer in layers]
    acts = extract(model, stimuli.images, sorted(set(names)), pooling={selection.pooling!r})
    return [acts[layer] for layer in names]

"""
