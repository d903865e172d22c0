"""A stimulus set kept in its own order: a folder of images beside a ``stimuli.json`` listing them.

Image folders are read in class-folder order; a set whose order matters (a published set whose
RDMs are in the file's order, such as Kriegeskorte et al. 2008's 92 images) lists its images
instead: ``{"files": ["001.png", ...], "labels": [0, ...], "classes": ["human bodypart", ...],
"tags": {"animal": [1, ...], ...}}``, one entry per image in order. ``labels`` index ``classes``;
each tag is one number or short text per image. Files are plain names inside the folder. Torch-free.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MANIFEST = "stimuli.json"
_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}")
MAX_TAG_TEXT = 200


@dataclass(frozen=True)
class Manifest:
    """Images (``files``) in order, each one's class (``labels`` into ``classes``) and ``tags``."""

    files: list[str]
    labels: list[int]
    classes: list[str]
    tags: dict[str, list] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.files)
        if not n:
            raise ValueError("a stimulus list needs at least one image")
        bad = next((f for f in self.files if not isinstance(f, str) or not _FILE.fullmatch(f) or ".." in f), None)
        if bad is not None:
            raise ValueError(f"the stimulus list names {bad!r}, not a plain file name inside its folder")
        if len(set(self.files)) != n:
            raise ValueError("the stimulus list names a file twice")
        if len(self.labels) != n or not all(isinstance(c, int) and 0 <= c < len(self.classes) for c in self.labels):
            raise ValueError(f"the stimulus list needs one class index in [0, {len(self.classes)}) per image")
        if not all(isinstance(c, str) and c for c in self.classes) or len(set(self.classes)) != len(self.classes):
            raise ValueError("the stimulus list's classes must be distinct, non-empty names")
        for name, values in self.tags.items():
            if not isinstance(name, str) or not name or not isinstance(values, list) or len(values) != n:
                raise ValueError(f"tag {name!r} of the stimulus list needs one value per image ({n})")
            for value in values:
                if not _tag_value(value):
                    raise ValueError(f"tag {name!r} has the value {value!r}; a tag is a finite number or a short text")


    def chosen(self, n_per_class: int | None = None, seed: int = 0) -> list[int]:
        """Indices of the images kept: all, or ``n_per_class`` of each class drawn with ``seed``,
        in the list's order either way."""
        if n_per_class is None:
            return list(range(len(self.files)))
        rng, labels = np.random.default_rng(seed), np.asarray(self.labels)
        keep = []
        for c in range(len(self.classes)):
            members = np.flatnonzero(labels == c)
            keep += (rng.choice(members, n_per_class, replace=False) if len(members) > n_per_class else members).tolist()
        return sorted(keep)


def _tag_value(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_TAG_TEXT


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest`` as ``folder/stimuli.json`` (0600); its images must be there already."""
    import os

    missing = [f for f in manifest.files if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"the stimulus list names missing images: {', '.join(missing[:5])}")
    data = json.dumps({"files": manifest.files, "labels": manifest.labels, "classes": manifest.classes,
                       "tags": manifest.tags}).encode()
    with os.fdopen(os.open(folder / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(data)


def read_manifest(folder: Path, label: str) -> Manifest | None:
    """The stimulus list of ``folder`` (called ``label`` in messages); None when it has none."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        manifest = Manifest(list(data["files"]), list(data["labels"]), list(data["classes"]), dict(data.get("tags", {})))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"the stimulus list of {label} is malformed ({error})") from None
    missing = [f for f in manifest.files if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{label} lists {len(missing)} missing images: {', '.join(missing[:5])}")
    return manifest
