"""Every view in headless Chromium on the built-in zoo: load a URL state, wait for the figures,
and check their numbers against what ``compute`` gives for the same inputs."""
import re
from urllib.parse import parse_qs, urlparse

import numpy as np
from scipy.spatial.distance import squareform

import compute
from compute.measures.registry import MDS_METHODS, MEASURES
from compute.sources.activations import extract, predict
from compute.sources.layers import list_layers
from compute.sources.models import list_models, load_model
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import PLOT_DATA, choose, figure_words, wait_for_figures, wait_for_title


def _activations(name, layers):
    model = load_model(name)
    resolved = [next(i.name for i in list_layers(model) if i.penultimate) if layer == "penultimate" else layer
                for layer in layers]
    acts = extract(model, get_stimulus_set("digits").images, sorted(set(resolved)))
    return [acts[layer] for layer in resolved]


def _query(page):
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


# An MDS map's subtitle: its Kruskal stress-1 and Kruskal's word for it (dashboard.figures.scatter).
STRESS = re.compile(r"Kruskal stress-1 (\d+\.\d{3}), (excellent|good|fair|fair to poor|poor: read distances with care) "
                    r"\(0 = every distance exact\)")


def test_input_rdm_is_sorted_by_class_and_matches_compute(app_server, page):
    page.goto(app_server.url + "/rdm?model=cnn-w4-s0-e25&layer=fc2&rdm=euclidean")
    heatmap, scatter = wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    stimuli = get_stimulus_set("digits")
    (acts,) = _activations("cnn-w4-s0-e25", ["fc2"])
    order = np.argsort(stimuli.labels, kind="stable")
    expected = compute.rdm(acts, method="euclidean")[np.ix_(order, order)]
    np.testing.assert_allclose(np.array(heatmap[0]["z"]), expected, rtol=1e-4, atol=1e-4)
    # One trace per class, every stimulus once, where classical MDS of the same RDM puts it.
    assert [t["name"] for t in scatter] == list(stimuli.class_names)
    counts = np.bincount(stimuli.labels)
    assert [len(t["x"]) for t in scatter] == counts.tolist()
    coords = compute.mds(squareform(compute.rdm(acts, method="euclidean", condensed=True)), method="classical")
    got = np.concatenate([np.column_stack([t["x"], t["y"]]) for t in scatter])
    np.testing.assert_allclose(got, coords[order], atol=1e-3 * np.abs(coords).max())
    assert _query(page) == {"model": "cnn-w4-s0-e25", "layer": "fc2", "rdm": "euclidean"}
    # Its words: the colour bar in the registry's words, classes named, hover positions in class order.
    words = figure_words(page, "input-rdm-heatmap")
    assert words["colorbars"] == ["Euclidean<br>distance<br>(dissimilarity)"]
    assert words["xticks"] == list(stimuli.class_names)
    assert "(positions in class order)" in words["hovers"][0]
    assert words["title"].startswith("Input RDM (Euclidean distance), sorted by class<br>")  # not "(euclidean)"
    mds_words = figure_words(page, "input-rdm-mds")
    assert mds_words["x"] == "MDS 1 (distance between points ≈ their dissimilarity)"
    assert mds_words["title"].startswith(f"{MDS_METHODS['classical'].title} of the stimuli<br>")  # not "(classical)"
    # The RDM method in words in its dropdown and its info line (direction, range, invariances).
    assert "Euclidean distance" in page.inner_text("#input-rdm-rdm-choice")
    info = page.inner_text("#input-rdm-rdm-choice-info")
    assert info.startswith("Euclidean distance (euclidean). dissimilarity: higher = more different. range")


def test_input_rdm_offers_the_layers_of_the_chosen_model(app_server, page):
    page.goto(app_server.url + "/rdm?model=mlp-w8-s0-e25&layer=act1")
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    choose(page, "input-rdm-model-choice", "cnn-w2-s0-e25 (")
    wait_for_title(page, "input-rdm-heatmap", "cnn-w2-s0-e25, layer penultimate")
    # The MLP's act1 does not exist in the CNN: back to penultimate, and the CNN's layers offered.
    choose(page, "input-rdm-layer-choice", "conv1 (Conv2d)")
    wait_for_title(page, "input-rdm-heatmap", "cnn-w2-s0-e25, layer conv1")
    assert _query(page) == {"model": "cnn-w2-s0-e25", "layer": "conv1"}


