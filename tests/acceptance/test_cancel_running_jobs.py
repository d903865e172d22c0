"""Cancel stops a running job within one batch, even one spending its time inside a single
bootstrap: a reference fit of one RDM against one subject at the view's most resamples (1000 over
the 500 digits) is one call of the bootstrap, whose batches of 67 resamples take seconds each;
before, the cancel flag was read only between (RDM, subject) pairs, so the whole minute ran."""
import time

import numpy as np
from scipy.spatial.distance import pdist

from compute.engine import artifacts
from compute.engine.jobs import EmbeddedBackend
from compute.engine.records import ACTIVE
from compute.sources.references import save_reference
from tests.integration.backends import stimuli, three_models
from tests.support import wait_until

ONE_BATCH_S = 20  # a batch takes 2-6 s on two busy cores; the whole fit over a minute


def test_cancel_stops_a_running_bootstrap_within_one_batch(cache_dir, zoo_dir, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(cache_dir.parent / "uploads"))
    digits = stimuli()
    backend = EmbeddedBackend(cache_dir, workers=1)
    try:
        rdm = artifacts.rdm_spec(three_models()[0], digits, method="euclidean")
        backend.compute(rdm, timeout=300)  # the fit's input, so the job is its bootstrap alone
        subject = pdist(np.random.default_rng(0).normal(size=(len(digits), 5)))
        reference = save_reference(subject[None], "brain", digits)
        fit = artifacts.reference_fit_spec(reference.key, [rdm], "pearson", n_boot=1000)
        key = backend.submit(fit)
        wait_until(lambda: backend.records.get(key)["state"] == "running", 60, "the fit to start")
        time.sleep(3)  # well inside the bootstrap's batches
        asked = time.monotonic()
        backend.cancel(key)
        status = wait_until(lambda: (r := backend.records.get(key))["state"] not in ACTIVE and r,
                            300, "the fit to stop")
        took = time.monotonic() - asked
        assert status["state"] == "cancelled", status
        assert took < ONE_BATCH_S, f"the cancelled fit ran on for {took:.1f} s"
        assert backend.result(fit) is None
    finally:
        backend.close()
