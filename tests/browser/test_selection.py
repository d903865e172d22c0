"""The left panel's selection in a real browser: tag filters from a link, kept across views,
lasso-selected models, the Compute button for uncached heavy work, thumbnails on hover."""
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from compute.sources.models import list_models
from tests.browser.support import choose, figure_words, running_app, wait_for_figures, wait_for_title
from tests.support import wait_until


def _query(page):
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _points(traces):
    return sum(len(t["x"]) for t in traces)


def test_a_link_s_tag_filters_select_the_models_of_every_view(app_server, page, zoo_dir):
    cnn_trained = [m for m in list_models("digits") if m.tags.get("family") == "cnn" and m.tags.get("group") == "trained"]
    page.goto(app_server.url + "/?where=family:cnn;group:trained")
    heatmap, mds = wait_for_figures(page)
    assert _points(mds) == len(cnn_trained)
    # The figures take the window: a wider window, a larger square heatmap, still seen whole.
    narrow = _square_side(page)
    page.set_viewport_size({"width": 1800, "height": 1000})
    wait_until(lambda: _square_side(page) > narrow + 100, 20, "the heatmap grown with the window")
    assert page.evaluate(f"() => document.querySelector('{_HEATMAP}')._fullLayout.height") <= 1000 - 150
    page.set_viewport_size({"width": 1400, "height": 1000})
    summary = page.inner_text("#selection-summary")  # which accuracy, and that it is the % beside each model
    assert summary.startswith(f"{len(cnn_trained)} of ") and "top-1 accuracy on digits" in summary
    assert summary.endswith("(the % beside each model)")
    # The model page's words: the model RDM's scale in the registry's words and its axes' order,
    # the MDS's distances and its accuracy colour bar in %.
    heatmap = figure_words(page, "model-space-heatmap")
    assert heatmap["colorbars"][0].startswith("1 − Spearman ρ<br>(dissimilarity")
    assert (heatmap["x"], heatmap["y"]) == ("model (least to most accurate; hover for names)", "model")
    scatter = figure_words(page, "model-space-mds")
    assert scatter["x"] == "MDS 1 (distance between points ≈ their dissimilarity)"
    assert (scatter["colorbars"][0], scatter["colorformats"][0]) == ("top-1 accuracy (%, higher is better)", ".0%")
    assert _query(page)["where"] == "family:cnn;group:trained"
    # The navigation bar keeps the selection: the layer grid's model A is the best selected CNN.
    best = min(cnn_trained, key=lambda m: (-m.accuracy, m.name))  # ties: by name, as the view does
    page.click("a.nav-link[href='/layers']")
    wait_for_title(page, "layer-grid-heatmap", f"{best.name} (rows)")
    assert _query(page)["where"] == "family:cnn;group:trained"
    # The panel shows what the page reads: the layer grid groups nothing, the Jobs page reads none.
    expect(page.locator("#selection-where-part")).to_be_visible()
    expect(page.locator("#selection-group-part")).to_be_hidden()
    page.click("a.nav-link[href='/jobs']")
    expect(page.locator(".sidebar")).to_be_hidden()
    page.click("a.nav-link[href='/']")
    expect(page.locator("#selection-group-part")).to_be_visible()


_HEATMAP = "#model-space-heatmap .js-plotly-plot"


def _square_side(page) -> float:
    """The side of the heatmap's square plot, in pixels."""
    return page.evaluate(f"() => {{ const l = document.querySelector('{_HEATMAP}')._fullLayout;"
                         " return Math.min(l.xaxis._length, l.yaxis._length); }")


