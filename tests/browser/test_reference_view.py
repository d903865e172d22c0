"""The Reference RDM view in headless Chromium: upload two noisy "subjects" made from one model's
penultimate RDM through the page, and see that layer ranked first, every bar's number, its
two-factor bootstrap interval, the pairwise tests and the noise ceiling as compute and scipy give
them; then open the link."""
import numpy as np
import scipy.stats
from playwright.sync_api import expect
from scipy.spatial.distance import squareform

import compute
from tests.browser.support import choose, wait_for_figures
from tests.browser.test_views import _activations, _query

TARGET = "cnn-w8-s0-e25"
# Seven models' three default layers: 21 bars, one more than the ranking shows until asked for all.
MODELS = (TARGET, "mlp-w16-s0-e25", "cnn-w4-s0-e25", "mlp-w8-s0-e25", "mlp-w4-s0-e25", "cnn-w2-s0-e25",
          "mlp-w45-s0-e25")

# The bars as drawn: per trace its labels, values and error bar lengths; the rank order and shapes.
BARS = """id => {
  const el = document.querySelector('#' + id + ' .js-plotly-plot');
  return {bars: el._fullData.map(t => ({name: t.name, y: Array.from(t.y), x: Array.from(t.x),
                                        plus: Array.from(t.error_x.array || []), minus: Array.from(t.error_x.arrayminus || [])})),
          order: Array.from(el._fullLayout.yaxis.categoryarray),
          bands: el._fullLayout.shapes.map(s => [s.x0, s.x1])};
}"""


# The pairwise-test matrix as drawn: its labels (rows, best first) and cells (+1 row better,
# -1 column better, 0 not significant, null on the diagonal).
PAIRS = """id => {
  const t = document.querySelector('#' + id + ' .js-plotly-plot')._fullData[0];
  return {labels: Array.from(t.y), z: t.z.map(row => Array.from(row))};
}"""


def _rdm(model, layer):
    (acts,) = _activations(model, [layer])
    return compute.rdm(acts, method="euclidean", condensed=True).astype(np.float32)


def test_an_uploaded_reference_ranks_the_layer_it_was_made_from_first(app_server, page, tmp_path):
    source = _rdm(TARGET, "penultimate").astype(np.float64)
    rng = np.random.default_rng(0)
    subjects = np.stack([source + 0.3 * source.std() * rng.normal(size=source.shape) for _ in range(2)])
    np.save(tmp_path / "brain.npy", np.stack([squareform(s) for s in subjects]))  # (2, N, N)

    page.goto(app_server.url + f"/reference?models={','.join(MODELS)}&layers=default")
    page.wait_for_selector("#reference-upload-file input[type=file]", timeout=120_000)
    page.set_input_files("#reference-upload-file input[type=file]", str(tmp_path / "brain.npy"))
    page.click("#reference-upload-send")
    page.wait_for_selector("#reference-upload-message .status-done", timeout=240_000)
    assert "brain (2 subject(s) over 500 stimuli of digits)" in page.inner_text("#reference-upload-message")
    wait_for_figures(page, "reference", ("bars", "pairs", "accuracy"), timeout=480_000)
    page.wait_for_selector("#reference-progress .status-done", timeout=480_000)  # the intervals drawn too
    top = page.evaluate(BARS, "reference-bars")
    assert sum(len(trace["y"]) for trace in top["bars"]) == 20 and len(top["order"]) == 20
    expect(page.locator("#reference-bars")).to_contain_text("top 20 of 21", timeout=30_000)
    choose(page, "reference-show-choice", "all")
    page.wait_for_selector("#reference-bars:has-text('all 21')", timeout=120_000)
    wait_for_figures(page, "reference", ("bars", "pairs", "accuracy"), timeout=120_000)

    drawn = page.evaluate(BARS, "reference-bars")
    assert drawn["order"][:20] == top["order"]  # the top 20 are the first 20 of all
    assert drawn["order"][0] == f"{TARGET} · penultimate"
    bars = [(label, x, plus, minus) for trace in drawn["bars"]
            for label, x, plus, minus in zip(trace["y"], trace["x"], trace["plus"], trace["minus"])]
    assert len(bars) == 21 and {label.split(" · ")[0] for label, *_ in bars} == set(MODELS)
    rdms = {label: _rdm(*label.split(" · ")) for label, *_ in bars}
    evaluation = compute.evaluate_models(subjects, rdms, "spearman", n_boot=100, seed=0)
    for label, x, plus, minus in bars:
        expected = np.mean([scipy.stats.spearmanr(rdms[label], subject)[0] for subject in subjects])
        assert abs(x - expected) < 1e-4, label
        low, high = evaluation.ci[evaluation.names.index(label)]
        assert abs(x + plus - high) < 1e-4 and abs(x - minus - low) < 1e-4, label  # subjects and stimuli resampled
    assert sorted(t["name"] for t in drawn["bars"]) == ["depth 1", "depth 2", "depth 3"]
    pairs = page.evaluate(PAIRS, "reference-pairs")
    assert pairs["labels"] == drawn["order"]  # ranked as the bars
    index = [evaluation.names.index(label) for label in pairs["labels"]]
    significant = evaluation.pairwise_p[np.ix_(index, index)] < 0.05
    np.testing.assert_array_equal(np.nan_to_num(np.abs(np.array(pairs["z"], dtype=float))) == 1, significant)
    lower, upper = compute.noise_ceiling(subjects, "spearman")
    np.testing.assert_allclose(drawn["bands"], [[lower, upper]], atol=1e-9)

    query = _query(page)
    assert (query["models"], query["layers"], len(query["ref"])) == (",".join(MODELS), "default", 64)
    other = page.context.browser.new_context().new_page()  # the shared link, in a fresh browser
    other.goto(page.url)
    wait_for_figures(other, "reference", ("bars", "pairs"))
    assert other.evaluate(BARS, "reference-bars") == drawn
    assert other.evaluate(PAIRS, "reference-pairs") == pairs
    other.context.close()

    # 1,000 resamples, estimated at about 4 minutes: the point estimates (cached) are drawn by
    # themselves, and the bootstrap waits for the Compute button.
    page.goto(page.url + "&boot=1000")
    page.wait_for_selector("#reference-progress:has-text('The rest of this view is not computed yet')",
                           timeout=60_000)
    assert "min" in page.inner_text("#reference-progress") and page.locator("#reference-compute").count() == 1
    page.wait_for_selector("#reference-bars:has-text('intervals and pairwise tests pending')", timeout=60_000)
    early = page.evaluate(BARS, "reference-bars")
    assert early["order"] == drawn["order"] and not any(trace["plus"] for trace in early["bars"])
