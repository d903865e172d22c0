"""Hugging Face vision classifiers (``pip install 'repscope[hf]'``): named, built, called on images.

``hf:<name>`` is one of

- a built-in configuration for a random init (``BUILTIN``: ``tiny-vit``, ``tiny-resnet``,
  ``tiny-convnext``; names without a ``/``);
- a model id whose snapshot is in the local hub cache (:mod:`compute.sources.hub_cache`) and whose
  ``config.json`` names a ``*ForImageClassification`` architecture: random init from its config,
  or its pretrained ``model.safetensors`` (never downloaded; remote code never trusted).

No client names a folder: ids are looked up in the cache the server has. The network is the
transformers model itself, so layers keep their names (``vit.layers.3``); a forward pre-hook
prepares stimuli (grey to 3 channels, resized to its ``image_size``, normalised as the cached
``preprocessor_config.json`` says when pretrained) and a forward hook returns the logits tensor.
``hparams`` are configuration overrides (``image_size``, ``num_hidden_layers``, ...).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from compute.sources.hub_cache import cached_file, cached_repos, snapshot
from compute.sources.preprocess import image_transform, square, with_preprocessing

if TYPE_CHECKING:
    from torch import nn

# name -> (model_type, configuration); small enough to run on a CPU in a test
BUILTIN = {
    "tiny-vit": ("vit", {"image_size": 32, "patch_size": 8, "hidden_size": 48, "num_hidden_layers": 3,
                         "num_attention_heads": 3, "intermediate_size": 96}),
    "tiny-resnet": ("resnet", {"image_size": 32, "embedding_size": 16, "hidden_sizes": [16, 32, 64, 64],
                               "depths": [1, 1, 1, 1], "layer_type": "basic"}),
    "tiny-convnext": ("convnext", {"image_size": 32, "hidden_sizes": [16, 32, 64, 64], "depths": [1, 1, 1, 1]}),
}
BUILTIN_CLASSES = 1000  # as torchvision's and timm's random inits
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL codes in preprocessor_config.json


def available() -> bool:
    from importlib.util import find_spec

    return find_spec("transformers") is not None


def _read_json(path: Path | None) -> dict:
    try:
        return json.loads(path.read_text()) if path is not None else {}
    except (OSError, ValueError):
        return {}


def _is_classifier(repo_id: str) -> bool:
    """Whether the cached config is a transformers image classifier (not one needing remote code)."""
    config = _read_json(cached_file(repo_id, "config.json"))
    return "auto_map" not in config and any(str(a).endswith("ForImageClassification")
                                            for a in config.get("architectures") or [])


def names() -> list[str]:
    """The built-in configurations, then the cached image classifiers' ids; [] without transformers."""
    if not available():
        return []
    return list(BUILTIN) + [r for r in cached_repos() if r not in BUILTIN and _is_classifier(r)]


def _config(name: str, num_classes: int | None, overrides: dict):
    from transformers import AutoConfig

    if name in BUILTIN:
        model_type, settings = BUILTIN[name]
        return AutoConfig.for_model(model_type, **{**settings, "num_labels": num_classes or BUILTIN_CLASSES,
                                                   **overrides})
    folder = snapshot(name)
    if folder is None or not _is_classifier(name):
        raise ValueError(f"unknown Hugging Face model {name!r}: use a built-in configuration "
                         f"({', '.join(BUILTIN)}) or the id of an image classifier in the local hub cache")
    config = AutoConfig.from_pretrained(folder, local_files_only=True, **overrides)
    if num_classes is not None and num_classes != config.num_labels:
        config.num_labels = int(num_classes)  # a fresh head of that width (random init only)
    return config


def _input(name: str, config, pretrained: bool, image_size) -> dict:
    """image_transform's arguments: the size, and for pretrained weights the cached
    preprocessor's normalisation (its size when it gives one)."""
    size = square(image_size or getattr(config, "image_size", None))
    settings = {"channels": int(getattr(config, "num_channels", 3)), "size": size}
    processor = _read_json(cached_file(name, "preprocessor_config.json")) if pretrained else {}
    given = processor.get("size")
    if processor.get("do_resize", True) and given and image_size is None:
        settings["size"] = square((given["height"], given["width"]) if "height" in given
                                  else given.get("shortest_edge") or size)
    if processor.get("do_normalize") and processor.get("image_mean"):
        settings["mean"], settings["std"] = processor["image_mean"], processor.get("image_std")
    settings["interpolation"] = _RESAMPLE.get(processor.get("resample"), "bilinear")
    return settings


def build(name: str, *, num_classes: int | None = None, pretrained: bool = False, seed: int = 0,
          hparams: dict | None = None) -> nn.Module:
    """``hf:<name>`` in eval mode; calling it on stimuli returns logits (N x num_classes)."""
    import torch
    from transformers import AutoModelForImageClassification

    overrides = dict(hparams or {})
    torch.manual_seed(seed)
    try:
        if pretrained:
            weights = cached_file(name, "model.safetensors")
            if name in BUILTIN:
                raise ValueError(f"hf:{name} is a built-in configuration for a random init; it has no "
                                 "pretrained weights (use pretrained=False)")
            if weights is None:
                raise FileNotFoundError(
                    f"pretrained weights for hf:{name} are not in the local Hugging Face hub cache "
                    f"(HF_HUB_CACHE or HF_HOME, now {snapshot(name) or 'no snapshot'}): RepScope reads "
                    "model.safetensors from there and never downloads. Download them once with "
                    f"AutoModelForImageClassification.from_pretrained({name!r}) where the network is "
                    "allowed, or use pretrained=False")
            config = _config(name, None, overrides)
            if num_classes is not None and num_classes != config.num_labels:
                raise ValueError(f"pretrained hf:{name} has {config.num_labels} classes, not "
                                 f"num_classes={num_classes}; use pretrained=False for another class count")
            model = AutoModelForImageClassification.from_pretrained(
                weights.parent, config=config, local_files_only=True, use_safetensors=True, trust_remote_code=False)
        else:
            model = AutoModelForImageClassification.from_config(_config(name, num_classes, overrides))
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for hf:{name} ({sorted(overrides)}): {error}") from None
    model.register_forward_hook(lambda _, args, output: getattr(output, "logits", output))
    prepare = image_transform(**_input(name, model.config, pretrained, overrides.get("image_size")))
    return with_preprocessing(model, prepare).eval()


def preload(name: str) -> None:
    """Import transformers and ``name``'s model class now, before a worker limits its memory."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING

    MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING[type(_config(name, None, {}))]  # the lookup imports it
