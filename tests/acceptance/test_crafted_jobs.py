"""The server computes only what a view offers, whatever the browser sends back: requests to the
real app (its Flask test client, as the page's callbacks post them) with a control value the
view does not offer, or a job store edited to carry its own specs (a bootstrap of 20000
resamples where the view offers 0, 100 or 1000), start no such job."""
import json

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from compute.engine import artifacts
from tests.acceptance.dash_requests import callback_body, find

PREFIX = "reference"
CRAFTED_BOOT = 20000


@pytest.fixture
def app_client(cache_dir, zoo_dir, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(cache_dir.parent / "uploads"))
    monkeypatch.setenv("REPSCOPE_AUTO_COMPUTE_BYTES", "0")  # uncached work waits for Compute
    import app
    from dashboard import services

    services.backend.cache_clear()
    yield app.server.test_client(), services
    services.backend().close()
    services.backend.cache_clear()


def post(client, dependency, values: dict) -> dict:
    """Fire ``dependency`` as the renderer does, with ``values`` by ``id.prop``; its updates."""
    body = callback_body(dependency, values)
    answer = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert answer.status_code in (200, 204), answer.get_data(as_text=True)[:300]
    return answer.get_json()["response"] if answer.status_code == 200 else {}


def press(client, compute, prefix: str, job, shown=None) -> dict:
    """Press the Compute button of ``prefix`` holding the record ``job``, on a page whose
    controls show ``shown`` (default: the record's own values, as a crafted client can send them)."""
    controls = [f"{s['id']}.{s['property']}" for s in compute["state"] if s["id"] != f"{prefix}-job"]
    values = (job.get("values") if isinstance(job.get("values"), list) else []) if shown is None else shown
    return post(client, compute, {f"{prefix}-compute.n_clicks": 1, f"{prefix}-job.data": job,
                                  **dict(zip(controls, values))})


def fits(services) -> list[int]:
    """The n_boot of every reference fit and evaluation the backend has a job record of."""
    return sorted(record["spec"]["params"]["n_boot"] for _, record in services.backend().records.items()
                  if record["kind"] in ("reference_fit", "reference_eval"))


def test_crafted_values_and_job_stores_run_nothing_beyond_the_view(app_client):
    client, services = app_client
    from compute.sources.references import save_reference
    from dashboard.selection import Selection
    from dashboard.views import reference

    selection = Selection()
    stimuli = selection.stimuli
    ref = save_reference(pdist(np.random.default_rng(0).normal(size=(len(stimuli), 4)))[None], "brain", stimuli).key
    dependencies = client.get("/_dash-dependencies").get_json()
    submit = find(dependencies, output=f"{PREFIX}-job.data")
    compute = find(dependencies, inputs=[f"{PREFIX}-compute.n_clicks"])
    poll = find(dependencies, inputs=[f"{PREFIX}-tick.data", f"{PREFIX}-job.data"])
    download = find(dependencies, inputs=[f"{PREFIX}-download-button.n_clicks"])
    controls = {f"{PREFIX}-{name}-choice.value": value for name, value in
                zip(("ref", "rdm", "compare", "layers", "boot"), (ref, "euclidean", "spearman", "penultimate"))}

    # A control value the view does not offer: refused, with what it offers.
    job = post(client, submit, {**controls, f"{PREFIX}-boot-choice.value": str(CRAFTED_BOOT)})[f"{PREFIX}-job"]["data"]
    assert "error" in job and "boot must be one of 0, 100, 1000" in job["error"], job

    # A job store carrying its own spec, sent to the Compute button, the poll and the download.
    rdms = [artifacts.rdm_spec(m.key, stimuli, "penultimate", selection.pooling, "euclidean")
            for m in selection.models[:1]]
    crafted = artifacts.reference_fit_spec(ref, rdms, "spearman", CRAFTED_BOOT)
    store = {"specs": {"fit": crafted.to_json()}, "targets": ["fit"], "context": {}, "confirm": "1 result"}
    answered = press(client, compute, PREFIX, store)
    post(client, poll, {f"{PREFIX}-tick.data": {"n": 1, "at": 0},
                        f"{PREFIX}-job.data": {k: v for k, v in store.items() if k != "confirm"}})
    post(client, download, {f"{PREFIX}-download-button.n_clicks": 1, f"{PREFIX}-job.data": store})
    # The same crafted value as view state, with the Compute button: refused too.
    state = {"values": [ref, "euclidean", "spearman", "penultimate", str(CRAFTED_BOOT), None, None, None],
             "selection": selection.url_params(), "confirm": "1 result"}
    refused = press(client, compute, PREFIX, state)
    assert "boot must be one of" in refused[f"{PREFIX}-job"]["data"]["error"]
    assert fits(services) == [], f"a crafted store started a fit; Compute answered {answered}"

    # What the view offers still runs: its most resamples, by the Compute button.
    job = post(client, submit, {**controls, f"{PREFIX}-boot-choice.value": "1000"})[f"{PREFIX}-job"]["data"]
    assert "confirm" in job and job["values"][4] == "1000", job  # ref, rdm, compare, layers, boot, cand, show, score
    # Pressed on a page whose controls already show another state: nothing (the new state's record follows).
    assert press(client, compute, PREFIX, job, shown=[*job["values"][:4], "100"]) == {}
    assert fits(services) == []
    started = press(client, compute, PREFIX, job)
    assert "error" not in started[f"{PREFIX}-job"]["data"], started
    assert fits(services) == [0, 1000]  # the point estimates, and the evaluation with its bootstrap
    for key, record in services.backend().records.items():
        services.backend().cancel(key)
    assert reference.BOOT_CHOICES == ("0", "100", "1000")


