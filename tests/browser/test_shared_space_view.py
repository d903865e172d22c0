"""The Shared space (SRM) view in headless Chromium on the built-in zoo: its bars against SRM
fitted here with ``compute`` on the same activations and the same held-out split."""
from urllib.parse import parse_qs, urlparse

import numpy as np

import compute
from compute.measures.srm import shared_space_rsm_agreement, srm_variance_explained, stratified_split
from compute.sources.activations import extract
from compute.sources.layers import list_layers
from compute.sources.models import load_model
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import choose, wait_for_figures, wait_for_title

ANNOTATIONS = """id => Array.from(document.querySelector('#' + id + ' .js-plotly-plot').layout.annotations || [],
                                   a => a.text)"""


def _expected(names, depth, k):
    """(held-out variance explained, fitting variance explained, native r or None, shared r)."""
    stimuli = get_stimulus_set("digits")
    Xs = []
    for name in names:
        model = load_model(name)
        layer = [info.name for info in list_layers(model) if info.default][depth]
        Xs.append(extract(model, stimuli.images, [layer])[layer])
    train, test = stratified_split(stimuli.labels, 0.5, seed=0)
    fit = compute.fit_srm([X[train] for X in Xs], min(k, *(X.shape[1] for X in Xs)), seed=0)
    held_out = [X[test] for X in Xs]
    agreement = shared_space_rsm_agreement(fit, held_out)
    return srm_variance_explained(fit, held_out), fit.variance_explained, agreement.native, agreement.shared


def _query(page):
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_srm_bars_match_compute_at_every_depth_for_unequal_widths(app_server, page):
    names = ["mlp-w8-s0-e25", "mlp-w8-s1-e25", "mlp-w16-s2-e25"]
    page.goto(app_server.url + "/srm?k=5&align=" + ",".join(names))
    variance, agreement = wait_for_figures(page, "srm", ("variance", "agreement"))
    assert [t["name"] for t in variance] == ["held-out stimuli", "fitting stimuli"]
    assert [t["name"] for t in agreement] == ["native space", "shared space"]
    assert variance[0]["x"] == ["depth 1", "depth 2", "depth 3"]
    for depth in range(3):
        held_out, fitting, native, shared = _expected(names, depth, 5)
        assert native is None  # widths 8, 8, 16: no native inter-network RSM
        np.testing.assert_allclose([variance[0]["y"][depth], variance[1]["y"][depth], agreement[1]["y"][depth]],
                                   [held_out, fitting, shared], atol=1e-5)
        assert agreement[0]["y"][depth] is None
    wait_for_title(page, "srm-variance", "3 models, k = 5<", timeout=5_000)
    notes = page.evaluate(ANNOTATIONS, "srm-agreement")
    assert notes == ["n/a"] * 3
    hint = page.locator("p.hint", has_text="SRM is fitted on").inner_text()  # what the bars are
    for said in ("Variance explained = 1 − Σ‖X − W·S‖² / Σ‖X‖²", "iRSM: stimulus × stimulus cosine similarity",
                 "wRSM: each network's own", "bars: Pearson r of the two"):
        assert said in hint
    query = _query(page)
    assert query["k"] == "5" and sorted(query["align"].split(",")) == sorted(names)


def test_srm_defaults_to_seeds_of_one_architecture_and_follows_k(app_server, page):
    from dashboard.selection import Selection
    from dashboard.views.shared_space import comparable

    page.goto(app_server.url + "/srm")
    variance, agreement = wait_for_figures(page, "srm", ("variance", "agreement"))
    names = [m.name for m in comparable(Selection().models)]
    assert _query(page)["align"].split(",") == names
    held_out, fitting, native, shared = _expected(names, 0, 10)
    np.testing.assert_allclose([variance[0]["y"][0], variance[1]["y"][0], agreement[0]["y"][0], agreement[1]["y"][0]],
                               [held_out, fitting, native, shared], atol=1e-5)
    choose(page, "srm-k-choice", "2")
    wait_for_title(page, "srm-variance", "3 models, k = 2")
    variance, agreement = wait_for_figures(page, "srm", ("variance", "agreement"))
    held_out, fitting, native, shared = _expected(names, 0, 2)
    np.testing.assert_allclose([variance[0]["y"][0], agreement[1]["y"][0]], [held_out, shared], atol=1e-5)
    assert _query(page)["k"] == "2"
