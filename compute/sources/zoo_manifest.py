"""A built zoo on disk: ``<zoo_dir>/<dataset>/`` holds one ``.safetensors`` per model and a
``manifest.json`` listing them (:class:`ZooEntry`), written last.

Reading a manifest needs no torch, so the web process lists the zoo without it. A folder whose
manifest is missing, unreadable or of another :data:`ZOO_VERSION` is not a built zoo.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

ZOO_VERSION = 1
DATASETS = ("digits", "mnist", "fashionmnist", "cifar10")


@dataclass
class ZooEntry:
    """One model of the zoo, as recorded in its manifest."""

    name: str
    architecture: str
    hparams: dict
    tags: dict
    key: str
    accuracy: float
    top5: float
    train_accuracy: float  # on the labels it was trained on (shuffled ones for memorising models)
    num_classes: int
    file: str
    dataset: str = "digits"
    path: Path | None = field(default=None, compare=False)


def zoo_path(dataset: str = "digits") -> Path:
    from compute.settings import get_settings

    return get_settings().zoo_dir / dataset


def _with_path(entry: ZooEntry, directory: Path) -> ZooEntry:
    entry.path = directory / entry.file
    return entry


def write_manifest(directory: Path, dataset: str, stimuli, entries: list[ZooEntry]) -> list[ZooEntry]:
    """Write ``manifest.json`` for ``entries`` trained on ``dataset`` and evaluated on ``stimuli``
    (a StimulusSet); return the entries with their file paths in ``directory``."""
    import torch

    manifest = {"version": ZOO_VERSION, "dataset": dataset, "stimuli": stimuli.name,
                "stimuli_key": stimuli.key, "torch": torch.__version__,
                "models": [{k: v for k, v in asdict(e).items() if k != "path"} for e in entries]}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return [_with_path(e, directory) for e in entries]


_MANIFESTS: dict[tuple[str, int], list[ZooEntry]] = {}


def load_manifest(directory: str | Path) -> list[ZooEntry] | None:
    """The entries of a built zoo folder, or None when it is missing, partial or outdated."""
    path = Path(directory) / "manifest.json"
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    cached = _MANIFESTS.get((str(path), stamp))
    if cached is not None:
        return cached
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != ZOO_VERSION:
        return None
    entries = [_with_path(ZooEntry(**m), path.parent) for m in manifest["models"]]
    _MANIFESTS[(str(path), stamp)] = entries
    return entries
