"""A cold model-space plan runs its models in batches (compute/engine/batches.py): on both
backends it leaves exactly the artifacts, keys and arrays, that one job per model leaves, and
a cancel stops it between models with every model's artifacts whole."""
from __future__ import annotations

import json

import numpy as np

from compute.engine import artifacts
from compute.engine.store import ArtifactStore
from dashboard.view_parts.model_map import MAP_DEFAULTS, map_specs
from tests.integration.backends import stimuli
from tests.integration.backends import backend  # noqa: F401 - the fixture
from tests.support import wait_until


def _stored(store: ArtifactStore) -> dict[tuple[str, str], np.ndarray]:
    return {(path.parent.parent.name, path.stem): np.load(path) for path in store.root.glob("*/??/*.npy")}


def _two_kins(count: int = 3):
    """``count`` digits zoo models of each of two architectures (kin: architecture and
    hyperparameters), interleaved, so that a batch has to gather them."""
    from compute.sources.models import list_models

    kins: dict[str, list] = {}
    for info in list_models("digits"):
        kins.setdefault(f"{info.architecture} {json.dumps(info.hparams, sort_keys=True)}", []).append(info)
    first, second = (models[:count] for models in list(kins.values())[:2])
    return [model for pair in zip(first, second) for model in pair]


def test_a_cold_plan_leaves_the_artifacts_of_one_job_per_model(backend, tmp_path):
    models = _two_kins()
    matrix, mds = map_specs(models, stimuli(), MAP_DEFAULTS)
    alone = ArtifactStore(tmp_path / "alone")
    for model in models:  # one job per model: its activations and RDM, its module built for it
        artifacts.ensure(artifacts.rdm_spec(model.key, stimuli()), alone)
    expected = _stored(alone)
    assert len(expected) == 2 * len(models)

    backend.compute(mds, timeout=300)
    stored = _stored(backend.store)
    assert set(stored) == set(expected) | {("model_rdm", matrix.key), ("mds", mds.key)}
    for name, array in expected.items():
        assert stored[name].dtype == array.dtype and np.array_equal(stored[name], array), name
    assert not list(backend.store.root.rglob("*.tmp"))


def test_a_cancel_stops_the_batch_between_models_and_a_resubmission_computes_only_the_rest(backend):
    from compute.sources.models import list_models

    models = list_models("digits")
    _, mds = map_specs(models, stimuli(), MAP_DEFAULTS)
    backend.submit(mds)
    # A model's activations and RDM are 2 of its 226 steps: past 1 %, a model is made.
    wait_until(lambda: (backend.records.get(mds.key) or {}).get("progress", 0) > 0.01, 180, "a model made")
    backend.cancel(mds.key)
    final = wait_until(lambda: (s := backend.status(mds.key))["state"] not in ("queued", "running") and s,
                       120, "the cancel")
    assert final["state"] == "cancelled", final

    names = set(_stored(backend.store))
    made = {key for kind, key in names if kind == "activations"}
    rdms = {spec.inputs[0].key for spec in mds.inputs[0].inputs if ("rdm", spec.key) in names}
    assert rdms == made and 0 < len(made) < len(models)  # stopped mid-way, each model's pair whole
    assert not list(backend.store.root.rglob("*.tmp"))
    files = {path: path.stat().st_mtime_ns for path in backend.store.root.glob("*/??/*.npy")}

    backend.compute(mds, timeout=300)
    assert len(_stored(backend.store)) == 2 * len(models) + 2
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in files.items())  # none made again
