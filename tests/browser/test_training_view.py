"""The training-dynamics view in headless Chromium on the built-in zoo: each layer against its
final checkpoint, and pairs within and between groups, checked against ``compute.similarity``."""
from itertools import combinations, product
from urllib.parse import parse_qs, urlparse

import numpy as np

import compute
from compute.sources.activations import extract
from compute.sources.layers import list_layers
from compute.sources.models import list_models, load_model
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import choose, figure_words, wait_for_figures

STEPS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 400, 800, 1600]


def _activations(name):
    model = load_model(name)
    layers = [info.name for info in list_layers(model) if info.default]
    return extract(model, get_stimulus_set("digits").images, layers)


def _query(page):
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_layers_converge_to_their_final_state_and_groups_match_compute(app_server, page):
    page.goto(app_server.url + "/training?series=mlp-w16-s10")
    (curves,) = wait_for_figures(page, "training", ("curves",))
    # One curve per default layer, x = step + 1 (log axis); the final checkpoint is itself (PWCCA 1).
    assert [t["name"] for t in curves] == ["act1", "act2", "act3"]
    acts = {step: _activations(f"mlp-w16-s10-step{step:04d}") for step in STEPS}
    for trace in curves:
        assert trace["x"] == [step + 1 for step in STEPS]
        assert trace["y"][-1] == 1.0
        expected = [compute.similarity(acts[step][trace["name"]], acts[1600][trace["name"]], measure="pwcca")
                    for step in STEPS]
        np.testing.assert_allclose(trace["y"], expected, atol=1e-6)
    words = figure_words(page, "training-curves")  # the measure in words, not "pwcca"
    assert words["y"] == "PWCCA (higher = more alike)" and "<sup>PWCCA of the layer at each step" in words["title"]

    (bars,) = wait_for_figures(page, "training-groups", ("bars",))
    assert [t["name"] for t in bars] == ["within true-labels", "within shuffled-labels",
                                         "between true-labels and shuffled-labels"]
    assert all(t["x"] == ["act1", "act2", "act3"] for t in bars)
    models = {m.name: m for m in list_models("digits")}
    true = sorted(n for n, m in models.items() if m.tags.get("group") == "true-labels" and m.architecture == "mlp")
    shuffled = sorted(n for n, m in models.items() if m.tags.get("group") == "shuffled-labels" and m.architecture == "mlp")
    assert len(true) == len(shuffled) == 3
    group_acts = {name: _activations(name)["act3"] for name in true + shuffled}
    for trace, pairs in zip(bars, (combinations(true, 2), combinations(shuffled, 2), product(true, shuffled))):
        values = [compute.similarity(group_acts[a], group_acts[b], measure="pwcca") for a, b in pairs]
        np.testing.assert_allclose(trace["y"][2], np.mean(values), atol=1e-6)
    # Generalising networks are more alike than memorising ones in the last layer (PWCCA paper, Fig 3).
    assert bars[0]["y"][2] > bars[1]["y"][2]
    # The architecture the groups share, in words (not its hyperparameters' dict).
    title = page.evaluate("() => document.querySelector('#training-groups-bars .js-plotly-plot')._fullLayout.title.text")
    assert "sigmoid MLP, widths 45-45-45, 64 inputs, 10 classes:" in title and "hidden=" not in title
    assert title.startswith("Pairs of models within and between groups, per layer (PWCCA)<br>")  # not "(pwcca)"
    assert figure_words(page, "training-groups-bars")["y"] == "PWCCA (higher = more alike)"
    assert _query(page) == {"series": "mlp-w16-s10"}


def test_another_series_measure_and_groups_from_the_controls(app_server, page):
    page.goto(app_server.url + "/training?series=cnn-w4-s10&measure=cka_linear")
    (curves,) = wait_for_figures(page, "training", ("curves",))
    assert [t["name"] for t in curves] == ["bn1", "bn2", "bn3"]
    # The last checkpoint against itself: 1 to float32 rounding (the default precision; its Gram
    # matrices and cross products are different BLAS calls).
    assert all(t["x"] == [step + 1 for step in STEPS] and abs(t["y"][-1] - 1.0) < 1e-6 for t in curves)
    # "Show code" reproduces the curves with the public compute API.
    page.click("#training-code-box summary")
    namespace = {}
    exec(compile(page.inner_text("#training-code"), "<snippet>", "exec"), namespace)
    np.testing.assert_allclose(namespace["curves"], [t["y"] for t in curves], atol=1e-6)
    wait_for_figures(page, "training-groups", ("bars",))

    # Groups without an architecture with two models in each: the section says so, the curves stay.
    choose(page, "training-group2-choice", "untrained")
    alert = page.wait_for_selector("#training-groups-progress .status-failed", timeout=60_000)
    assert "share no architecture" in alert.inner_text()
    assert _query(page) == {"measure": "cka_linear", "group2": "untrained"}  # cnn-w4-s10: the default series
    assert page.query_selector("#training-progress .status-failed") is None
