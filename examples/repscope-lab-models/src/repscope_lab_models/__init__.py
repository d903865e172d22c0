"""Two small networks for grey images (e.g. 8 x 8 digits, 28 x 28 MNIST), offered to RepScope.

Each builder follows RepScope's ``repscope.models`` protocol: ``build(num_classes=None, **hparams)``
returns a fresh ``torch.nn.Module`` whose forward takes float images N x C x H x W in [0, 1]
and returns logits N x num_classes. A builder that names ``image_shape`` gets the stimulus set's
(C, H, W) when weights are uploaded for it; ``default_layers`` chooses the layers RepScope selects
by default.
"""
from __future__ import annotations

from torch import nn


class LabCNN(nn.Module):
    """Two conv blocks (the second halves the size), global average pool, linear read-out."""

    default_layers = ("block1", "block2", "pool")

    def __init__(self, in_channels: int = 1, width: int = 8, num_classes: int = 10):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width),
                                    nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, images):
        return self.head(self.flatten(self.pool(self.block2(self.block1(images)))))


class LabMLP(nn.Module):
    """Flatten, one hidden ReLU layer, linear read-out: its input size comes from image_shape."""

    default_layers = ("hidden",)

    def __init__(self, in_features: int, hidden: int = 32, num_classes: int = 10):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_features, hidden)
        self.hidden = nn.ReLU()
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, images):
        return self.head(self.hidden(self.fc(self.flatten(images))))


def lab_cnn(num_classes: int | None = None, image_shape=(1, 8, 8), width: int = 8) -> LabCNN:
    """The CNN for images of ``image_shape`` (C, H, W; any H, W), ``width`` channels in block 1."""
    return LabCNN(in_channels=int(image_shape[0]), width=int(width), num_classes=int(num_classes or 10))


def lab_mlp(num_classes: int | None = None, image_shape=(1, 8, 8), hidden: int = 32) -> LabMLP:
    """The MLP for images of exactly ``image_shape`` (C, H, W)."""
    channels, height, width = (int(d) for d in image_shape)
    return LabMLP(channels * height * width, hidden=int(hidden), num_classes=int(num_classes or 10))