def _default_layers(name):
    return [info.name for info in list_layers(load_model(name)) if info.default]


def test_layer_grid_matches_compute(app_server, page):
    """A link's layers, one more chosen in B's list, and a second measure beside the first (its
    name in words, its definition on hover and in the info line): both grids are compute's on the
    same layers. The small multiples are not on the page until asked for."""
    page.goto(app_server.url + "/layers?a=cnn-w4-s0-e25&b=mlp-w8-s1-e25&measure=cka_linear&layers_a=bn3,conv1")
    wait_for_figures(page, "layer-grid", ("heatmap",))
    assert page.locator("#layer-grid-multiples-section > *").count() == 0
    assert page.locator("#layer-grid-multiples-progress").count() == 0
    assert page.locator("#layer-grid-heatmap2").is_hidden()
    assert page.inner_text("#layer-grid-measure-choice-info").startswith("Linear CKA (cka_linear). similarity: higher")
    page.click("#layer-grid-measure2-choice")
    assert page.locator(".dash-dropdown-content [title^='Projection-weighted CCA (Morcos et al. 2018)']").count()
    page.locator(".dash-dropdown-content [role=option]", has_text="PWCCA").first.click()
    page.wait_for_selector("#layer-grid-measure2-choice-info:has-text('PWCCA (pwcca)')")
    # its info card (a Popover on the ⓘ button: definition, source) opens by a click or a tap and stays
    # open when the pointer leaves, and from the keyboard (Enter), which Escape closes again
    about, card = "#layer-grid-measure2-choice-about", "#layer-grid-measure2-choice-card"
    page.click(about)
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)  # a hover card would have closed
    assert page.is_visible(card) and MEASURES["pwcca"].description in page.inner_text(card)
    assert "source: Morcos, Raghu & Bengio 2018" in page.inner_text(card)
    page.click(about)
    page.wait_for_selector(card, state="hidden")
    page.focus(about)
    page.keyboard.press("Enter")
    page.wait_for_selector(card, state="visible")
    page.keyboard.press("Escape")
    page.wait_for_selector(card, state="hidden")
    # Mantine's CSS comes in its JS bundle under the page's CSP: the app shell's header is fixed
    # (and the page fixture fails the test on any console error)
    assert page.eval_on_selector(".header", "el => getComputedStyle(el).position") == "fixed"
    # The next change at once: the answer still in flight for the job it replaces never lands.
    choose(page, "layer-grid-layers-b-choice", "fc1 (")
    page.keyboard.press("Escape")
    layers_a, layers_b = ["conv1", "bn3"], ["fc1", *_default_layers("mlp-w8-s1-e25")]
    page.wait_for_function("""() => ['layer-grid-heatmap', 'layer-grid-heatmap2'].every(id => {
        const el = document.querySelector('#' + id + ' .js-plotly-plot');
        return el && el._fullData && el._fullData[0] && Array.from(el._fullData[0].x || []).includes('B: fc1'); })""",
                           timeout=240_000)
    heatmap, heatmap2 = (page.evaluate(PLOT_DATA, name)[0] for name in ("layer-grid-heatmap", "layer-grid-heatmap2"))
    acts_a = dict(zip(layers_a, _activations("cnn-w4-s0-e25", layers_a)))
    acts_b = dict(zip(layers_b, _activations("mlp-w8-s1-e25", layers_b)))
    for got, measure in ((heatmap, "cka_linear"), (heatmap2, "pwcca")):
        np.testing.assert_allclose(np.array(got["z"]), compute.layer_grid(acts_a, acts_b, measure=measure), atol=1e-6)
        assert got["y"] == [f"A: {name}" for name in layers_a]
        assert got["x"] == [f"B: {name}" for name in layers_b]
    words = figure_words(page, "layer-grid-heatmap")
    assert (words["y"], words["x"]) == ("layer of A (cnn-w4-s0-e25)", "layer of B (mlp-w8-s1-e25)")
    assert words["colorbars"][0] == "Linear CKA<br>(similarity: higher = more alike)"  # the measure in words
    assert figure_words(page, "layer-grid-heatmap2")["colorbars"][0] == "PWCCA<br>(similarity: higher = more alike)"
    assert _query(page) == {"a": "cnn-w4-s0-e25", "b": "mlp-w8-s1-e25", "measure2": "pwcca",
                            "layers_a": "conv1,bn3", "layers_b": ",".join(layers_b)}


