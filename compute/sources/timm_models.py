"""timm's image models (``pip install 'repscope[timm]'``): their names, building one, its input.

Random weights are seeded; pretrained weights come only from the local caches timm itself fills
(the Hugging Face hub cache, :mod:`compute.sources.hub_cache`, as ``model.safetensors``; the
torch hub's ``checkpoints`` for timm's older ``.pth`` releases), read through RepScope's safe
loading (:mod:`compute.sources.weights`) and handed to timm, so nothing is ever downloaded.
Images are resized to the model's input size (``hparams["image_size"]``, else timm's ``img_size``
hyper-parameter, else the size its weights were trained at), grey repeated to 3 channels, and
normalised with the weights' mean and std when pretrained. timm is imported by these functions
only: listing it loads torch.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from compute.sources.hub_cache import cached_file
from compute.sources.preprocess import image_transform, square, with_preprocessing
from compute.sources.weights import load_state_dict_file

if TYPE_CHECKING:
    from torch import nn

OWN_HPARAMS = ("image_size",)  # ours (the resize target); every other hyper-parameter goes to timm


def available() -> bool:
    from importlib.util import find_spec

    return find_spec("timm") is not None


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def names() -> list[str]:
    """timm's architecture names (``timm.list_models()``), sorted; [] without timm."""
    return list(_names()) if available() else []


def _pretrained_cfg(name: str) -> dict:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


def pretrained_file(name: str) -> Path:
    """The cached file of ``name``'s default pretrained weights; ``FileNotFoundError`` naming
    where it was looked for when the caches do not hold it."""
    import torch

    cfg = _pretrained_cfg(name)
    looked = []
    if cfg.get("hf_hub_id"):
        filename = cfg.get("hf_hub_filename") or "model.safetensors"
        found = cached_file(cfg["hf_hub_id"], filename) if filename.endswith(".safetensors") else None
        if found is not None:
            return found
        looked.append(f"{cfg['hf_hub_id']}/{filename} in the Hugging Face hub cache (HF_HUB_CACHE or HF_HOME)")
    url = cfg.get("url") or ""
    if url.endswith((".pth", ".pt", ".safetensors")) and not cfg.get("custom_load"):
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if path.is_file():
            return path
        looked.append(str(path))
    if not looked:
        raise FileNotFoundError(f"timm has no pretrained weights for {name} that RepScope can read "
                                "(only .safetensors or .pth state_dicts); use pretrained=False")
    raise FileNotFoundError(f"pretrained weights for timm:{name} are not in the local caches (RepScope never "
                            f"downloads): looked for {' and '.join(looked)}. Download them once with "
                            f"timm.create_model({name!r}, pretrained=True) where the network is allowed, "
                            "or use pretrained=False")


def build(name: str, *, num_classes: int | None = None, pretrained: bool = False, seed: int = 0,
          hparams: dict | None = None) -> nn.Module:
    """``timm:<name>`` in eval mode with its preprocessing as a forward pre-hook. ``hparams``
    other than ``image_size`` are timm's (``img_size``, ``in_chans``, ``drop_rate``, ...)."""
    import timm
    import torch

    if name not in _names():
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models()")
    hparams = dict(hparams or {})
    size = square(hparams.pop("image_size", None) or hparams.get("img_size"))
    cfg = _pretrained_cfg(name)
    kwargs = dict(hparams)
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    torch.manual_seed(seed)
    try:
        if pretrained:
            classes = cfg.get("num_classes")
            if num_classes is not None and num_classes != classes:
                raise ValueError(f"pretrained timm:{name} has {classes} classes, not num_classes={num_classes}; "
                                 "use pretrained=False for another class count")
            state = load_state_dict_file(pretrained_file(name))
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"state_dict": state}, **kwargs)
            model.pretrained_cfg.pop("state_dict", None)  # loaded; keep no second copy
        else:
            model = timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for timm:{name} ({sorted(kwargs)}): {error}") from None
    default = tuple(cfg.get("input_size") or (3, 224, 224))
    prepare = image_transform(channels=int(hparams.get("in_chans", default[0])), size=size or default[1:],
                              mean=cfg.get("mean") if pretrained else None, std=cfg.get("std") if pretrained else None,
                              interpolation=cfg.get("interpolation", "bilinear"))
    return with_preprocessing(model, prepare).eval()


def preload(name: str) -> None:
    """Import timm (and torch) now, before a worker limits its memory."""
    import timm.models  # noqa: F401
