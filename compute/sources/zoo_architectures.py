"""The zoo's architectures: a sigmoid MLP and a small CNN, built by name with their widths.

The families follow the RSA-vs-performance paper (Table 1): a sigmoid MLP (FC + Sigmoid x 3, FC
out) and a small CNN (Conv, MaxPool, ReLU, BatchNorm, Dropout; 2 x [FC, ReLU, BatchNorm,
Dropout]; FC out). Each declares its ``default_layers`` for :func:`compute.sources.layers.list_layers`.
"""
from __future__ import annotations

from torch import nn

DROPOUT = 0.2


class SigmoidMLP(nn.Module):
    """fc1 -> act1 -> fc2 -> act2 -> fc3 -> act3 -> out (logits); input flattened."""

    default_layers = ("act1", "act2", "act3")

    def __init__(self, hidden=(32, 32, 32), in_features: int = 64, num_classes: int = 10):
        super().__init__()
        h1, h2, h3 = (int(h) for h in hidden)
        self.flatten = nn.Flatten()
        self.fc1, self.act1 = nn.Linear(int(in_features), h1), nn.Sigmoid()
        self.fc2, self.act2 = nn.Linear(h1, h2), nn.Sigmoid()
        self.fc3, self.act3 = nn.Linear(h2, h3), nn.Sigmoid()
        self.out = nn.Linear(h3, int(num_classes))

    def forward(self, x):
        x = self.act1(self.fc1(self.flatten(x)))
        x = self.act2(self.fc2(x))
        return self.out(self.act3(self.fc3(x)))


class SmallCNN(nn.Module):
    """conv1, pool1, relu1, bn1, drop1 -> fc2, relu2, bn2, drop2 -> fc3, relu3, bn3, drop3 -> out."""

    default_layers = ("bn1", "bn2", "bn3")

    def __init__(self, channels: int = 8, hidden=(64, 32), in_channels: int = 1, image_size: int = 8,
                 num_classes: int = 10, dropout: float = DROPOUT):
        super().__init__()
        channels, (h2, h3) = int(channels), (int(h) for h in hidden)
        side = int(image_size) // 2
        self.conv1 = nn.Conv2d(int(in_channels), channels, kernel_size=3, padding=1)
        self.pool1, self.relu1 = nn.MaxPool2d(2), nn.ReLU()
        self.bn1, self.drop1 = nn.BatchNorm2d(channels), nn.Dropout(dropout)
        self.flatten = nn.Flatten()
        self.fc2, self.relu2 = nn.Linear(channels * side * side, h2), nn.ReLU()
        self.bn2, self.drop2 = nn.BatchNorm1d(h2), nn.Dropout(dropout)
        self.fc3, self.relu3 = nn.Linear(h2, h3), nn.ReLU()
        self.bn3, self.drop3 = nn.BatchNorm1d(h3), nn.Dropout(dropout)
        self.out = nn.Linear(h3, int(num_classes))

    def forward(self, x):
        x = self.drop1(self.bn1(self.relu1(self.pool1(self.conv1(x)))))
        x = self.drop2(self.bn2(self.relu2(self.fc2(self.flatten(x)))))
        x = self.drop3(self.bn3(self.relu3(self.fc3(x))))
        return self.out(x)


ARCHITECTURES = {"mlp": SigmoidMLP, "cnn": SmallCNN}


def build_architecture(arch: str, **hparams) -> nn.Module:
    """A fresh zoo module: ``"mlp"`` (hidden, in_features, num_classes) or ``"cnn"`` (channels,
    hidden, in_channels, image_size, num_classes, dropout). Unknown names raise ``ValueError``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown zoo architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[arch](**hparams)
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for {arch!r}: {error}") from None


def family_hparams(family: str, width: int, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    """Hyper-parameters of one family at one width for images of shape (C, H, W)."""
    c, h, w = image_shape
    if family == "mlp":
        return {"hidden": [width] * 3, "in_features": c * h * w, "num_classes": num_classes}
    return {"channels": width, "hidden": [8 * width, 4 * width], "in_channels": c, "image_size": h,
            "num_classes": num_classes}
