"""Stimulus sets by name: the server's registry, the only way a request or a job picks stimuli.

A name is one of

- ``digits``: scikit-learn's bundled digits;
- ``mnist``, ``fashionmnist``, ``cifar10``, ``cifar100``: torchvision datasets the operator put
  under ``REPSCOPE_DATA_ROOT`` (offered only when they are on disk);
- ``folder:<root>/<set>``: the sub-folder ``<set>``, holding one folder of images per class, of
  a directory listed in ``REPSCOPE_DATA_ROOTS``, ``<root>`` being that directory's own name
  (``/srv/stimuli/faces`` under the root ``/srv/stimuli`` is ``folder:stimuli/faces``);
- ``upload:<sha256>``: a zip of class folders, or a .mat struct array of images, uploaded through the app,

optionally followed by options: ``?n_per_class=<n>&seed=<s>`` (torchvision sets and folders)
and ``size=<pixels>`` (folders), whole numbers in :data:`OPTION_RANGES`.

A name never holds a path. :func:`resolve` refuses anything the registry does not list (a
made-up name, a path, a folder missing or outside the roots, an option such as ``root=``) with
:class:`UnknownStimulusSet`, whose message is the same whatever was asked and says nothing about
the disk, before any image is read. Torch-free: the web process checks names with it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

# name -> torchvision.datasets class
TORCHVISION_SETS = {
    "mnist": "MNIST",
    "fashionmnist": "FashionMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
}
# option -> (least, most) accepted in a name
OPTION_RANGES = {"n_per_class": (1, 10**7), "seed": (0, 2**32 - 1), "size": (1, 512)}
_KIND_OPTIONS = {"digits": (), "torchvision": ("n_per_class", "seed"),
                 "folder": ("n_per_class", "seed", "size"), "upload": ("n_per_class", "seed", "size")}
_UPLOAD = re.compile(r"upload:([0-9a-f]{64})")
MAX_NAME = 500

UNKNOWN_MESSAGE = ("unknown stimulus set: choose one that the selection panel lists (the built-in sets, "
                   "uploaded sets, and image folders the operator put under REPSCOPE_DATA_ROOTS)")


class UnknownStimulusSet(ValueError):
    """A stimulus set name the registry does not list; one message, whatever the name."""

    def __init__(self):
        super().__init__(UNKNOWN_MESSAGE)


@dataclass(frozen=True)
class StimulusSource:
    """What a registered name points at: ``kind`` (digits, torchvision, folder, upload), the
    name without options (``base``), its options, and the folder of a folder or upload set."""

    kind: str
    base: str
    options: dict = field(default_factory=dict)
    path: Path | None = None


def resolve(name) -> StimulusSource:
    """The registered set ``name`` calls, or :class:`UnknownStimulusSet`; reads no image."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise UnknownStimulusSet()
    base, _, query = name.partition("?")
    if base == "digits":
        kind = "digits"
    elif base in TORCHVISION_SETS:
        kind = "torchvision"
    elif base.startswith("folder:"):
        kind = "folder"
    elif _UPLOAD.fullmatch(base):
        kind = "upload"
    else:
        raise UnknownStimulusSet()
    options = _options(query, _KIND_OPTIONS[kind])
    path = None
    if kind in ("folder", "upload"):
        path = (folder_sets() if kind == "folder" else upload_sets()).get(base)
        if path is None:
            raise UnknownStimulusSet()
    return StimulusSource(kind, base, options, path)


def _options(query: str, allowed) -> dict:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise UnknownStimulusSet() from None
    options = {}
    for key, value in pairs:
        if key not in allowed or key in options or not re.fullmatch(r"[0-9]{1,10}", value):
            raise UnknownStimulusSet()
        least, most = OPTION_RANGES[key]
        if not least <= int(value) <= most:
            raise UnknownStimulusSet()
        options[key] = int(value)
    return options


def data_roots() -> dict[str, Path]:
    """The existing directories of ``REPSCOPE_DATA_ROOTS`` by their own name (the first of two
    with one name wins)."""
    from compute.settings import get_settings

    roots: dict[str, Path] = {}
    for root in get_settings().data_roots:
        if _plain(root.name) and root.name not in roots and root.is_dir():
            roots[root.name] = root
    return roots


def folder_sets() -> dict[str, Path]:
    """``folder:<root>/<set>`` -> folder, for every sub-folder of a data root that holds a
    class folder. A sub-folder that is a link leading out of its root is not a set."""
    sets = {}
    for label, root in data_roots().items():
        try:
            children = sorted(root.iterdir())
        except OSError:
            continue
        for child in children:
            if _plain(child.name) and child.is_dir() and child.resolve().parent == root and _has_class_folder(child):
                sets[f"folder:{label}/{child.name}"] = child
    return sets


def upload_sets() -> dict[str, Path]:
    """``upload:<sha256>`` -> folder, for every stimulus zip unpacked from an upload."""
    from compute.settings import get_settings

    directory = get_settings().upload_dir / "stimuli"
    if not directory.is_dir():
        return {}
    return {f"upload:{p.name}": p for p in sorted(directory.iterdir())
            if _UPLOAD.fullmatch(f"upload:{p.name}") and p.is_dir()}


def registered_name(folder: Path) -> str | None:
    """The name of the folder or upload set at ``folder`` (a resolved path), None for any other."""
    for name, path in {**folder_sets(), **upload_sets()}.items():
        if path.resolve() == folder:
            return name
    return None


def _plain(name: str) -> bool:
    """A folder name that can be part of a set name: printable, no leading dot, no separators
    of a path or a query."""
    return bool(name) and name.isprintable() and not name.startswith(".") and not any(c in name for c in "/\\?&=#%")


def _has_class_folder(folder: Path) -> bool:
    try:
        return any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())
    except OSError:
        return False