def test_layer_grid_small_multiples_show_each_selected_model_against_its_twin(app_server, page):
    page.goto(app_server.url + "/layers?a=cnn-w4-s0-e25&measure=cka_linear&where=family:cnn;width:4;epochs:25")
    page.wait_for_selector("#layer-grid-multiples-choice")
    assert page.locator("#layer-grid-multiples-grid").count() == 0  # not drawn before it is asked for
    choose(page, "layer-grid-multiples-choice", "each selected model against its random-init twin")
    (panels,) = wait_for_figures(page, "layer-grid-multiples", ("grid",))
    assert _query(page)["multiples"] == "twins"
    trained = sorted(m.name for m in list_models("digits")
                     if m.tags.get("family") == "cnn" and m.tags.get("width") == 4 and m.tags.get("epochs") == 25)
    assert len(panels) == len(trained) == 3  # one heatmap per (seed, its untrained twin)
    titles = page.evaluate("() => document.querySelector('#layer-grid-multiples-grid .js-plotly-plot')"
                           "._fullLayout.annotations.map(a => a.text)")
    assert sorted(t.split(" × ")[0] for t in titles) == trained
    words = figure_words(page, "layer-grid-multiples-grid")  # the hover names the value as the colour bar does
    measure = words["colorbars"][0].replace("<br>", " ")
    assert all(f"<br>{measure} %{{z:.4f}}" in h for h in words["hovers"])
    layers = _default_layers("cnn-w4-s0-e25")
    for title, panel in zip(titles, panels):
        model, twin = title.split(" × ")
        expected = compute.layer_grid(dict(zip(layers, _activations(model, layers))),
                                      dict(zip(layers, _activations(twin, layers))), measure="cka_linear")
        np.testing.assert_allclose(np.array(panel["z"]), expected, atol=1e-6)


def test_layer_grid_twin_button_compares_with_the_untrained_model(app_server, page):
    page.goto(app_server.url + "/layers?a=mlp-w16-s0-e25&b=cnn-w2-s0-e25&measure=rv2")
    wait_for_figures(page, "layer-grid", ("heatmap",))
    assert page.inner_text("#layer-grid-twin") == ("B = its untrained twin: mlp-w16-s0-untrained "
                                                    "(the same architecture, random init, no training)")
    page.click("#layer-grid-twin")
    wait_for_title(page, "layer-grid-heatmap", "mlp-w16-s0-e25 (rows) × mlp-w16-s0-untrained (columns)")
    assert _query(page) == {"a": "mlp-w16-s0-e25", "b": "mlp-w16-s0-untrained", "measure": "rv2"}
    (heatmap,) = wait_for_figures(page, "layer-grid", ("heatmap",))
    layers = _default_layers("mlp-w16-s0-e25")
    expected = compute.layer_grid(dict(zip(layers, _activations("mlp-w16-s0-e25", layers))),
                                  dict(zip(layers, _activations("mlp-w16-s0-untrained", layers))), measure="rv2")
    np.testing.assert_allclose(np.array(heatmap[0]["z"]), expected, atol=1e-6)


def test_layer_grid_null_rings_cells_above_chance_shows_calibrated_scores_and_dimensionality(app_server, page):
    """The null toggle on (100 permutations), then calibrated scores: the rings and the calibrated
    cells are compute's; the dimensionality curves below are each model's, layer by layer."""
    page.goto(app_server.url + "/layers?a=cnn-w4-s0-e25&b=mlp-w8-s1-e25&measure=cka_linear")
    wait_for_figures(page, "layer-grid", ("heatmap",))
    choose(page, "layer-grid-null-choice", "100 permutations")
    page.wait_for_function("() => document.querySelector('#layer-grid-heatmap .js-plotly-plot')._fullData.length > 1",
                           timeout=240_000)
    choose(page, "layer-grid-show-choice", "calibrated")
    page.wait_for_function("() => document.querySelector('#layer-grid-heatmap .js-plotly-plot')._fullData[0]"
                           ".colorbar.title.text.startsWith('calibrated Linear CKA<br>(0 = chance, 1 = best')",
                           timeout=240_000)
    heatmap, rings = page.evaluate(PLOT_DATA, "layer-grid-heatmap")
    layers_a, layers_b = _default_layers("cnn-w4-s0-e25"), _default_layers("mlp-w8-s1-e25")
    acts_a = _activations("cnn-w4-s0-e25", layers_a)
    acts_b = _activations("mlp-w8-s1-e25", layers_b)
    result = compute.layer_grid(dict(zip(layers_a, acts_a)), dict(zip(layers_b, acts_b)), "cka_linear",
                                null=100, null_seed=0)
    np.testing.assert_allclose(np.array(heatmap["z"]), result.calibrated, atol=1e-6)
    rows, cols = np.nonzero(compute.fdr_bh(result.p) < 0.05)
    assert sorted(zip(rings["y"], rings["x"])) == sorted((f"A: {layers_a[i]}", f"B: {layers_b[j]}")
                                                         for i, j in zip(rows, cols))
    assert "BH-FDR" in rings["name"]
    assert _query(page) == {"a": "cnn-w4-s0-e25", "b": "mlp-w8-s1-e25", "null": "100", "show": "calibrated"}
    (curves,) = wait_for_figures(page, "layer-grid-dims", ("curve",))
    for curve, acts in zip(curves, (acts_a, acts_b)):
        np.testing.assert_allclose(curve["y"], [compute.dimensionality(x) for x in acts], rtol=1e-5)
    assert [curve["name"] for curve in curves] == ["cnn-w4-s0-e25", "mlp-w8-s1-e25"]


