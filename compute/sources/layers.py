"""Layer discovery: a model's named modules, its default selection and its penultimate layer.

The final classifier is the last Linear leaf (the last Conv2d when there is none); the
penultimate layer is the one whose output feeds it, and ``"penultimate"`` names it anywhere a
layer is asked for (:func:`resolve_layer`).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """One named module: ``kind`` its class name; ``default`` in the default selection;
    ``penultimate`` the layer whose output feeds the final classifier; ``shape`` its output's
    shape when known without running it (an ONNX graph's tensors; None for a symbolic dim)."""

    name: str
    kind: str
    default: bool
    penultimate: bool
    shape: tuple | None = None


_PASSIVE = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten)


def final_classifier(model: nn.Module) -> str | None:
    """The last Linear leaf in registration order (the last Conv2d when there is none, as in
    squeezenet); auxiliary heads come earlier in torchvision, so they are never chosen."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    for kinds in ((nn.Linear,), (nn.Conv2d,)):
        found = [n for n, m in leaves if isinstance(m, kinds)]
        if found:
            return found[-1]
    return None


def _penultimate(model: nn.Module, final: str | None) -> str | None:
    """The leaf before the final classifier in registration order, skipping dropout/identity/
    flatten; raised to its enclosing block when that block ends with it but is no Sequential
    (squeezenet's Fire concatenates two branches: its output, not the last branch, is the input;
    timm's global_pool flattens its pool's output) nor a transformers model."""
    if final is None:
        return None
    modules = dict(model.named_modules())
    leaves = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
    found = next((n for n in reversed(leaves[:leaves.index(final)]) if not isinstance(modules[n], _PASSIVE)), None)
    while found and "." in found:
        parent = found.rsplit(".", 1)[0]
        last_leaf = [n for n in leaves if n.startswith(parent + ".") and not isinstance(modules[n], _PASSIVE)][-1]
        if (isinstance(modules[parent], nn.Sequential) or last_leaf != found
                or final.startswith(parent + ".") or hasattr(modules[parent], "base_model_prefix")):
            # transformers' models return a ModelOutput whose first tensor need not be this leaf's
            break
        found = parent
    return found


_BODIES = ("features", "trunk_output", "encoder", "layers", "blocks", "stages")


def _default_blocks(model: nn.Module, final: str | None) -> list[str]:
    """Top-level stages: descend while one container holds the network, then take its
    sub-containers (auxiliary heads and the classifier's container left out), expanding a body
    container (regnet's trunk_output, maxvit's blocks, through a single wrapper such as Hugging
    Face's encoder.stages) beside a stem; when those are all leaves
    (vgg, alexnet), take the pooling layers that end each stage."""

    def blocks_of(prefix: str, container: nn.Module) -> list[tuple[str, nn.Module]]:
        return [(prefix + n, m) for n, m in container.named_children()
                if any(True for _ in m.children()) and "aux" not in n.lower()
                and not (final and (prefix + n == final or final.startswith(prefix + n + ".")))]

    prefix, container = "", model
    while True:
        blocks = blocks_of(prefix, container)
        if len(blocks) == 1:
            prefix, container = blocks[0][0] + ".", blocks[0][1]
            continue
        if blocks:
            bodies = [b for b in blocks if b[0].rsplit(".", 1)[-1] in _BODIES]
            inner = blocks_of(bodies[0][0] + ".", bodies[0][1]) if len(bodies) == 1 else []
            while len(inner) == 1:  # a body wrapping its stages (Hugging Face's encoder.stages)
                inner = blocks_of(inner[0][0] + ".", inner[0][1])
            if len(inner) > 1:
                return [i for n, _ in blocks for i in ([n for n, _ in inner] if n == bodies[0][0] else [n])]
            return [n for n, _ in blocks]
        pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
        return [prefix + n for n, m in container.named_children() if isinstance(m, pools)]


def list_layers(model: nn.Module) -> list[LayerInfo]:
    """Every named module (leaves and blocks) in registration order, with a default selection
    (the zoo's activation layers after each block; torchvision's stages) and the penultimate
    layer (whose output feeds the final classifier) marked and selected."""
    final = final_classifier(model)
    penultimate = _penultimate(model, final)
    declared = getattr(model, "default_layers", None)
    defaults = set(declared) if declared is not None else set(_default_blocks(model, final))
    if penultimate:
        defaults.add(penultimate)
    return [LayerInfo(name, type(module).__name__, name in defaults, name == penultimate)
            for name, module in model.named_modules() if name]


def resolve_layer(model: nn.Module, layer: str) -> str:
    """The module name ``layer`` stands for: itself, or for ``"penultimate"`` the layer whose
    output feeds the final classifier."""
    if layer != "penultimate":
        return layer
    return next(info.name for info in list_layers(model) if info.penultimate)
