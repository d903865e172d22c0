"""The built-in zoo of a dataset, built once: read from its manifest when built, else trained now.

A build goes into a temporary folder renamed into place, under an exclusive lock, so two
processes starting at once build it once and a half-built zoo is never taken as built. Only a
build imports torch.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from compute.sources.files import exclusive_lock
from compute.sources.zoo_manifest import DATASETS, ZooEntry, load_manifest, zoo_path


def ensure_zoo(dataset: str = "digits", progress: bool = True, force: bool = False) -> list[ZooEntry]:
    """The zoo of ``dataset``: loaded from its manifest when built, else built now (and cached)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown zoo dataset {dataset!r}; choose one of {list(DATASETS)}")
    target = zoo_path(dataset)
    if not force:
        entries = load_manifest(target)
        if entries is not None:
            return entries
    with exclusive_lock(target.parent / f".{dataset}.lock"):
        if not force:
            entries = load_manifest(target)  # another process may have built it meanwhile
            if entries is not None:
                return entries
        from compute.sources import zoo_training

        tmp = Path(tempfile.mkdtemp(prefix=f".{dataset}-building-", dir=target.parent))
        try:
            zoo_training.build_zoo(dataset, tmp, progress=progress)
            if target.exists():
                old = target.with_name(f".{dataset}-old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    entries = load_manifest(target)
    if entries is None:
        raise RuntimeError(f"the zoo was built but {target}/manifest.json cannot be read")
    return entries
