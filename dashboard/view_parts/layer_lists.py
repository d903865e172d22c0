"""A model's layers chosen one by one: a list of layer names from a client (a multi-select's
value, or a link's comma-separated list), checked against the model's own layer list.

Nothing a client sends names a layer the model lacks: :func:`check_layers` refuses it with a
message naming the model and what it has, and the list comes back in the model's order, once
each, so that two orders of the same choice are one artifact.
"""
from __future__ import annotations

SEPARATOR = ","  # in a link: layers_a=conv1,conv2 (module and ONNX tensor names hold no comma)


def preset_layers(layers, layer_set: str) -> list[str]:
    """Names of a model's layers (its LayerInfo list) in registration order: its default
    selection, or all of them (``layer_set`` "all")."""
    return [info.name for info in layers if layer_set == "all" or info.default]


def check_layers(asked, known: list[str], model: str, side: str = "") -> list[str]:
    """``asked`` (a list of layer names) as the model's layers in the model's order, once each;
    ValueError naming the first unknown name (and the model's layers), a malformed value or an
    empty choice. ``known``: the model's layer names in order; ``side``: e.g. "A (rows)"."""
    whose = f"model {side} ({model})" if side else model
    if not isinstance(asked, list) or not all(isinstance(name, str) for name in asked):
        raise ValueError(f"the layers of {whose} must be a list of layer names")
    if not asked:
        raise ValueError(f"choose at least one layer of {whose}")
    unknown = [name for name in asked if name not in known]
    if unknown:
        shown = ", ".join(known[:12]) + (f", … ({len(known)} in all)" if len(known) > 12 else "")
        name = unknown[0] if len(unknown[0]) <= 60 else unknown[0][:57] + "..."
        raise ValueError(f"{name!r} is not a layer of {whose}; its layers: {shown}")
    chosen = set(asked)
    return [name for name in known if name in chosen]


def decode_layers(value: str, known: list[str]) -> list[str] | None:
    """A link's comma-separated layer list as the model's layers in order, or None when it
    names a layer the model lacks (the page then falls back to its preset, and says so)."""
    try:
        return check_layers(value.split(SEPARATOR), known, "")
    except ValueError:
        return None


def encode_layers(layers: list[str], preset: list[str]) -> str:
    """A link's value for a layer choice: "" when it is the preset (the link stays short)."""
    return "" if list(layers) == list(preset) else SEPARATOR.join(layers)
