"""Architectures a lab installs as a Python package, through the ``repscope.models`` entry points.

The protocol: a distribution declares, in its ``pyproject.toml``,

    [project.entry-points."repscope.models"]
    lab_cnn = "my_lab.models:build_cnn"

and ``build_cnn(num_classes=None, **hparams) -> torch.nn.Module`` builds a fresh network (random
weights; RepScope seeds torch first). The network's ``forward`` takes stimuli as float
N x C x H x W in [0, 1] at the stimulus set's size and returns logits N x num_classes; any
preprocessing is its own. Optional: a builder that names an ``image_shape`` parameter gets the
stimulus set's (C, H, W) when weights are uploaded for it; a ``default_layers`` attribute on the
module chooses its default layers (:func:`compute.sources.layers.list_layers`). The architecture
is then ``"lab:lab_cnn"``. Names are listed without importing the package; it is imported (its
code runs, as any installed package's does) when a network is built.
"""
from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn

GROUP = "repscope.models"


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        found.setdefault(point.name, point)  # the first on sys.path wins, as for imports
    return found


def names() -> list[str]:
    """The entry point names of the installed ``repscope.models`` group, sorted."""
    return sorted(_entry_points())


def builder(name: str) -> Callable[..., nn.Module]:
    """The callable ``lab:<name>`` stands for, imported from its package."""
    point = _entry_points().get(name)
    if point is None:
        raise ValueError(f"no lab architecture {name!r}: installed {GROUP!r} entry points are "
                         f"{', '.join(names()) or 'none'}")
    try:
        found = point.load()
    except Exception as error:  # any failure of the lab's own import is the lab's to fix
        raise ValueError(f"the lab architecture {name!r} ({point.value}) could not be imported: "
                         f"{type(error).__name__}: {error}") from None
    if not callable(found):
        raise ValueError(f"the lab architecture {name!r} ({point.value}) is a {type(found).__name__}, "
                         "not a callable build(num_classes=None, **hparams) -> nn.Module")
    return found


def build(name: str, *, num_classes: int | None = None, pretrained: bool = False, seed: int = 0,
          hparams: dict | None = None) -> nn.Module:
    """A fresh ``lab:<name>`` network in eval mode, its random weights seeded by ``seed``."""
    import torch
    from torch import nn

    if pretrained:
        raise ValueError(f"lab:{name} has no pretrained weights in RepScope: upload its weights, "
                         "or register it with pretrained=False for a seeded random init")
    make = builder(name)
    kwargs = dict(hparams or {})
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    torch.manual_seed(seed)
    try:
        module = make(**kwargs)
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for lab:{name} ({sorted(kwargs)}): {error}") from None
    if not isinstance(module, nn.Module):
        raise ValueError(f"lab:{name} built a {type(module).__name__}, not a torch.nn.Module")
    return module.eval()


def shape_hparams(name: str, image_shape: tuple[int, int, int]) -> dict:
    """``{"image_shape": [C, H, W]}`` when ``lab:<name>``'s builder takes ``image_shape``, else {}."""
    try:
        takes = "image_shape" in inspect.signature(builder(name)).parameters
    except (TypeError, ValueError) as error:
        if "lab architecture" in str(error):
            raise
        takes = False  # a builder without a signature (a C function) takes what it is given
    return {"image_shape": [int(d) for d in image_shape]} if takes else {}


def preload(name: str) -> None:
    """Import ``lab:<name>``'s package now (before a worker limits its memory)."""
    builder(name)
