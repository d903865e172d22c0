"""A view's poll against a real backend: a target stored without a job record (computed as
another job's input, or the records were lost) is drawn; one with neither is asked for again."""
import time

import numpy as np

from compute.engine import artifacts
from dash import no_update

from dashboard import compute_panel, services
from dashboard.widgets import PENDING_FIGURE
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
    figure, _, stop, _ = compute_panel.poll(job, 1, _draw, _plan_of(stored))
    assert figure == 0.0 and stop

    lost = artifacts.rdm_spec(second, stimuli(), method="euclidean")  # never submitted
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        figure, _, stop, _ = compute_panel.poll(job, 1, _draw, _plan_of(lost))
        if stop:
            break
        time.sleep(0.3)
    assert stop and figure > 0  # asked for again by the poll, computed and drawn


def test_a_view_is_drawn_early_from_its_first_targets_once_while_the_others_run(backend, monkeypatch):  # noqa: F811
    """Point estimates before their intervals: with ``early`` targets done and another running,
    the poll draws from the early ones once (the marker then says so) and keeps polling; when
    all are done it draws from all."""
    monkeypatch.setattr(services, "backend", lambda: backend)
    first, second = three_models()[:2]
    quick = artifacts.rdm_spec(first, stimuli(), method="euclidean")
    n = len(stimuli())
    backend.store.put(quick.kind, quick.key, np.ones(n * (n - 1) // 2, dtype=np.float32), {})
    slow = artifacts.rdm_spec(second, stimuli(), method="correlation")
    plan = lambda selection: ({"quick": quick, "slow": slow}, ["quick", "slow"], {}, None)  # noqa: E731
    draw = lambda context, arrays: (sorted(arrays),)  # noqa: E731
    job = {"values": [], "selection": None}
    drawn, _, stop, marker = compute_panel.poll(job, 1, draw, plan, early=("quick",))
    assert (drawn, stop, marker) == (["quick"], False, quick.key)  # the slow one was submitted, not done
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        drawn, _, stop, after = compute_panel.poll(job, 1, draw, plan, early=("quick",), drawn=marker)
        if stop:
            break
        assert drawn is no_update and after is no_update  # drawn early once, not at every tick
        time.sleep(0.3)
    assert stop and drawn == ["quick", "slow"] and after is None


def test_early_targets_within_the_limits_start_by_themselves_and_the_rest_waits_for_compute(backend, monkeypatch):  # noqa: F811
    """The Compute gate, staged: work over the time limit whose early targets fit under it (the
    reference page's point estimates, ahead of its 2-minute bootstrap) starts those at once,
    draws them, and asks for the rest, estimated without what the early ones make."""
    monkeypatch.setattr(services, "backend", lambda: backend)
    first, second = three_models()[:2]
    quick = artifacts.rdm_spec(first, stimuli(), method="euclidean")
    slow = artifacts.rdm_spec(second, stimuli(), method="correlation")
    specs = {"quick": quick, "slow": slow}
    plan = lambda selection: (specs, ["quick", "slow"], {}, None)  # noqa: E731
    draw = lambda context, arrays: (sorted(arrays),)  # noqa: E731
    alone, both = (compute_panel.estimate(specs, names).seconds for names in (["quick"], ["quick", "slow"]))
    limit = (alone + both) / 2
    assert alone < limit < both
    job = {"values": [], "selection": None,
           **compute_panel.start(specs, ["quick", "slow"], auto_bytes=2**40, auto_seconds=limit, early=("quick",))}
    assert job["early"] == ["quick"] and "1 forward pass" in job["confirm"]  # the rest: the second model's
    assert backend.status(slow.key)["state"] == "missing"  # asked for, not started
    deadline, marker, ticks = time.monotonic() + 300, None, 0
    while time.monotonic() < deadline:
        drawn, progress, stop, now = compute_panel.poll(job, 1, draw, plan, "view", early=("quick",), drawn=marker)
        marker = marker if now is no_update else now
        if stop:
            break
        # "Computing…" in place of what was there, once; then left as it is.
        assert drawn == (PENDING_FIGURE if ticks == 0 else no_update), drawn
        assert "Cancel" in str(progress) and "Compute" in str(progress)
        ticks += 1
        time.sleep(0.3)
    assert drawn == ["quick"] and marker == quick.key and "Compute" in str(progress)
    assert backend.status(slow.key)["state"] == "missing"
    job, _ = compute_panel.press_compute(plan, 1, job)  # the rest, asked for
    while time.monotonic() < deadline:
        drawn, _, stop, _ = compute_panel.poll(job, 1, draw, plan, "view", early=("quick",), drawn=marker)
        if stop:
            break
        time.sleep(0.3)
    assert drawn == ["quick", "slow"]
    # Without early targets, work over the limit only asks.
    other = {"other": artifacts.rdm_spec(three_models()[2], stimuli(), method="euclidean")}
    asked = compute_panel.start(other, ["other"], auto_bytes=2**40, auto_seconds=0.0)
    assert set(asked) == {"confirm"}
    figure, progress, stop, _ = compute_panel.poll({**job, **asked}, 1, draw, lambda selection: (other, ["other"], {}, None))
    assert figure == compute_panel.ASKING_FIGURE and stop and "Not computed yet" in str(progress)  # no stale figure
    for crafted in (7, [["quick"]], {"a": 1}, ["nonsense"]):  # a client's store naming no target: it asks
        figure, _, stop, _ = compute_panel.poll({**job, "confirm": "x", "early": crafted}, 1, draw, plan, "view")
        assert figure == compute_panel.ASKING_FIGURE and stop
