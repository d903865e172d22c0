"""The Jobs view's pure parts: what a job computes in words, and the rows of the table."""
from types import SimpleNamespace

from compute.engine import artifacts
from dashboard.views.jobs import describe, rows, table

STIMULI = SimpleNamespace(key="s" * 64, name="digits")
NAMES = {"a" * 64: "cnn-a", "b" * 64: "mlp-b"}


def _job(key, state, submitted, **fields):
    spec = artifacts.rdm_spec("a" * 64, STIMULI)
    return {"key": key, "kind": spec.kind, "state": state, "progress": 0.0, "message": state,
            "retryable": False, "spec": spec.to_json(), "submitted": submitted, "started": None,
            "finished": None, **fields}


def test_describe_names_the_kind_its_parameters_and_models():
    rdm = artifacts.rdm_spec("a" * 64, STIMULI, "fc1", method="euclidean")
    matrix = artifacts.model_rdm_spec(["a" * 64, "b" * 64, "c" * 64], STIMULI, compare_method="kendall_tau_a")
    assert describe(rdm.to_json(), NAMES) == "rdm euclidean of cnn-a, layer fc1"
    assert describe(matrix.to_json(), NAMES) == "model_rdm kendall_tau_a of 3 RDMs, layer penultimate"
    assert describe(artifacts.mds_spec(matrix).to_json(), NAMES) == "mds smacof of model_rdm kendall_tau_a of 3 RDMs, layer penultimate"
    assert describe(artifacts.activations_spec("c" * 64, STIMULI, "conv1", "avg").to_json(), NAMES) == \
        "activations of cccccccccc, layer conv1, avg pooling"  # an unknown model: its key's start
    grid = artifacts.layer_grid_spec("a" * 64, ["l1", "l2"], "b" * 64, ["m1"], STIMULI, measure="rv2")
    assert describe(grid.to_json(), NAMES) == "layer_grid rv2: cnn-a (2 layers) × mlp-b (1 layer)"
    confusion = artifacts.confusion_model_rdm_spec(["a" * 64, "b" * 64], STIMULI, k=5)
    assert describe(confusion.to_json(), NAMES) == "model_rdm spearman of 2 confusion RDMs"
    assert describe(confusion.inputs[0].to_json(), NAMES) == "confusion_rdm of cnn-a, top-5"
    assert describe(confusion.inputs[0].inputs[0].to_json(), NAMES) == "top-5 confusion of cnn-a"
    assert describe(artifacts.predictions_spec("b" * 64, STIMULI).to_json(), NAMES) == "predictions of mlp-b"
    blocks = artifacts.rdm_blocks_spec(rdm, STIMULI, 1000)
    assert describe(blocks.to_json(), NAMES) == "RDM picture (1000 blocks per side) of rdm euclidean of cnn-a, layer fc1"
    pairs = [(("a" * 64, "fc1"), ("b" * 64, "fc1")), (("a" * 64, "fc2"), ("b" * 64, "fc2"))]
    assert describe(artifacts.similarities_spec(pairs, STIMULI, "pwcca").to_json(), NAMES) == "pwcca of 2 layer pairs (layers fc1, fc2)"
    srm = artifacts.srm_fit_spec(["a" * 64, "b" * 64], STIMULI, ["fc1", "fc1"], k=5)
    assert describe(srm.to_json(), NAMES) == "SRM (k = 5) of 2 models, layer fc1"
    depths = artifacts.srm_fit_spec(["a" * 64, "b" * 64, "c" * 64, "a" * 64], STIMULI, ["l1", "l2", "l3", "l4"])
    assert describe(depths.to_json(), NAMES) == "SRM (k = 10) of 4 models, 4 layers"
    fit = artifacts.reference_fit_spec("f" * 64, [rdm], "kendall_tau_a", n_boot=100)
    assert describe(fit.to_json(), NAMES) == "fit of 1 RDM (layer fc1) against reference ffffffff (kendall_tau_a, 100 resamples)"


def test_rows_put_active_jobs_first_then_keep_newest_first():
    jobs = [_job("new-done", "done", 50.0), _job("running", "running", 40.0, started=41.0),
            _job("failed", "failed", 30.0), _job("queued", "queued", 20.0), _job("old-done", "done", 10.0)]
    assert [row["key"] for row in rows(jobs, NAMES, now=100.0)] == ["running", "queued", "new-done", "failed",
                                                                    "old-done"]


def test_rows_show_state_progress_message_times_and_which_can_be_cancelled():
    jobs = [_job("r", "running", 10.0, started=12.0, progress=0.4, message="activations 3/9"),
            _job("q", "queued", 95.0),
            _job("f", "failed", 10.0, started=20.0, finished=200.0, message="layer 'x' not found"),
            _job("c", "cancelled", 10.0, finished=11.0, message="cancelled before it started")]
    running, queued, failed, cancelled = rows(jobs, NAMES, now=100.0)
    assert running["what"] == "rdm correlation of cnn-a, layer penultimate"
    assert (running["state"], running["progress"], running["message"]) == ("running", 0.4, "activations 3/9")
    assert (running["submitted"], running["took"]) == ("1 min ago", "1 min")  # 88 s so far
    assert (queued["submitted"], queued["took"]) == ("5 s ago", "")
    assert (failed["message"], failed["took"]) == ("layer 'x' not found", "3 min")
    assert cancelled["took"] == ""  # it never started
    assert [row["cancellable"] for row in (running, queued, failed, cancelled)] == [True, True, False, False]


def test_table_shows_failures_as_alerts_and_cancel_buttons_for_active_jobs():
    shown = rows([_job("r", "running", 1.0, started=1.0), _job("f", "failed", 1.0, message="out of memory")],
                 NAMES, now=2.0)
    body = table(shown).children[1].children
    running_cells, failed_cells = body[0].children, body[1].children
    assert running_cells[-1].children.id == {"type": "jobs-cancel", "key": "r"}
    assert failed_cells[-1].children == ""
    alert = failed_cells[3].children
    assert alert.children == "out of memory" and "alert-error" in alert.className
    assert type(alert).__name__ == "Alert"  # Mantine's: role "alert", its colour from the library
    assert "No jobs yet" in table([]).children
