"""The architecture registry: every network RepScope can build, under one prefixed name.

| name | family | built by |
| --- | --- | --- |
| ``mlp``, ``cnn`` (no prefix) | ``zoo`` | :mod:`compute.sources.zoo_architectures` (weights uploaded or trained) |
| ``torchvision:<name>`` (or the bare name) | ``torchvision`` | :mod:`compute.sources.torchvision_models` |
| ``lab:<entry point>`` | ``lab`` | :mod:`compute.sources.lab_models` (the ``repscope.models`` group) |
| ``timm:<name>`` | ``timm`` | :mod:`compute.sources.timm_models`, when timm is installed |
| ``hf:<id or built-in>`` | ``hf`` | :mod:`compute.sources.hf_models`, when transformers is installed |

Every family builds from ``hparams``: the family's own hyper-parameters plus ``num_classes``,
``pretrained`` and ``seed`` (``RESERVED``), which is what a ``ModelInfo`` keeps, so one call
rebuilds any registered network. Listing is lazy: torch, timm and transformers load only when a
family's names are asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from compute.sources import hf_models, lab_models, timm_models
from compute.sources.torchvision_models import load_torchvision, torchvision_architectures

if TYPE_CHECKING:
    from torch import nn

RESERVED = ("num_classes", "pretrained", "seed")


def _zoo_names() -> list[str]:
    from compute.sources.zoo_architectures import ARCHITECTURES

    return sorted(ARCHITECTURES)


def _build_zoo(name: str, *, num_classes=None, pretrained=False, seed=0, hparams=None) -> nn.Module:
    from compute.sources.zoo_architectures import build_architecture

    if pretrained:
        raise ValueError(f"the zoo architecture {name} has no pretrained weights; upload or train them")
    return build_architecture(name, **dict(hparams or {}), **({} if num_classes is None else {"num_classes": num_classes}))


def _build_torchvision(name: str, *, num_classes=None, pretrained=False, seed=0, hparams=None) -> nn.Module:
    if hparams:
        raise ValueError(f"torchvision architectures take no hyper-parameters besides num_classes, "
                         f"pretrained and seed; got {sorted(hparams)} for {name}")
    return load_torchvision(name, pretrained=pretrained, num_classes=num_classes, seed=seed)


@dataclass(frozen=True)
class Family:
    """How a family lists its names and builds one; ``package``: the optional install it needs;
    ``known``: where its names come from, for messages."""

    names: Callable[[], list[str]]
    build: Callable[..., nn.Module]
    preload: Callable[[str], None] | None = None
    package: str | None = None
    known: str = ""


FAMILIES: dict[str, Family] = {
    "zoo": Family(_zoo_names, _build_zoo),
    "torchvision": Family(torchvision_architectures, _build_torchvision, known="torchvision_architectures()"),
    "lab": Family(lab_models.names, lab_models.build, lab_models.preload,
                  known=f"the installed {lab_models.GROUP!r} entry points"),
    "timm": Family(timm_models.names, timm_models.build, timm_models.preload, "timm", known="timm.list_models()"),
    "hf": Family(hf_models.names, hf_models.build, hf_models.preload, "hf",
                 known=f"the built-in configurations ({', '.join(hf_models.BUILTIN)}) or an image classifier's "
                       "id in the local Hugging Face hub cache, which RepScope never downloads into"),
}
_AVAILABLE = {"timm": timm_models.available, "hf": hf_models.available}


def architecture_name(family: str, name: str) -> str:
    """The registry's name: ``name`` for the zoo, ``"<family>:<name>"`` otherwise."""
    return name if family == "zoo" else f"{family}:{name}"


def _family_of(architecture: str) -> tuple[str, str]:
    prefix, colon, rest = (architecture or "").partition(":")
    if colon:
        if prefix not in FAMILIES or prefix == "zoo":
            raise ValueError(f"unknown architecture family {prefix!r} in {architecture!r}: use "
                             f"{', '.join(f + ':<name>' for f in FAMILIES if f != 'zoo')} or a zoo architecture")
        return prefix, rest
    if architecture in _zoo_names():
        return "zoo", architecture
    return "torchvision", architecture  # bare torchvision names, as before the prefixes


def split_architecture(architecture: str) -> tuple[str, str]:
    """(family, name) of a registry name, checked: ``"mlp"`` -> ("zoo", "mlp"),
    ``"resnet18"`` or ``"torchvision:resnet18"`` -> ("torchvision", "resnet18"),
    ``"timm:resnet10t"`` -> ("timm", "resnet10t"). ``ValueError`` names what is known."""
    family, name = _family_of(architecture)
    if family in _AVAILABLE and not _AVAILABLE[family]():
        raise ValueError(f"{architecture!r} needs the optional {family} support: "
                         f"pip install 'repscope[{FAMILIES[family].package}]'")
    if name not in family_names(family):
        if family == "torchvision" and ":" not in architecture:
            raise ValueError(f"unknown architecture {architecture!r}: use a zoo architecture ({', '.join(_zoo_names())}), "
                             "a torchvision name (torchvision_architectures()) or a prefixed name "
                             "(lab:, timm:, hf:; see list_architectures())")
        raise ValueError(f"unknown architecture {architecture!r}: no {family} architecture {name!r}; "
                         f"{family} names are {FAMILIES[family].known} (list_architectures({family!r}))")
    return family, name


def family_names(family: str) -> list[str]:
    """The names (without prefix) ``family`` offers now; [] when its optional package is missing."""
    if family in _AVAILABLE and not _AVAILABLE[family]():
        return []
    return list(FAMILIES[family].names())


def list_architectures(*families: str) -> list[str]:
    """Registry names of every architecture of ``families`` (default: all), family by family."""
    return [architecture_name(f, n) for f in (families or tuple(FAMILIES)) for n in family_names(f)]


def build_module(family: str, name: str, hparams: dict | None = None) -> nn.Module:
    """A fresh network of ``family``/``name`` from ``hparams`` (the family's own plus
    ``RESERVED``: ``num_classes``, ``pretrained``, ``seed``), preprocessing attached, eval mode."""
    hparams = dict(hparams or {})
    reserved = {key: hparams.pop(key) for key in RESERVED if key in hparams}
    return FAMILIES[family].build(name, num_classes=reserved.get("num_classes"),
                                  pretrained=bool(reserved.get("pretrained", False)),
                                  seed=int(reserved.get("seed", 0)), hparams=hparams).eval()


def upload_hparams(family: str, name: str, image_shape: tuple[int, int, int]) -> dict:
    """Hyper-parameters an upload for ``family``/``name`` adds from its stimulus set (C, H, W):
    the lab builder's ``image_shape`` when it takes one, nothing for the others."""
    return lab_models.shape_hparams(name, image_shape) if family == "lab" else {}


def preload(architecture: str | None) -> None:
    """Import what building ``architecture`` will need (timm, transformers, a lab's package),
    e.g. before a worker limits its memory. Errors are left to the build, which names them."""
    try:
        family, name = _family_of(architecture or "")
        if FAMILIES[family].preload is not None:
            FAMILIES[family].preload(name)
    except Exception:  # noqa: BLE001 - a bad name is reported by the task that builds it
        pass
