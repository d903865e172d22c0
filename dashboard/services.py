"""What the views read: the job backend, the stimulus set and the model registry.

One backend per web process, made on first use (the embedded pool spawns lazily too), so
importing the dashboard never starts processes or touches CUDA.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def backend():
    from compute.engine.jobs import make_backend

    return make_backend()


def close() -> None:
    """Close the backend if one was made (the embedded one's job processes end with it)."""
    if backend.cache_info().currsize:
        backend().close()


@lru_cache(maxsize=4)
def stimuli(name: str = "digits"):
    """The registry's stimulus set ``name`` (``UnknownStimulusSet`` for anything else)."""
    from compute.sources.stimuli import stimulus_set_named

    return stimulus_set_named(name)


def models(stimulus_set: str = "digits"):
    from compute.sources.models import list_models

    return list_models(stimulus_set)


def model_named(name: str, stimulus_set: str = "digits"):
    """The ModelInfo called ``name`` among ``models(stimulus_set)``; ``KeyError`` when none is."""
    for info in models(stimulus_set):
        if info.name == name:
            return info
    raise KeyError(f"no model named {name!r}")


@lru_cache(maxsize=256)
def layers(model_key: str) -> tuple:
    """The model's LayerInfo list (opens it on the CPU once per web process)."""
    from compute.sources.representations import open_model

    return tuple(open_model(model_key).layers())