def test_confusion_view_matches_compute(app_server, page):
    page.goto(app_server.url + "/confusion?model=cnn-w8-s1-e5&rdm=cosine")
    rdm, top1, top5 = wait_for_figures(page, "confusion", ("rdm", "top1", "top5"))
    stimuli = get_stimulus_set("digits")
    scores = predict(load_model("cnn-w8-s1-e5"), stimuli.images)
    for k, figure in ((1, top1), (5, top5)):
        expected = compute.confusion_matrix(scores, stimuli.labels, k)
        np.testing.assert_allclose(np.array(figure[0]["z"]), expected, atol=1e-6)
        np.testing.assert_allclose(np.array(figure[0]["z"]).sum(axis=1), k, atol=1e-5)
        words = figure_words(page, f"confusion-top{k}")
        assert (words["y"], words["x"]) == ("true class", "predicted class")
        assert words["colorbars"][0] == "share of the true class's stimuli<br>" + (
            "predicted as this class" if k == 1 else f"with this class in their top {k}")
    assert figure_words(page, "confusion-rdm")["title"].startswith("Input RDM (1 − cosine similarity)<br>")
    (acts,) = _activations("cnn-w8-s1-e5", ["penultimate"])
    order = np.argsort(stimuli.labels, kind="stable")
    np.testing.assert_allclose(np.array(rdm[0]["z"]), compute.rdm(acts, "cosine")[np.ix_(order, order)], atol=1e-4)
    assert _query(page) == {"model": "cnn-w8-s1-e5", "rdm": "cosine"}


def test_confusion_view_places_every_model_by_rdm_and_by_confusion(app_server, page):
    from compute.measures.confusion import confusion_rdm
    from compute.sources.models import list_models
    from dashboard.selection import ordered as ordered_models

    page.goto(app_server.url + "/confusion?model=mlp-w16-s1-e25")
    by_rdm, by_top1, by_top5 = wait_for_figures(page, "confusion-models", ("rdm", "top1", "top5"))
    models = ordered_models(list_models("digits"))
    for figure in (by_rdm, by_top1, by_top5):
        assert sum(len(trace["x"]) for trace in figure) == len(models)
    stimuli = get_stimulus_set("digits")
    # Stored as float32 at each step, as the artifacts are: the many ties in these RDMs make
    # Spearman's ranks sensitive to the last bit.
    rdms = np.stack([confusion_rdm(compute.confusion_matrix(predict(load_model(m.name), stimuli.images),
                                                            stimuli.labels, 5).astype(np.float32)).astype(np.float32)
                     for m in models])
    matrix = compute.model_rdm(rdms, "spearman")
    coords = compute.mds(matrix, method="smacof")
    families = [m.tags.get("family", m.architecture) for m in models]
    members = [i for family in dict.fromkeys(families) for i, f in enumerate(families) if f == family]
    got = np.concatenate([np.column_stack([t["x"], t["y"]]) for t in by_top5])
    np.testing.assert_allclose(got, coords[members], atol=1e-3 * np.abs(coords).max())
    # Each map says how well it keeps its dissimilarities (Kruskal's stress-1 and word): the top-5
    # map's is compute's of the same model RDM and coordinates; the input RDM named in words.
    titles = [figure_words(page, f"confusion-models-{name}")["title"] for name in ("rdm", "top1", "top5")]
    assert titles[0].startswith("Models by input RDM (1 − Pearson correlation)<br>")
    stresses = [float(STRESS.search(title).group(1)) for title in titles]
    assert all(0 <= stress <= 1 for stress in stresses)
    assert abs(stresses[2] - compute.mds_stress(matrix, coords)) < 2e-3


