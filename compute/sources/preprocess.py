"""Stimuli to network input: channels, size and normalisation, attached to a module as a pre-hook.

Stimuli are float N x C x H x W in [0, 1] at their own size (digits: 1 x 8 x 8). A network
built by name (torchvision, timm, Hugging Face) gets them as its forward pre-hook turns them into
what it expects, so every caller (extraction, predictions, the pre-flight) passes raw stimuli.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import torch
    from torch import nn


def image_transform(channels: int | None = 3, size: Sequence[int] | None = None,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    interpolation: str = "bilinear") -> Callable[[torch.Tensor], torch.Tensor]:
    """A batch transform: grey (1 channel) repeated to ``channels`` (3 by default; None leaves
    channels alone), resized to ``size`` (H, W) when it differs, then ``(x - mean) / std`` per
    channel when ``mean`` is given. No centre crop: the stimulus is the whole image."""
    mode = interpolation if interpolation in ("nearest", "bilinear", "bicubic") else "bilinear"

    def prepare(images: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        if channels and channels > 1 and images.ndim == 4 and images.shape[1] == 1:
            images = images.expand(-1, channels, -1, -1)
        if size is not None and images.ndim == 4 and tuple(images.shape[-2:]) != tuple(size):
            shrink = images.shape[-2] > size[0] or images.shape[-1] > size[1]
            images = F.interpolate(images, size=tuple(int(s) for s in size), mode=mode,
                                   align_corners=False if mode != "nearest" else None,
                                   antialias=shrink and mode != "nearest")
        if mean is not None:
            shift = images.new_tensor(list(mean)).view(1, -1, 1, 1)
            scale = images.new_tensor(list(std if std is not None else [1.0] * len(mean))).view(1, -1, 1, 1)
            images = (images - shift) / scale
        return images

    return prepare


def with_preprocessing(module: nn.Module, prepare: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    """``module`` with ``prepare`` applied to its first positional input on every call."""
    module.register_forward_pre_hook(lambda _, args: (prepare(args[0]), *args[1:]) if args else None)
    return module


def square(size) -> tuple[int, int] | None:
    """(H, W) from an int, a pair, or None."""
    if size is None:
        return None
    if isinstance(size, int):
        return int(size), int(size)
    height, width = (int(s) for s in size)
    return height, width
