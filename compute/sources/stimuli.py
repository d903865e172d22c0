"""Stimulus sets: the images every model sees, in a fixed order, named by a hash of their content.

Sources, each chosen by a name of the server's registry (:mod:`compute.sources.stimulus_names`):

- ``"digits"``: scikit-learn's bundled 8x8 digits (no download), split once and for all into a
  train set (for the zoo) and a stimulus/test set of 50 images per class.
- ``"mnist"``, ``"fashionmnist"``, ``"cifar10"``, ``"cifar100"``: torchvision datasets already on
  disk under the data root (``REPSCOPE_DATA_ROOT``, default ``<cache_dir>/data``), ``n_per_class``
  test images per class drawn with a fixed seed. Nothing is downloaded unless ``download=True``.
- ``"folder:<root>/<set>"``: an image folder with one sub-folder per class (:func:`image_folder`)
  under a directory of ``REPSCOPE_DATA_ROOTS``; ``"upload:<sha256>"``: one unpacked from an upload
  (a zip of class folders, or images imported from a .mat file, kept in the file's order by a
  ``stimuli.json`` list: :mod:`compute.sources.stimulus_manifest`).

Non-default options are written into the set's name (``"mnist?n_per_class=20&seed=1"``), so
``get_stimulus_set(stimuli.name)`` always rebuilds the same set. A name never holds a path:
:func:`image_folder` reads any folder for Python callers, and requests and jobs go through
:func:`stimulus_set_named`, which refuses everything else with one message. torch is imported
by the functions that build a set, so naming the sets needs none.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import numpy as np

from compute.sources.stimulus_manifest import read_manifest
from compute.sources.stimulus_names import (TORCHVISION_SETS, UnknownStimulusSet, folder_sets, registered_name,
                                            resolve, upload_sets)

if TYPE_CHECKING:
    import torch

DIGITS_PER_CLASS = 50
DEFAULT_PER_CLASS = 50
DEFAULT_FOLDER_SIZE = 224



@dataclass(frozen=True, eq=False)
class StimulusSet:
    """A fixed, ordered set of labelled images.

    ``images`` is a float32 tensor (N x C x H x W) with values in [0, 1]; ``labels`` an int64
    array (N,) indexing ``class_names``; ``ids`` one stable string per image; ``key`` the sha256
    of the pixels, labels and shape (the content, not the name), so two sets with the same images
    in the same order share every cached artifact. ``tags`` (optional) holds per-image
    properties beside the class, one list of N values per tag (e.g. ``{"animal": [1, 0, ...]}``).
    """

    name: str
    images: torch.Tensor
    labels: np.ndarray
    class_names: list[str]
    ids: list[str]
    key: str
    tags: dict[str, list] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def thumbnail_array(self, size: int = 32, indices=None) -> np.ndarray:
        """uint8 thumbnails (n x size x size x C) of the images at ``indices`` (all by default),
        nearest-neighbour resized (crisp for 8x8 digits)."""
        import torch

        images = self.images if indices is None else self.images[torch.as_tensor(indices, dtype=torch.long)]
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="nearest")
        return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def thumbnails(self, size: int = 32, indices=None) -> list[str]:
        """One PNG data URI (``data:image/png;base64,...``) per image (at ``indices``; all by
        default), for hover in the UI."""
        from PIL import Image

        uris = []
        for array in self.thumbnail_array(size, indices):
            image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
        return uris


def content_key(images: torch.Tensor, labels: np.ndarray) -> str:
    """sha256 of the shape, the float32 pixels and the int64 labels, in order."""
    import torch

    digest = hashlib.sha256()
    digest.update(repr(tuple(images.shape)).encode())
    digest.update(images.detach().to(torch.float32).contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def make_stimulus_set(name: str, images, labels, class_names, ids=None, tags=None) -> StimulusSet:
    """Validate and wrap images (N x C x H x W, values in [0, 1]) and labels (and optional
    ``tags``: name -> N values) into a StimulusSet."""
    import torch

    images = torch.as_tensor(images, dtype=torch.float32).contiguous()
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"labels must lie in [0, {len(class_names) - 1}] (one per class name)")
    ids = list(ids) if ids is not None else [f"{name}-{i}" for i in range(len(labels))]
    if len(ids) != len(labels):
        raise ValueError(f"ids must have {len(labels)} entries, got {len(ids)}")
    if tags is not None:
        tags = {str(k): list(v) for k, v in tags.items()}
        wrong = [k for k, v in tags.items() if len(v) != len(labels)]
        if wrong:
            raise ValueError(f"tag {wrong[0]!r} must have {len(labels)} values, one per image")
    return StimulusSet(name, images, labels, list(class_names), ids, content_key(images, labels), tags or None)


# --- built-in digits ------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0)[:, None]  # N x 1 x 8 x 8
    labels = digits.target.astype(np.int64)
    # The first 50 of each class (in the file's order) are the stimuli, sorted by class.
    test = np.concatenate([np.flatnonzero(labels == c)[:DIGITS_PER_CLASS] for c in range(10)])
    train = np.setdiff1d(np.arange(len(labels)), test)
    return images, labels, train, test


def digits_split() -> tuple[torch.Tensor, torch.Tensor, StimulusSet]:
    """The fixed digits split: (train images N x 1 x 8 x 8, train labels, 500-image stimulus set).

    The stimulus set holds the first 50 images of each class in scikit-learn's order, sorted by
    class then original index; the other 1,297 images are the train set.
    """
    import torch

    images, labels, train, test = _digits_arrays()
    return (torch.from_numpy(images[train].copy()), torch.from_numpy(labels[train].copy()),
            _digits_set())


@lru_cache(maxsize=1)
def _digits_set() -> StimulusSet:
    images, labels, _, test = _digits_arrays()
    return make_stimulus_set("digits", images[test], labels[test], [str(c) for c in range(10)],
                             [f"digits-{i}" for i in test])


# --- torchvision datasets on disk ---------------------------------------------------------------

def data_root() -> Path:
    """Where torchvision datasets are looked for: ``REPSCOPE_DATA_ROOT``, else ``<cache_dir>/data``."""
    given = os.environ.get("REPSCOPE_DATA_ROOT", "").strip()
    if given:
        return Path(given).expanduser().resolve()
    from compute.settings import get_settings

    return get_settings().cache_dir / "data"


def _open_torchvision(dataset: str, train: bool, root: Path, download: bool):
    import torchvision

    if dataset not in TORCHVISION_SETS:
        raise ValueError(f"unknown torchvision dataset {dataset!r}; choose one of {sorted(TORCHVISION_SETS)}")
    cls = getattr(torchvision.datasets, TORCHVISION_SETS[dataset])
    try:
        return cls(str(root), train=train, download=download)
    except RuntimeError as error:
        where = root / TORCHVISION_SETS[dataset]
        if dataset.startswith("cifar"):
            where = root
        raise FileNotFoundError(
            f"{dataset} is not on disk: looked in {where} ({error}). Put the dataset under the data "
            f"root (set REPSCOPE_DATA_ROOT, now {root}) or download it once with "
            f"get_stimulus_set({dataset!r}, download=True) or "
            f"torchvision.datasets.{TORCHVISION_SETS[dataset]}({str(root)!r}, download=True)"
        ) from None


def _dataset_arrays(data) -> tuple[torch.Tensor, np.ndarray]:
    """(images N x C x H x W float32 in [0, 1], labels) from a torchvision dataset's raw arrays."""
    import torch

    raw = data.data
    raw = raw.numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw)
    images = torch.from_numpy(raw.astype(np.float32) / 255.0)
    images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
    targets = data.targets
    labels = targets.numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    return images.contiguous(), labels.astype(np.int64)


