"""``python -m compute.zoo build --dataset digits [--force] [--quiet]``: the command that builds
the built-in model zoo (:func:`compute.sources.zoo_cache.ensure_zoo`) and reports it."""
from __future__ import annotations

import argparse
import sys
import time

from compute.sources.zoo_cache import ensure_zoo
from compute.sources.zoo_manifest import DATASETS, zoo_path


def main(argv: list[str] | None = None) -> int:
    """``python -m compute.zoo build --dataset digits [--force] [--quiet]``."""
    parser = argparse.ArgumentParser(prog="python -m compute.zoo", description="Build the built-in model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="train and cache the zoo of one dataset")
    build.add_argument("--dataset", default="digits", choices=DATASETS)
    build.add_argument("--force", action="store_true", help="rebuild even when it is cached")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    try:
        entries = ensure_zoo(args.dataset, progress=not args.quiet, force=args.force)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    accuracy = [e.accuracy for e in entries]
    groups: dict[str, int] = {}
    for e in entries:
        groups[e.tags["group"]] = groups.get(e.tags["group"], 0) + 1
    print(f"{len(entries)} models in {zoo_path(args.dataset)} ({time.perf_counter() - start:.1f} s); "
          f"groups {groups}; accuracy {min(accuracy):.3f} to {max(accuracy):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