def test_layer_curves_show_each_models_mean_dissimilarity_per_depth(app_server, page):
    from compute.sources.models import list_models

    page.goto(app_server.url + "/curves?compare=pearson")
    (traces,) = wait_for_figures(page, "curves", ("curves",))
    models = list_models("digits")
    # A scatter per depth (no line through models sorted by accuracy) and its fitted trend.
    assert [t["name"] for t in traces] == [name for d in (1, 2, 3) for name in
                                           (f"depth {d}", f"depth {d}: quadratic fit (least squares)")]
    curves, trends = traces[::2], traces[1::2]
    modes = page.evaluate("() => document.querySelector('#curves-curves .js-plotly-plot')._fullData.map(t => t.mode)")
    assert modes == ["markers", "lines"] * 3
    for points, trend in zip(curves, trends):
        np.testing.assert_allclose(trend["y"], np.polyval(np.polyfit(points["x"], points["y"], 2), trend["x"]), atol=1e-9)
    y_title = page.evaluate("() => document.querySelector('#curves-curves .js-plotly-plot')._fullLayout.yaxis.title.text")
    assert y_title.startswith("mean dissimilarity to the other models") and "higher = more unlike them" in y_title
    assert "(mean 1 − Pearson r of input RDMs" in y_title  # the comparison in the registry's words
    assert figure_words(page, "curves-curves")["title"].endswith(
        "<sup>input RDMs: Euclidean distance; compared by Pearson r</sup>")  # not "euclidean", "pearson"
    assert page.inner_text("#curves-compare-choice-info").startswith("Pearson r (pearson). similarity: higher")
    words = figure_words(page, "curves-curves")
    assert (words["x"], words["xformat"]) == ("top-1 accuracy (%)", ".0%")
    assert all(len(t["x"]) == len(models) for t in curves)
    firsts = [_default_layers(m.name)[0] for m in models]
    rdms = np.stack([compute.rdm(_activations(m.name, [layer])[0], "euclidean", condensed=True) for m, layer in zip(models, firsts)])
    matrix = compute.model_rdm(rdms, "pearson")
    expected = (matrix.sum(axis=1) - np.diag(matrix)) / (len(models) - 1)
    order = sorted(range(len(models)), key=lambda i: (models[i].accuracy, models[i].name))
    np.testing.assert_allclose(curves[0]["x"], [models[i].accuracy for i in order], rtol=1e-6)
    np.testing.assert_allclose(curves[0]["y"], expected[order], atol=1e-4)
    assert _query(page) == {"compare": "pearson"}


def test_the_measures_page_lists_every_method_by_family(app_server, page):
    from compute.measures.registry import COMPARE_METHODS, MDS_METHODS, MEASURES, RDM_METHODS, REPEATED_RDM_METHODS

    page.goto(app_server.url + "/layers")
    page.click("nav >> text=Measures")
    page.wait_for_selector("#measures-table")
    tables = (RDM_METHODS, REPEATED_RDM_METHODS, COMPARE_METHODS, MEASURES, MDS_METHODS)
    assert page.locator("#measures-table .measures-row").count() == sum(len(table) for table in tables)
    assert page.inner_text("#measures-measure").startswith("Direct similarity of two layers' activations")
    row = page.locator("#measures-table .measures-row", has_text="cka_debiased").inner_text()
    for said in ("Debiased linear CKA", "similarity: higher = more alike", "[−1, 1]", "Song et al. 2012",
                 "orthogonal, isotropic scaling, translation"):
        assert said in row


def test_a_failing_job_says_why_in_the_page(app_server, page):
    # 55 stimuli are all zero after this untrained CNN's first block: correlation is undefined.
    page.goto(app_server.url + "/rdm?model=cnn-w2-s0-untrained&layer=bn1")
    alert = page.wait_for_selector("#input-rdm-progress .status-failed", timeout=240_000)
    assert "constant activation patterns" in alert.inner_text()