def test_lasso_selecting_models_on_the_mds_selects_them(app_server, page):
    page.goto(app_server.url + "/?where=family:mlp;epochs:25")
    _, mds = wait_for_figures(page)
    total = _points(mds)
    # Box-select (the lasso's sibling in Plotly's toolbar) the left half of the plot area.
    page.hover("#model-space-mds .js-plotly-plot")
    page.click("#model-space-mds .modebar-btn[data-val='select']")
    box = page.locator("#model-space-mds .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2, steps=8)
    page.mouse.up()
    page.wait_for_function("() => new URLSearchParams(location.search).has('models')", timeout=60_000)
    chosen = _query(page)["models"].split(",")
    assert 0 < len(chosen) < total
    page.wait_for_function(
        """n => { const el = document.querySelector('#model-space-mds .js-plotly-plot');
                  return el && el._fullData && el._fullData.reduce((s, t) => s + t._length, 0) === n; }""",
        arg=len(chosen), timeout=120_000)


def test_hovering_a_stimulus_shows_its_thumbnail(app_server, page):
    page.goto(app_server.url + "/rdm?model=cnn-w4-s0-e25")
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    point = page.locator("#input-rdm-mds .scatterlayer .point").first
    point.hover(force=True)
    page.wait_for_function("() => (document.querySelector('#input-rdm-thumbnail').src || '').startsWith('data:image/png')",
                           timeout=30_000)
    assert "class" in page.inner_text("#input-rdm-thumbnail-caption")


@pytest.fixture(scope="module")
def asking_server(zoo_dir, tmp_path_factory):
    """An app that asks before computing anything (REPSCOPE_AUTO_COMPUTE_BYTES=0)."""
    with running_app(zoo_dir, tmp_path_factory.mktemp("asking"), {"REPSCOPE_AUTO_COMPUTE_BYTES": "0"}) as server:
        yield server


def test_uncached_heavy_work_waits_for_the_compute_button_and_cached_work_does_not(asking_server, page):
    page.goto(asking_server.url + "/rdm?model=mlp-w8-s0-e25")
    page.wait_for_selector("#input-rdm-compute", timeout=60_000)
    assert "Not computed yet" in page.inner_text("#input-rdm-progress")
    # The figure says so too, not "Computing…" (Plotly draws its text after the progress line shows).
    expect(page.locator("#input-rdm-heatmap")).to_contain_text("press Compute", timeout=30_000)
    assert "forward pass" in page.inner_text("#input-rdm-progress")
    assert re.search(r"about [\d.]+ \w+ of memory and (about \d+ (s|min)|under a second)",
                     page.inner_text("#input-rdm-progress"))  # the estimate names memory and time
    page.click("#input-rdm-compute")
    # Gone once the job starts (else wait_for_figures, seeing it still there, would press it again).
    page.wait_for_selector("#input-rdm-compute", state="detached", timeout=60_000)
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    page.reload()  # now cached: drawn without asking
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    assert page.locator("#input-rdm-compute").count() == 0


def test_a_press_on_the_button_of_a_state_just_left_does_not_bring_it_back(asking_server, page):
    """The user picks another RDM method and, before the page has answered, presses the Compute
    button still shown for the old one. The requests are held so that the press is answered after
    the new state's record but before the new state's button is drawn (Dash drops the press's
    answer when a new button comes first). The view must stay on the method the dropdown and the
    URL show; the press used to start the old state and put it back (CI's test_rsa92 at stop 25:
    the chosen monkey-IT RDM never joined the bars)."""
    held, polls = {}, []

    def hold(route):
        request = json.loads(route.request.post_data or "{}")
        changed, output = request.get("changedPropIds", []), request.get("output", "")
        if "released" in held:
            route.continue_()
        elif "input-rdm-job.data" in output and changed in (["input-rdm-rdm-choice.value"],
                                                          ["input-rdm-compute.n_clicks"]):
            held[changed[0].split(".")[0]] = route
        elif "input-rdm-progress.children" in output and "input-rdm-rdm-choice" in held:
            polls.append(route)  # the new state's first poll, which would put its own button on the page
        else:
            route.continue_()

    def waiting(what):
        return lambda: page.wait_for_timeout(50) or what()

    page.goto(asking_server.url + "/rdm?model=cnn-w16-s0-e5")
    page.wait_for_selector("#input-rdm-compute", timeout=60_000)  # correlation distance, asking
    page.route("**/_dash-update-component*", hold)
    choose(page, "input-rdm-rdm-choice", "Euclidean distance")
    wait_until(waiting(lambda: "input-rdm-rdm-choice" in held), 30, "the new state's request")
    page.click("#input-rdm-compute")  # the old state's button
    wait_until(waiting(lambda: "input-rdm-compute" in held), 30, "the press's request")
    held["input-rdm-rdm-choice"].continue_()  # the new state's record lands first ...
    wait_until(waiting(lambda: polls), 30, "the new state's poll")
    with page.expect_response(lambda response: response.request == held["input-rdm-compute"].request):
        held["input-rdm-compute"].continue_()  # ... then the press, before the new state's button is drawn
    page.wait_for_timeout(500)
    held["released"] = True
    for route in polls:
        route.continue_()
    page.wait_for_timeout(3 * 400)  # three polls
    assert page.locator("#input-rdm-compute").count() == 1  # the new state still asks: nothing old started
    expect(page.locator("#input-rdm-heatmap")).to_contain_text("press Compute", timeout=30_000)
    page.unroute("**/_dash-update-component*")
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    assert figure_words(page, "input-rdm-heatmap")["colorbars"] == ["Euclidean<br>distance<br>(dissimilarity)"]
