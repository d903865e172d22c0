"""Configuration from environment variables, read in one place.

Every setting has a safe default for one machine: the embedded job backend, a private
cache directory next to the code, and the server bound to 127.0.0.1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} must be an integer") from None


def _at_least(name: str, default: int, smallest: int) -> int:
    value = _int(name, default)
    if value < smallest:
        raise ValueError(f"environment variable {name}={value} must be at least {smallest}")
    return value


@dataclass(frozen=True)
class Settings:
    """A snapshot of the configuration; call :func:`get_settings` for the current one."""

    cache_dir: Path = field(default_factory=lambda: ROOT / "cache")
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8050
    workers: int = 1
    device: str = "auto"
    cache_max_bytes: int = 20 * 2**30
    job_time_limit_s: int = 6 * 3600
    memory_budget_bytes: int = 16 * 2**30  # per job, pre-flight estimate; 0 = no limit
    jobs_per_client: int = 8  # queued or running jobs one client may have started; 0 = no limit
    # Uncached work whose estimated memory (summed over its steps) is above this waits for the
    # view's "Compute" button; 0 = always ask.
    auto_compute_bytes: int = 2 * 2**30
    # ... or whose estimated time is above this many seconds; 0 = always ask.
    auto_compute_seconds: float = 30.0
    # Jobs estimated longer than this run in the long lane, so that short interactive jobs never
    # wait behind them (embedded: a pool of its own; Celery: the queues "<queue>-long").
    long_job_seconds: float = 20.0
    rdm_max_side: int = 1000  # an input RDM is drawn as at most this many blocks per side

    zoo_dir_override: Path | None = None
    upload_dir_override: Path | None = None
    max_upload_bytes: int = 2 * 2**30
    upload_memory_bytes: int = 4 * 2**30
    upload_time_limit_s: int = 600
    # Unfinished (partial) uploads: how many one client may have, and how many bytes all of them
    # may hold together; 0 = no limit. They expire after PARTIAL_UPLOAD_EXPIRY_S without progress.
    partial_uploads_per_client: int = 4
    partial_upload_bytes: int = 8 * 2**30
    url_prefix: str = "/"
    # Directories whose sub-folders of class folders are stimulus sets, chosen by name only
    # (compute/sources/stimulus_names.py); nothing else on disk is ever read as stimuli.
    data_roots: tuple[Path, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # host names a request may name, besides localhost and `host`
    max_request_bytes: int = 4 * 2**20  # largest request body but an upload chunk's

    @property
    def zoo_dir(self) -> Path:
        """Where the built-in zoo lives: ``REPSCOPE_ZOO_DIR``, else ``<cache_dir>/zoo``."""
        return self.zoo_dir_override or self.cache_dir / "zoo"

    @property
    def upload_dir(self) -> Path:
        """Where uploads are kept (0700): ``REPSCOPE_UPLOAD_DIR``, else ``<cache_dir>/uploads``,
        apart from the artifact store, whose files are trusted."""
        return self.upload_dir_override or self.cache_dir / "uploads"

    @property
    def artifacts_dir(self) -> Path:
        return self.cache_dir / "artifacts"

    @property
    def jobs_dir(self) -> Path:
        return self.cache_dir / "jobs"


def get_settings() -> Settings:
    """Read the settings from the environment now (tests change it between calls)."""
    env = os.environ
    return Settings(
        cache_dir=Path(env.get("REPSCOPE_CACHE_DIR") or ROOT / "cache").resolve(),
        redis_url=env.get("REDIS_URL", "").strip(),
        host=env.get("REPSCOPE_HOST", "127.0.0.1"),
        port=_int("REPSCOPE_PORT", 8050),
        workers=max(1, _int("REPSCOPE_WORKERS", 1)),
        device=env.get("REPSCOPE_DEVICE", "auto"),
        cache_max_bytes=_int("REPSCOPE_CACHE_MAX_BYTES", 20 * 2**30),
        job_time_limit_s=_int("REPSCOPE_JOB_TIME_LIMIT", 6 * 3600),
        memory_budget_bytes=max(0, _int("REPSCOPE_MEMORY_BUDGET_BYTES", 16 * 2**30)),
        jobs_per_client=max(0, _int("REPSCOPE_JOBS_PER_CLIENT", 8)),
        auto_compute_bytes=max(0, _int("REPSCOPE_AUTO_COMPUTE_BYTES", 2 * 2**30)),
        auto_compute_seconds=max(0, _int("REPSCOPE_AUTO_COMPUTE_SECONDS", 30)),
        long_job_seconds=max(0, _int("REPSCOPE_LONG_JOB_SECONDS", 20)),
        rdm_max_side=max(10, _int("REPSCOPE_RDM_MAX_SIDE", 1000)),
        zoo_dir_override=Path(env["REPSCOPE_ZOO_DIR"]).resolve() if env.get("REPSCOPE_ZOO_DIR") else None,
        upload_dir_override=Path(env["REPSCOPE_UPLOAD_DIR"]).resolve() if env.get("REPSCOPE_UPLOAD_DIR") else None,
        max_upload_bytes=_int("REPSCOPE_MAX_UPLOAD_BYTES", 2 * 2**30),
        upload_memory_bytes=_int("REPSCOPE_UPLOAD_MEMORY_BYTES", 4 * 2**30),
        upload_time_limit_s=_int("REPSCOPE_UPLOAD_TIME_LIMIT", 600),
        partial_uploads_per_client=max(0, _int("REPSCOPE_PARTIAL_UPLOADS_PER_CLIENT", 4)),
        partial_upload_bytes=max(0, _int("REPSCOPE_PARTIAL_UPLOAD_BYTES", 8 * 2**30)),
        url_prefix=_prefix(env.get("REPSCOPE_URL_PREFIX", "")),
        data_roots=tuple(Path(p.strip()).expanduser().resolve() for p in env.get("REPSCOPE_DATA_ROOTS", "").split(os.pathsep)
                         if p.strip()),
        allowed_hosts=tuple(h.strip() for h in env.get("REPSCOPE_ALLOWED_HOSTS", "").split(",") if h.strip()),
        max_request_bytes=_at_least("REPSCOPE_MAX_REQUEST_BYTES", 4 * 2**20, 2**16),
    )


def upload_dir(create: bool = True) -> Path:
    """The uploads directory (``REPSCOPE_UPLOAD_DIR``), created private (0700)."""
    directory = get_settings().upload_dir
    return private_dir(directory) if create else directory


def private_dir(path: Path, tighten: bool = True) -> Path:
    """``path`` as a directory only its owner may enter: created 0700 with every missing parent
    (also 0700: ``mkdir(parents=True)`` would make those 0777 less the umask), whatever the
    umask. With ``tighten``, an existing ``path`` of ours is made 0700 too (a folder of the app's
    data created by an older version); a folder the operator chose (the cache root) is not."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile: it is theirs to set
            continue
        os.chmod(directory, 0o700)
    target = missing[0] if missing else path
    if tighten and not missing:
        status = target.stat()
        if status.st_uid == os.getuid() and status.st_mode & 0o077:
            os.chmod(target, 0o700)
    return target


def format_bytes(size: float) -> str:
    """A size for people: ``"812 bytes"``, ``"293 KiB"``, ``"64.0 MiB"``, ``"7.5 GiB"`` (three
    significant digits at most, binary units). Every message that shows a size uses it."""
    size = float(size)
    if abs(size) < 1024:
        return f"{size:.0f} byte{'' if size == 1 else 's'}"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}" if abs(size) < 99.95 else f"{size:.0f} {unit}"


def _prefix(raw: str) -> str:
    """``"repscope"`` or ``"/repscope"`` -> ``"/repscope/"``; empty -> ``"/"``."""
    parts = [p for p in raw.strip().split("/") if p]
    if any(p in (".", "..") or not all(c.isalnum() or c in "-_." for c in p) for p in parts):
        raise ValueError(f"REPSCOPE_URL_PREFIX={raw!r} must be a path like /repscope (letters, digits, - _ .)")
    return "/" + "".join(p + "/" for p in parts)
