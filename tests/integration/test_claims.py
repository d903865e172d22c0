"""Two jobs needing the same artifacts at once make each of them once: the second waits on the
first one's claim (compute/engine/claims.py), then reads what it made. Run in two real
processes on one store, as two workers or lanes run them; a claim's holder killed mid-job
blocks nobody."""
from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
import threading
import time

import pytest

from compute.engine import artifacts
from compute.engine.claims import claim
from compute.engine.recipes import Cancelled, Context
from compute.engine.store import ArtifactStore
from dashboard.view_parts.model_map import MAP_DEFAULTS, map_specs
from tests.integration.backends import stimuli

_SPAWN = multiprocessing.get_context("spawn")


def _ensure_counting(spec, root: str, log: str, start) -> None:
    """``ensure(spec)`` in this process, appending to ``log`` one line per artifact a recipe
    makes (the recipes themselves run as they are) and its progress messages."""
    from compute.engine import kinds

    def counted(recipe):
        def run(spec_or_specs, *args, **kwargs):
            made = spec_or_specs if isinstance(spec_or_specs, list) else [spec_or_specs]
            with open(log, "a") as handle:
                handle.write("".join(json.dumps({"made": [s.kind, s.key]}) + "\n" for s in made))
            return recipe(spec_or_specs, *args, **kwargs)
        return run

    for name, kind in list(kinds.KINDS.items()):
        kinds.KINDS[name] = dataclasses.replace(kind, recipe=counted(kind.recipe))

    def report(fraction, message):
        with open(log, "a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "message": message}) + "\n")

    start.wait(120)
    artifacts.ensure(spec, ArtifactStore(root), Context(report=report))


def test_two_jobs_needing_the_same_artifacts_make_each_once(cache_dir, zoo_dir, tmp_path):
    from compute.sources.models import list_models

    _, mds = map_specs(list_models("digits")[:6], stimuli(), MAP_DEFAULTS)  # 6 activations, 6 RDMs, stack, MDS
    log, start = tmp_path / "log.jsonl", _SPAWN.Event()
    jobs = [_SPAWN.Process(target=_ensure_counting, args=(mds, str(tmp_path / "store"), str(log), start))
            for _ in range(2)]
    for job in jobs:
        job.start()
    time.sleep(1.0)  # both imported and waiting
    start.set()
    for job in jobs:
        job.join(300)
    assert [job.exitcode for job in jobs] == [0, 0]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    made = [tuple(line["made"]) for line in lines if "made" in line]
    expected = {(s.kind, s.key) for s in mds.walk()}
    assert sorted(made) == sorted(expected)  # each once, by one job or the other
    assert len(expected) == 14
    assert any(line.get("message", "").startswith("waiting for another job making the same") for line in lines)
    store = ArtifactStore(tmp_path / "store")
    assert all(store.has(kind, key) for kind, key in expected)
    assert not list(store.root.rglob("*.lock"))  # each claim's file went with it


def _hold_forever(root: str, key: str, held) -> None:
    with claim(ArtifactStore(root), "rdm", key):
        held.set()
        time.sleep(600)


def test_a_waiting_job_stops_on_cancel_and_a_killed_holder_blocks_nobody(tmp_path):
    store, key = ArtifactStore(tmp_path / "store"), "a" * 40
    held = _SPAWN.Event()
    holder = _SPAWN.Process(target=_hold_forever, args=(str(store.root), key, held))
    holder.start()
    try:
        assert held.wait(120)
        messages, stop = [], threading.Event()
        waiting = Context(report=lambda fraction, message: messages.append(message), should_stop=stop.is_set)
        threading.Timer(0.5, stop.set).start()
        with pytest.raises(Cancelled):
            with claim(store, "rdm", key, waiting):
                pytest.fail("claimed while another process held it")
        assert messages == ["waiting for another job making the same rdm"]  # said once, not at every try
        os.kill(holder.pid, signal.SIGKILL)  # the holder dies mid-job: the kernel releases its lock
        holder.join(30)
        entered = threading.Event()

        def take():
            with claim(store, "rdm", key):
                entered.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert entered.wait(10)
        taker.join(10)
        assert not store.claim_path("rdm", key).exists()  # the dead holder's file, removed by the next claim
    finally:
        holder.kill()
        holder.join(30)
