"""torchvision's image classifiers: their names, their preprocessing, and loading one.

Pretrained weights come only from the torch hub cache (``$TORCH_HOME/hub/checkpoints``), read
through the same safe loading as uploads (:mod:`compute.sources.weights`); otherwise the
weights are a seeded random init. torch is imported by the functions that build a model, so
the registry names these without it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compute.sources.preprocess import image_transform, with_preprocessing
from compute.sources.weights import load_state_dict_file, load_weights

if TYPE_CHECKING:
    import torch
    from torch import nn


def torchvision_architectures() -> list[str]:
    """Names of torchvision's image classification models (``torchvision.models.list_models``)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _tv_weights(arch: str):
    import torchvision

    if arch not in torchvision_architectures():
        raise ValueError(f"unknown torchvision classification model {arch!r}; see torchvision_architectures()")
    return torchvision.models.get_model_weights(arch).DEFAULT


def hub_weights_path(arch: str) -> Path:
    """Where torch hub keeps ``arch``'s default pretrained weights (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_tv_weights(arch).url)


def preprocessing(arch: str, pretrained: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The batch transform a torchvision model needs for stimuli in [0, 1] (N x C x H x W).

    Grayscale is repeated to 3 channels; pretrained weights add their own transforms (resize,
    centre crop, ImageNet normalisation).
    """
    transform = _tv_weights(arch).transforms() if pretrained else None
    to_rgb = image_transform(channels=3)

    def prepare(images: torch.Tensor) -> torch.Tensor:
        images = to_rgb(images)
        return transform(images) if transform is not None else images

    return prepare


def load_torchvision(arch: str, pretrained: bool = False, num_classes: int | None = None,
                     seed: int = 0, download: bool = False) -> nn.Module:
    """A torchvision classifier in eval mode, with its preprocessing as a forward pre-hook.

    ``pretrained`` loads the default weights from the torch hub cache only (``download=True``
    fetches them when missing); otherwise the weights are random, seeded by ``seed``, with
    ``num_classes`` outputs (default 1000). Layer names stay torchvision's.
    """
    import torch
    import torchvision

    weights = _tv_weights(arch)
    if pretrained:
        categories = len(weights.meta.get("categories") or [])
        if num_classes is not None and num_classes != categories:
            raise ValueError(f"pretrained {arch} has {categories} classes, not num_classes={num_classes}; "
                             "use pretrained=False for another class count")
        path = hub_weights_path(arch)
        if not path.exists():
            if not download:
                raise FileNotFoundError(
                    f"pretrained weights for {arch} are not in the torch hub cache: looked for {path}. "
                    f"Download them once (torchvision.models.get_model({arch!r}, weights='DEFAULT') "
                    "or download=True), or set TORCH_HOME to a cache that has them")
            weights.get_state_dict(progress=True)
        torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None)
        load_weights(model, load_state_dict_file(path))
    else:
        torch.manual_seed(seed)
        kwargs = {"num_classes": num_classes} if num_classes is not None else {}
        if arch.startswith(("googlenet", "inception")):
            kwargs["aux_logits"], kwargs["init_weights"] = False, True
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    return with_preprocessing(model, preprocessing(arch, pretrained)).eval()
