"""The start every "Show code" snippet shares: imports, the stimulus set, and an
``activations(model, layers)`` function that extracts layers (``"penultimate"`` resolved) with
the selection's pooling, exactly as the jobs do, from any kind of model."""
from __future__ import annotations


def prelude(selection, *imports: str) -> str:
    """Imports (``imports`` are extra lines), the stimuli and ``activations`` for ``selection``."""
    extra = "".join(f"{line}\n" for line in imports)
    return f"""import numpy as np

import compute
from compute.sources.representations import model_activations
from compute.sources.stimuli import get_stimulus_set
{extra}
stimuli = get_stimulus_set({selection.stimulus_set!r})


def activations(name, layers):
    \"\"\"One model's activations (stimuli x features) for each layer, in order.\"\"\"
    return model_activations(name, stimuli, layers, pooling={selection.pooling!r})

"""
