"""Precomputed activations uploaded through the Models page in headless Chromium, then drawn as a
model everywhere: in the model MDS, in a layer grid against the network they came from (CKA 1 on
the diagonal) and in the reference ranking (tied with that network's own penultimate layer)."""
import numpy as np

import compute
from compute.sources.activations import extract
from compute.sources.models import load_model
from compute.sources.references import save_reference
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import MODELS_GRID, choose, figure_words, model_cell, wait_for_figures

SOURCE = "cnn-w8-s0-e25"
NAME = "acts-upload"
OTHER = "mlp-w16-s0-e25"
LAYERS = ("bn1", "bn2", "bn3")  # the network's default layers; bn3 its penultimate

# The models drawn as points (not the rings marking uploaded or found ones, which carry ``meta``).
NAMES = """id => Array.from(document.querySelector('#' + id + ' .js-plotly-plot')._fullData)
                  .filter(t => !t.meta).flatMap(t => Array.from(t.customdata || []))"""
BARS = """id => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                  return el._fullData.flatMap(t => Array.from(t.y, (label, i) => [label, t.x[i]])); }"""


def test_uploaded_activations_are_a_model_in_every_view(app_server, page, tmp_path, monkeypatch):
    digits = get_stimulus_set("digits")
    acts = extract(load_model(SOURCE), digits.images, list(LAYERS))
    perm = np.random.default_rng(0).permutation(len(digits))  # any order: the ids put it back
    np.savez(tmp_path / "cnn-activations.npz", **{k: v[perm] for k, v in acts.items()},
             stimulus_ids=np.array(digits.ids)[perm])

    page.goto(app_server.url + f"/models?models={SOURCE},{OTHER}")
    page.wait_for_selector(MODELS_GRID, timeout=120_000)
    # The grid's accuracy columns say which accuracy, and define it on hover.
    for column, header, counted in (("accuracy", "Top-1 accuracy", "whose highest output is the true class"),
                                    ("top5", "Top-5 accuracy", "whose true class is among the 5 highest outputs")):
        assert page.inner_text(f"#models-table .ag-header-cell[col-id={column}]").strip() == header
        tooltip = page.evaluate("c => dash_ag_grid.getApi('models-table').getColumnDef(c).headerTooltip", column)
        assert tooltip.startswith(f"{header}: the share of the images of the model's stimulus set {counted}")
    page.set_input_files("#models-activations-file input[type=file]", str(tmp_path / "cnn-activations.npz"))
    page.fill("#models-activations-name", NAME)
    page.click("#models-activations-send")
    page.wait_for_selector("#models-activations-message .status-done", timeout=240_000)
    assert f"Registered model {NAME} (activations)" in page.inner_text("#models-activations-message")
    page.fill("#models-table-search", NAME)
    page.wait_for_selector(model_cell(NAME, "source") + ":has-text('activations')", timeout=30_000)
    selected = f"models={SOURCE}%2C{OTHER}%2C{NAME}"  # the panel's selection, the new model added
    assert page.get_attribute("#models-activations-message a.open-a", "href") == f"/layers?a={NAME}&{selected}"

    models = f"models={SOURCE},{OTHER},{NAME}"
    page.click("#models-activations-message a.open-find")  # open in model MDS
    wait_for_figures(page)
    assert sorted(page.evaluate(NAMES, "model-space-mds")) == sorted([SOURCE, OTHER, NAME])

    page.goto(app_server.url + f"/layers?{models}&a={NAME}&b={SOURCE}")
    (grid,) = wait_for_figures(page, "layer-grid", ("heatmap",))
    (trace,) = [t for t in grid if t["z"]]
    assert list(trace["y"]) == [f"A: {layer}" for layer in LAYERS]
    np.testing.assert_allclose(np.diag(np.array(trace["z"], dtype=float)), 1.0, atol=1e-4)

    penultimate = compute.rdm(acts["bn3"], method="euclidean", condensed=True).astype(np.float64)
    noise = np.random.default_rng(1).normal(size=(2, penultimate.size))
    monkeypatch.setenv("REPSCOPE_CACHE_DIR", app_server.env["REPSCOPE_CACHE_DIR"])  # the app's references
    subjects = penultimate + 0.3 * penultimate.std() * noise
    reference = save_reference(subjects, "brain", digits)
    page.goto(app_server.url + f"/reference?{models}&ref={reference.key}&boot=0")
    wait_for_figures(page, "reference", ("bars",), timeout=240_000)
    bars = dict(page.evaluate(BARS, "reference-bars"))
    assert set(bars) == {f"{m} · penultimate" for m in (SOURCE, OTHER, NAME)}
    assert abs(bars[f"{NAME} · penultimate"] - bars[f"{SOURCE} · penultimate"]) < 1e-4  # the same RDM
    assert bars[f"{NAME} · penultimate"] > bars[f"{OTHER} · penultimate"]
    words = figure_words(page, "reference-bars")  # what a bar is and its scale, in the registry's words
    assert words["y"] == "model · layer (best at the top)"
    assert words["x"] == "Spearman ρ with the reference, mean over subjects (higher = more similar)"
    scatter = figure_words(page, "reference-accuracy")  # the score against accuracy, in %
    assert (scatter["x"], scatter["xformat"]) == ("top-1 accuracy on the stimulus set (%)", ".0%")
    # Ceiling-normalised scores: each bar over the noise ceiling's lower bound, the band from 1.
    choose(page, "reference-score-choice", "ceiling-normalised")
    page.wait_for_selector("#reference-bars .xtitle:has-text('divided by the noise ceiling')", timeout=60_000)
    lower, upper = compute.noise_ceiling(subjects, "spearman")
    normalised = dict(page.evaluate(BARS, "reference-bars"))
    assert normalised.keys() == bars.keys()
    np.testing.assert_allclose([normalised[k] for k in bars], [bars[k] / lower for k in bars], rtol=1e-5)
    band = page.evaluate("() => document.querySelector('#reference-bars .js-plotly-plot')._fullLayout.shapes"
                         ".map(s => [s.x0, s.x1])")
    np.testing.assert_allclose(band, [[1.0, upper / lower]], rtol=1e-5)
    page.goto(app_server.url + "/jobs")  # the Jobs page names the reference by its name
    page.wait_for_selector(".job-row:has-text(\"against reference 'brain' (spearman, 0 resamples)\")", timeout=30_000)
