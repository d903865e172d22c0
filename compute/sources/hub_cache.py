"""The local Hugging Face hub cache, read as files: which repositories it holds and where a file is.

timm and transformers keep downloaded weights under ``$HF_HUB_CACHE`` (default
``$HF_HOME/hub``, ``~/.cache/huggingface/hub``) as ``models--<org>--<name>/snapshots/<commit>/``
with ``refs/main`` naming the commit. RepScope only reads what is there; it never downloads. The
environment is read at each call, so a test or an operator can point it elsewhere at run time.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def hub_dir() -> Path:
    """The hub cache folder the environment names now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def snapshot(repo_id: str) -> Path | None:
    """The folder of ``repo_id``'s cached snapshot (``refs/main``'s commit, else the newest one),
    or None when the cache has none. ``repo_id`` is ``org/name`` (or ``name``), never a path."""
    if not _REPO_ID.fullmatch(repo_id or "") or ".." in repo_id:
        return None
    folder = hub_dir() / ("models--" + repo_id.replace("/", "--"))
    ref = folder / "refs" / "main"
    if ref.is_file():
        found = folder / "snapshots" / ref.read_text().strip()
        return found if found.is_dir() else None
    snapshots = [p for p in (folder / "snapshots").glob("*") if p.is_dir()]
    return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None


def cached_file(repo_id: str, filename: str) -> Path | None:
    """``filename`` of ``repo_id``'s cached snapshot, or None when it is not in the cache."""
    folder = snapshot(repo_id)
    found = folder / filename if folder is not None else None
    return found if found is not None and found.is_file() else None


def cached_repos() -> list[str]:
    """Repository ids (``org/name``) of the models in the cache, sorted."""
    root = hub_dir()
    if not root.is_dir():
        return []
    ids = (p.name[len("models--"):].replace("--", "/", 1) for p in root.glob("models--*") if p.is_dir())
    return sorted(i for i in ids if snapshot(i) is not None)
