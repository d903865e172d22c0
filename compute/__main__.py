"""Command line: ``python -m compute precompute ...`` warms the cache for a sweep.

It submits every model RDM (and its MDS) of the sweep to the configured backend (Celery when
``REDIS_URL`` is set, else the embedded pool) and shows a progress bar until all are done.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def sweep_specs(models, stimuli, layers, poolings, rdm_methods, compare_methods, mds_method="smacof"):
    """One MDS spec (with its model RDM and everything below) per combination of the sweep."""
    from compute.engine import artifacts

    keys = [m.key for m in models]
    for layer, pooling, rdm_method, compare in itertools.product(layers, poolings, rdm_methods, compare_methods):
        matrix = artifacts.model_rdm_spec(keys, stimuli, layer, pooling, rdm_method, compare)
        yield artifacts.mds_spec(matrix, method=mds_method)


def precompute(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m compute precompute", description=__doc__)
    parser.add_argument("--stimuli", default="digits")
    parser.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--layers", default="penultimate", help="comma-separated layer names")
    parser.add_argument("--pooling", default="none", help="none, avg or proj:<k> (comma-separated)")
    parser.add_argument("--rdm", default="correlation", help="input RDM methods (comma-separated)")
    parser.add_argument("--compare", default="spearman", help="RDM comparison methods (comma-separated)")
    parser.add_argument("--timeout", type=float, default=24 * 3600)
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from compute.engine.jobs import make_backend
    from compute.engine.limits import LimitExceeded
    from compute.sources.models import list_models
    from compute.sources.stimuli import get_stimulus_set

    stimuli = get_stimulus_set(args.stimuli)
    models = list_models(args.stimuli)
    if args.models != "all":
        wanted = set(_csv(args.models))
        unknown = wanted - {m.name for m in models}
        if unknown:
            shown = ", ".join(m.name for m in models[:5]) + (", ..." if len(models) > 5 else "")
            parser.error(f"unknown models: {', '.join(sorted(unknown))}; {len(models)} models fit "
                         f"the stimulus set {args.stimuli!r} ({shown}); list them with "
                         "compute.sources.models.list_models()")
        models = [m for m in models if m.name in wanted]
    if len(models) < 3:
        parser.error(f"a model map needs at least 3 models (its MDS places them in 2-D); got {len(models)}: "
                     f"{', '.join(m.name for m in models) or 'none'}")
    backend = make_backend()
    specs = list(sweep_specs(models, stimuli, _csv(args.layers), _csv(args.pooling),
                             _csv(args.rdm), _csv(args.compare)))
    try:
        keys = [backend.submit(spec) for spec in specs]
    except LimitExceeded as error:
        backend.close()
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = []
    deadline = time.monotonic() + args.timeout
    with tqdm(total=len(keys), desc=f"precompute ({backend.name})", unit="job", file=sys.stderr) as bar:
        pending = set(keys)
        while pending and time.monotonic() < deadline:
            for key in list(pending):
                status = backend.status(key)
                if status["state"] in ("done", "failed", "cancelled"):
                    pending.discard(key)
                    bar.update(1)
                    if status["state"] != "done":
                        failed.append(f"{key}: {status['state']}: {status['message']}")
            time.sleep(0.2)
    backend.close()
    for line in failed:
        print(line, file=sys.stderr)
    if pending:
        print(f"{len(pending)} jobs still running after {args.timeout} s", file=sys.stderr)
    return 1 if failed or pending else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"precompute": precompute}
    if not argv or argv[0] not in commands:
        print("usage: python -m compute precompute [options]   (--help for options)", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
