"""A view's poll against a real backend: a target stored without a job record (computed as
another job's input, or the records were lost) is drawn; one with neither is asked for again."""
import time

import numpy as np

from compute.engine import artifacts
from dashboard import compute_panel, services
from tests.integration.backends import backend, stimuli, three_models  # noqa: F401 (fixture)


def _draw(context, arrays):
    return (np.asarray(arrays["rdm"]).sum(),)


def _plan_of(spec):
    """A view's plan that always asks for ``spec`` (the job record holds only the view state)."""
    return lambda selection: ({"rdm": spec}, ["rdm"], {}, None)


def test_a_stored_target_without_a_record_is_drawn_and_a_lost_one_is_recomputed(backend, monkeypatch):  # noqa: F811
    monkeypatch.setattr(services, "backend", lambda: backend)
    first, second = three_models()[:2]
    stored = artifacts.rdm_spec(first, stimuli(), method="euclidean")
    n = len(stimuli())
    backend.store.put(stored.kind, stored.key, np.zeros(n * (n - 1) // 2,
                                                        dtype=np.float32), {})
    assert backend.status(stored.key)["state"] == "missing"  # no job record…
    assert backend.spec_status(stored)["state"] == "done"  # …but the artifact is there
    job = {"values": [], "selection": None}
    figure, _, stop = compute_panel.poll(job, 1, _draw, _plan_of(stored))
    assert figure == 0.0 and stop

    lost = artifacts.rdm_spec(second, stimuli(), method="euclidean")  # never submitted
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        figure, _, stop = compute_panel.poll(job, 1, _draw, _plan_of(lost))
        if stop:
            break
        time.sleep(0.3)
    assert stop and figure > 0  # asked for again by the poll, computed and drawn