def test_a_crafted_layer_grid_null_runs_nothing(app_client):
    """The layer grid offers a null of 0, 100 or 1000 permutations: a billion, sent as a control
    value, as a job record's view state to the Compute button or to the small multiples, is refused;
    so is a layer list naming what the model lacks."""
    client, services = app_client
    from dashboard.selection import Selection

    selection = Selection()
    dependencies = client.get("/_dash-dependencies").get_json()
    submit = find(dependencies, output="layer-grid-job.data")
    multiples = find(dependencies, output="layer-grid-multiples-job.data")
    compute = find(dependencies, inputs=["layer-grid-compute.n_clicks"])
    values = [selection.models[-1].name, selection.models[-2].name, "cka_linear", "default", "selected",
              str(10**9), "raw", "participation_ratio", "none", None, None]  # no layers sent: the preset's
    names = ("a", "b", "measure", "layers", "multiples", "null", "show", "dim", "measure2", "layers-a", "layers-b")
    controls = {f"layer-grid-{name}-choice.value": value for name, value in zip(names, values)}
    for dependency, prefix in ((submit, "layer-grid"), (multiples, "layer-grid-multiples")):
        job = post(client, dependency, controls)[f"{prefix}-job"]["data"]
        assert "null must be one of off, 100, 1000" in job["error"], job
    # A layer the model lacks, or not a list of names, is refused by name before anything runs.
    for layers, said in ((["../../etc/passwd"], "'../../etc/passwd' is not a layer of model A (rows)"),
                         ({"layer": "fc1"}, "must be a list of layer names")):
        crafted = {**controls, "layer-grid-null-choice.value": "off", "layer-grid-layers-a-choice.value": layers}
        assert said in post(client, submit, crafted)["layer-grid-job"]["data"]["error"]
    state = {"values": values, "selection": selection.url_params(), "confirm": "1 result"}
    refused = press(client, compute, "layer-grid", state)
    assert "null must be one of" in refused["layer-grid-job"]["data"]["error"]
    assert [r for _, r in services.backend().records.items() if r["kind"] == "layer_grid"] == []
    # What the view offers still runs: its most permutations, by the Compute button.
    job = post(client, submit, {**controls, "layer-grid-null-choice.value": "1000"})["layer-grid-job"]["data"]
    assert "confirm" in job, job
    started = press(client, compute, "layer-grid", job)
    assert "error" not in started["layer-grid-job"]["data"], started
    grids = [r["spec"]["params"] for _, r in services.backend().records.items() if r["kind"] == "layer_grid"]
    assert [(p["null"], p["seed"]) for p in grids] == [(1000, 0)]
    for key, _ in services.backend().records.items():
        services.backend().cancel(key)