def _per_class(labels: np.ndarray, n_per_class: int | None, seed: int, num_classes: int) -> np.ndarray:
    """Indices of up to n per class drawn with ``seed``, sorted by class then index."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if n_per_class is not None and len(members) > n_per_class:
            members = np.sort(rng.choice(members, size=n_per_class, replace=False))
        chosen.append(members)
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _options_name(base: str, options: dict, defaults: dict) -> str:
    extra = {k: v for k, v in options.items() if v != defaults.get(k)}
    return base + ("?" + urlencode(sorted(extra.items())) if extra else "")


def torchvision_set(dataset: str, n_per_class: int = DEFAULT_PER_CLASS, seed: int = 0,
                    root: str | Path | None = None, download: bool = False) -> StimulusSet:
    """``n_per_class`` test-split images per class of a torchvision dataset already on disk."""
    root = Path(root).expanduser().resolve() if root else data_root()
    return _torchvision_set(dataset, int(n_per_class), int(seed), root, bool(download))


@lru_cache(maxsize=8)
def _torchvision_set(dataset: str, n_per_class: int, seed: int, root: Path, download: bool) -> StimulusSet:
    data = _open_torchvision(dataset, False, root, download)
    images, labels = _dataset_arrays(data)
    classes = list(data.classes)
    chosen = _per_class(labels, n_per_class, seed, len(classes))
    name = _options_name(dataset, {"n_per_class": n_per_class, "seed": seed},
                         {"n_per_class": DEFAULT_PER_CLASS, "seed": 0})
    return make_stimulus_set(name, images[chosen], labels[chosen], classes,
                             [f"{dataset}-test-{i}" for i in chosen])


def dataset_split(dataset: str, n_per_class: int = DEFAULT_PER_CLASS, train_per_class: int | None = 500,
                  seed: int = 0, root: str | Path | None = None,
                  download: bool = False) -> tuple[torch.Tensor, torch.Tensor, StimulusSet]:
    """(train images, train labels, stimulus set) for training the zoo on any supported dataset.

    ``"digits"`` gives :func:`digits_split`; torchvision datasets take ``train_per_class`` images
    per class from the train split (None: all) and the stimulus set from the test split.
    """
    import torch

    if dataset == "digits":
        return digits_split()
    stimuli = torchvision_set(dataset, n_per_class, seed, root, download)
    data = _open_torchvision(dataset, True, Path(root).resolve() if root else data_root(), download)
    images, labels = _dataset_arrays(data)
    chosen = _per_class(labels, train_per_class, seed, len(data.classes))
    return images[chosen].contiguous(), torch.from_numpy(labels[chosen]), stimuli


# --- image folders -----------------------------------------------------------------------------

def image_folder(path: str | Path, n_per_class: int | None = None, seed: int = 0,
                 size: int | None = None) -> StimulusSet:
    """Images in class sub-folders (``path/<class>/<image>``), sorted by class then file name;
    or, in a folder with a stimulus list (``stimuli.json``), the images it lists in its order,
    with its classes and tags.

    All images are read with PIL; grayscale folders give 1 channel, anything else RGB. Images of
    one common size keep it; otherwise (or when ``size`` is given) each is centre-cropped to a
    square and resized to ``size`` (default 224). ``n_per_class`` draws that many per class
    with ``seed``. Raises ``ValueError`` for a missing or empty folder, a single class, empty
    class folders or unreadable files (all named). A folder of the registry (under a data root,
    or uploaded) is named and described by its registry name, any other by its path: that name
    no request or job accepts.
    """
    root = Path(path).expanduser().resolve()
    return _image_folder(root, registered_name(root) or f"folder:{root}", n_per_class, seed, size)


def _image_folder(root: Path, base: str, n_per_class: int | None, seed: int, size: int | None) -> StimulusSet:
    """The image folder at ``root`` (resolved), called ``base`` in its name and its messages."""
    import torch
    from PIL import Image, UnidentifiedImageError

    label = base.removeprefix("folder:") if base == f"folder:{root}" else base
    if not root.is_dir():
        raise ValueError(f"image folder {label} does not exist or is not a folder")
    listed = read_manifest(root, label)
    if listed is not None:
        keep = listed.chosen(n_per_class, seed)
        paths, labels = [root / listed.files[i] for i in keep], [listed.labels[i] for i in keep]
        class_names, tags = list(listed.classes), {k: [v[i] for i in keep] for k, v in listed.tags.items()}
    else:
        paths, labels, class_names = _class_folders(root, label, n_per_class, seed)
        tags = None
    pictures, unreadable = [], []
    for file in paths:
        try:
            with Image.open(file) as image:
                image.load()
                pictures.append(image.copy())
        except (UnidentifiedImageError, OSError, ValueError) as error:
            unreadable.append(f"{file.relative_to(root)} ({type(error).__name__})")
    if unreadable:
        shown = "; ".join(unreadable[:10]) + (f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
        raise ValueError(f"image folder {label} has {len(unreadable)} unreadable image files: {shown}")
    gray = all(p.mode in ("L", "1", "I;16", "I", "F") for p in pictures)
    pictures = [p.convert("L" if gray else "RGB") for p in pictures]
    sizes = {p.size for p in pictures}
    if size is not None or len(sizes) > 1:
        side = int(size or DEFAULT_FOLDER_SIZE)
        pictures = [_square(p, side) for p in pictures]
    arrays = np.stack([np.asarray(p, dtype=np.float32) / 255.0 for p in pictures])
    images = torch.from_numpy(arrays[:, None] if gray else arrays.transpose(0, 3, 1, 2).copy())
    name = _options_name(base, {"n_per_class": n_per_class, "seed": seed, "size": size},
                         {"n_per_class": None, "seed": 0, "size": None})
    return make_stimulus_set(name, images, labels, class_names,
                             [str(p.relative_to(root)) for p in paths], tags)


def _class_folders(root: Path, label: str, n_per_class: int | None, seed: int):
    """(paths, labels, classes) of class sub-folders, sorted by class then file name."""
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"image folder {label} is empty: it needs one sub-folder of images per class")
    files = {d.name: sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith("."))
             for d in class_dirs}
    empty = [name for name, fs in files.items() if not fs]
    if empty:
        raise ValueError(f"image folder {label} has empty class folders: {', '.join(empty)}")
    if len(class_dirs) < 2:
        raise ValueError(f"image folder {label} has only one class ({class_dirs[0].name}); "
                         "a stimulus set needs at least two class sub-folders")
    class_names = list(files)
    paths, labels = [], []
    rng = np.random.default_rng(seed)
    for label_index, name in enumerate(class_names):
        chosen = files[name]
        if n_per_class is not None and len(chosen) > n_per_class:
            chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), n_per_class, replace=False))]
        paths += chosen
        labels += [label_index] * len(chosen)
    return paths, labels, class_names


def _square(picture, side: int):
    from PIL import Image

    w, h = picture.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return picture.crop((left, top, left + s, top + s)).resize((side, side), Image.BILINEAR)


# --- one entry point -------------------------------------------------------------------------

def list_stimulus_sets() -> list[str]:
    """Every name the registry offers: digits, the torchvision sets on disk, the image folders
    under ``REPSCOPE_DATA_ROOTS`` and the uploaded sets."""
    return ["digits", *(d for d in TORCHVISION_SETS if _on_disk(d)), *folder_sets(), *upload_sets()]


def _on_disk(dataset: str) -> bool:
    try:
        torchvision_set(dataset)
    except FileNotFoundError:
        return False
    return True


def get_stimulus_set(name: str = "digits", **options) -> StimulusSet:
    """The stimulus set called ``name`` (a registry name, see :mod:`~compute.sources.stimulus_names`),
    with options given as keywords or in the name.

    ``"digits"``; ``"mnist" | "fashionmnist" | "cifar10" | "cifar100"`` (options ``n_per_class``,
    ``seed``, and as keywords only ``root``, ``download``); ``"folder:<root>/<set>"`` and
    ``"upload:<sha256>"`` (options ``n_per_class``, ``seed``, ``size``).
    ``"mnist?n_per_class=20"`` equals ``get_stimulus_set("mnist", n_per_class=20)``. A name the
    registry does not list raises :class:`UnknownStimulusSet`; a torchvision set not on disk,
    ``FileNotFoundError`` saying where it was looked for (for the operator: requests and jobs
    use :func:`stimulus_set_named`).
    """
    source = resolve(name)
    options = {**source.options, **options}
    if source.kind == "digits":
        if options:
            raise ValueError(f"the digits set takes no options, got {sorted(options)}")
        return _digits_set()
    if source.kind == "torchvision":
        unknown = set(options) - {"n_per_class", "seed", "root", "download"}
        if unknown:
            raise ValueError(f"unknown options for {source.base}: {sorted(unknown)}")
        return torchvision_set(source.base, **options)
    unknown = set(options) - {"n_per_class", "seed", "size"}
    if unknown:
        raise ValueError(f"unknown options for an image folder: {sorted(unknown)}")
    return _image_folder(source.path.resolve(), source.base, options.get("n_per_class"), options.get("seed", 0),
                         options.get("size"))


def stimulus_set_named(name) -> StimulusSet:
    """The registry's stimulus set called ``name``: what requests and jobs use. Anything else
    (a path, an option naming one, a torchvision set not on disk, a made-up name) raises
    :class:`UnknownStimulusSet`, one message whatever was asked, before any image is read."""
    try:
        return get_stimulus_set(name)
    except FileNotFoundError:
        raise UnknownStimulusSet() from None


def is_listed(name) -> bool:
    """Whether ``name`` is a set of the registry (options included), without reading its images
    (a torchvision set is opened once to see that it is on disk)."""
    try:
        source = resolve(name)
    except UnknownStimulusSet:
        return False
    return source.kind != "torchvision" or _on_disk(source.base)
