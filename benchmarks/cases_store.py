"""The artifact store's cached read and the embedded backend's submit -> start overhead."""
from __future__ import annotations

import tempfile
import time
import uuid

import numpy as np

from benchmarks.harness import Case, Prepared


def read_case(n: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        from compute.engine.store import ArtifactStore

        root = tempfile.TemporaryDirectory(prefix="repscope-bench-")
        store = ArtifactStore(root.name)
        k = n * (n - 1) // 2
        vector = np.random.default_rng(0).random(k, dtype=np.float32)
        key = "b" * 40
        start = time.perf_counter()
        store.put("rdm", key, vector, {"n": n})
        put_s = time.perf_counter() - start
        start = time.perf_counter()
        store.get("rdm", key, mmap=True)
        first_s = time.perf_counter() - start
        del vector

        def cached_read():
            root  # keeps the directory alive as long as the case
            return store.get("rdm", key, mmap=True)[0]

        return Prepared(repscope=cached_read, notes=[
            f"{k * 4 / 2**20:.0f} MiB array; put {put_s * 1e3:.0f} ms; first read in a process "
            f"(SHA-256 check) {first_s * 1e3:.0f} ms",
        ])

    return Case("store", f"cached read, condensed RDM N={n} (memory-mapped)", prepare,
                target="latency:0.02", timeout_s=300)


def job_case() -> Case:
    def prepare(quick: bool) -> Prepared:
        from compute.engine.artifacts import Spec
        from compute.engine.jobs import EmbeddedBackend

        root = tempfile.TemporaryDirectory(prefix="repscope-bench-")
        backend = EmbeddedBackend(root.name, workers=1)
        # A stored tiny input, so each job computes only a 50 x 50 RDM.
        acts = Spec("activations", {"model": "bench", "stimuli": "bench", "layer": "x", "pooling": "none"})
        backend.store.put(acts.kind, acts.key, np.random.default_rng(0).random((50, 8), dtype=np.float32))

        def one_job() -> float:
            root  # keeps the directory alive as long as the case
            spec = Spec("rdm", {"method": "euclidean", "nonce": uuid.uuid4().hex}, (acts,))
            key = backend.submit(spec)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                record = backend.records.get(key) or {}
                if record.get("state") in ("failed", "cancelled"):
                    raise RuntimeError(f"benchmark job {record['state']}: {record.get('message')}")
                if record.get("state") == "done":
                    return record["started"] - record["submitted"]
                time.sleep(0.002)
            raise TimeoutError("benchmark job did not finish in 120 s")

        start = time.perf_counter()
        cold = one_job()
        notes = [f"first job after start (spawns the worker): submit->start {cold * 1e3:.0f} ms, "
                 f"submit->done {(time.perf_counter() - start) * 1e3:.0f} ms",
                 "time = the job record's started - submitted stamps"]
        return Prepared(repscope=one_job, self_timed=True, notes=notes,
                        after=lambda result, peer_results: backend.close() or {})

    return Case("store", "embedded job submit -> start (warm pool, trivial job)", prepare,
                target="latency:0.2", memory=False, timeout_s=300, calm_check=False)


def cases(quick: bool) -> list[Case]:
    return [read_case(10000), job_case()]
