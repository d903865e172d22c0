"""One interface over every kind of model: its layers, its activations on a stimulus set, its
output scores, whatever the model is (a torch module, an ONNX graph, activations uploaded as a
file).

The engine and the views ask :func:`open_model` for a :class:`Representation` and never look at
what is behind it. A source of models adds an opener to ``OPENERS`` under the ``source`` its
``ModelInfo`` records; torch modules (the zoo, torchvision, uploaded weights) share one.
"""
from __future__ import annotations

import math

from typing import TYPE_CHECKING, Callable, Iterator, Protocol

import numpy as np

if TYPE_CHECKING:
    from compute.sources.layers import LayerInfo
    from compute.sources.models import ModelInfo
    from compute.sources.stimuli import StimulusSet


class NoScores(ValueError):
    """The model has no output scores (class logits) for this stimulus set."""


class Representation(Protocol):
    """What every model offers. ``extract`` returns {layer: float32 N x D} for the stimuli in the
    set's order; ``pooling`` is ``"none"``, ``"avg"`` or ``"proj:<k>"`` as in
    :func:`compute.sources.activations.extract`."""

    info: ModelInfo

    def layers(self) -> list[LayerInfo]: ...

    def extract(self, stimuli: StimulusSet, layers: list[str], pooling: str = "none", *, device=None,
                progress: Callable[[float], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict[str, np.ndarray]: ...

    def width(self, stimuli: StimulusSet, layer: str, pooling: str) -> int: ...

    def scores(self, stimuli: StimulusSet) -> np.ndarray: ...

    # Optional: ``flops(stimuli) -> float``, one stimulus's forward FLOPs, for time estimates.


def resolve(representation: Representation, layer: str) -> str:
    """The layer name ``layer`` stands for: itself, or for ``"penultimate"`` the layer marked so."""
    if layer != "penultimate":
        return layer
    found = next((info.name for info in representation.layers() if info.penultimate), None)
    if found is None:
        raise ValueError(f"model {representation.info.name!r} has no penultimate layer; name a layer")
    return found


class TorchRepresentation:
    """A torch module: activations from forward hooks, scores from its outputs."""

    def __init__(self, info: ModelInfo, module):
        self.info, self.module = info, module

    def layers(self) -> list[LayerInfo]:
        from compute.sources.layers import list_layers

        return list_layers(self.module)

    def extract(self, stimuli, layers, pooling="none", *, device=None, progress=None, should_stop=None):
        from compute.sources.activations import extract

        return extract(self.module, stimuli.images, list(layers), pooling=pooling, device=device,
                       progress=progress, should_stop=should_stop)

    def width(self, stimuli, layer, pooling):
        from compute.sources.activations import extract

        # On the CPU, one image: this runs in the web process, which must never initialise CUDA.
        return int(extract(self.module, stimuli.images[:1], [layer], pooling=pooling, device="cpu")[layer].shape[1])

    def scores(self, stimuli):
        from compute.sources.activations import predict

        return predict(self.module, stimuli.images)

    def flops(self, stimuli) -> float:
        """Floating-point operations of one stimulus's forward pass, on the CPU: what the time
        estimate of an extraction scales with. torch's FLOP counter, but for the zoo's own
        networks (convolutions and linear layers only), whose count comes from hooks on those
        layers: the same number without the counter's ~2 s import of torch._dynamo, which the
        web process would pay on its first estimate."""
        import torch

        image = torch.as_tensor(stimuli.images[:1]).float()
        if any(p.device.type != "cpu" for p in self.module.parameters()):  # (.to imports torch._dynamo)
            self.module.to("cpu")
        self.module.eval()
        if self.info.source == "zoo":
            return _layer_flops(self.module, image)
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            self.module(image)
        return float(counter.get_total_flops())


def _layer_flops(module, image) -> float:
    """2 x the multiply-adds of ``module``'s convolutions and linear layers on ``image`` (what
    torch's FLOP counter counts for a network made of them: bias, norms and activations count
    nothing), from forward hooks."""
    import torch

    total = 0

    def count(layer, inputs, output):
        nonlocal total
        if isinstance(layer, torch.nn.Linear):
            total += 2 * output.numel() * layer.in_features
        else:  # a convolution: each output element sums its kernel over its group's input channels
            total += 2 * output.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    hooks = [layer.register_forward_hook(count) for layer in module.modules() if isinstance(layer, kinds)]
    try:
        with torch.inference_mode():
            module(image)
    finally:
        for hook in hooks:
            hook.remove()
    return float(total)


def _torch(info: ModelInfo, device, shared: dict | None = None) -> TorchRepresentation:
    from compute.sources.models import load_model

    return TorchRepresentation(info, load_model(info, device=device, shared=shared))


# Sources whose models are torch modules: one architecture and hyperparameters, one set of shapes.
TORCH_SOURCES = ("zoo", "torchvision", "upload", "lab", "timm", "hf")
# ModelInfo.source -> its opener(info, device), or "module:function" imported on first use.
OPENERS: dict[str, Callable[[ModelInfo, object], Representation] | str] = {source: _torch for source in TORCH_SOURCES}
OPENERS["activations"] = "compute.sources.activation_models:open_activations"
OPENERS["onnx"] = "compute.sources.onnx_models:open_onnx"


def open_model(name_or_info: str | ModelInfo, device="cpu") -> Representation:
    """The model with that name or key (or that ``ModelInfo``), ready to extract from."""
    from compute.sources.models import get_model_info

    info = name_or_info if not isinstance(name_or_info, str) else get_model_info(name_or_info)
    try:
        opener = OPENERS[info.source]
    except KeyError:
        raise ValueError(f"model {info.name!r} comes from an unknown source {info.source!r}") from None
    if isinstance(opener, str):
        import importlib

        module, _, function = opener.partition(":")
        opener = getattr(importlib.import_module(module), function)
    return opener(info, device)


def open_models(names_or_infos, device="cpu") -> Iterator[Representation]:
    """Each model of ``names_or_infos`` opened in turn, as :func:`open_model` opens it, except
    that torch models whose weights are files share one module per architecture and
    hyperparameters (``load_model``'s ``shared``): each one's weights are loaded into the
    module of the one before. A representation is good until the next one is asked for, so
    list models of one architecture together."""
    from compute.sources.models import get_model_info

    shared: dict = {}
    for item in names_or_infos:
        info = item if not isinstance(item, str) else get_model_info(item)
        yield _torch(info, device, shared) if OPENERS.get(info.source) is _torch else open_model(info, device)


def model_activations(name: str, stimuli: StimulusSet, layers: list[str], pooling: str = "none") -> list[np.ndarray]:
    """One model's activations (stimuli x features) on ``stimuli`` for each of ``layers``, in
    order (``"penultimate"`` resolved): what the jobs compute, for notebooks."""
    model = open_model(name)
    names = [resolve(model, layer) for layer in layers]
    acts = model.extract(stimuli, sorted(set(names)), pooling=pooling)
    return [acts[layer] for layer in names]


def model_scores(name: str, stimuli: StimulusSet) -> np.ndarray:
    """The model's output scores (float32 N x C) on ``stimuli``."""
    return open_model(name).scores(stimuli)
