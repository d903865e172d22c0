"""Large input RDMs: drawn as block means, redrawn at full resolution where the user zooms, and
back to the blocks on a double click (autorange); the zoom lives in the URL, so its link opens
on the same window. The app draws at most 100 blocks per side here, so the digits' 500 stimuli
are 5 x 5 blocks."""
from urllib.parse import parse_qsl, urlparse

import numpy as np
import pytest
from scipy.spatial.distance import squareform

import compute
from compute.measures.blocks import class_order
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import (PLOT_DATA, choose, double_click_to_autorange, running_app, wait_for_figures,
                                   wait_for_title)
from tests.browser.test_views import _activations
from tests.support import wait_until

MODEL, LAYER = "cnn-w4-s0-e25", "fc2"


@pytest.fixture(scope="module")
def small_blocks_server(zoo_dir, tmp_path_factory):
    with running_app(zoo_dir, tmp_path_factory.mktemp("zoom"), {"REPSCOPE_RDM_MAX_SIDE": "100"}) as server:
        yield server


def _heatmap(page):
    return page.evaluate(PLOT_DATA, "input-rdm-heatmap")[0]


def _zoom_in_url(page):
    return dict(parse_qsl(urlparse(page.url).query)).get("zoom")


FULL_RESOLUTION = ("() => { const t = document.querySelector('#input-rdm-heatmap .js-plotly-plot')._fullData[0];"
                   " return t && t.x && Number.isInteger(t.x[0]) && t.x.length < 400 && t.x[1] - t.x[0] === 1; }")


def test_zooming_into_a_block_averaged_rdm_shows_the_window_at_full_resolution(small_blocks_server, page):
    page.goto(small_blocks_server.url + f"/rdm?model={MODEL}&layer={LAYER}&rdm=euclidean")
    heatmap, _ = wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    stimuli = get_stimulus_set("digits")
    order = class_order(stimuli.labels)
    (acts,) = _activations(MODEL, [LAYER])
    full = squareform(compute.rdm(acts, method="euclidean", condensed=True))[np.ix_(order, order)]
    blocks = full.reshape(100, 5, 100, 5).mean(axis=(1, 3))
    np.testing.assert_allclose(np.array(heatmap[0]["z"]), blocks, rtol=1e-4, atol=1e-4)

    # Drag a zoom box from sorted stimulus (row 40, column 10) to (row 90, column 70).
    corners = page.evaluate("""() => { const el = document.querySelector('#input-rdm-heatmap .js-plotly-plot');
        const box = el.getBoundingClientRect(), x = el._fullLayout.xaxis, y = el._fullLayout.yaxis;
        return [[10, 40], [70, 90]].map(([c, r]) => [box.left + x._offset + x.l2p(c), box.top + y._offset + y.l2p(r)]); }""")
    page.mouse.move(*corners[0])
    page.mouse.down()
    page.mouse.move(*corners[1], steps=8)
    page.mouse.up()
    page.wait_for_function(FULL_RESOLUTION, timeout=60_000)
    zoomed = _heatmap(page)
    rows, cols = np.array(zoomed["y"], dtype=int), np.array(zoomed["x"], dtype=int)
    # The rows dragged over; the columns as wide or wider (the heatmap keeps square cells).
    assert abs(rows[0] - 40) <= 1 and abs(rows[-1] - 90) <= 1 and 60 <= len(cols) < 100
    np.testing.assert_allclose(np.array(zoomed["z"]), full[np.ix_(rows, cols)], rtol=1e-4, atol=1e-4)
    wait_until(lambda: _zoom_in_url(page), 30, "the zoom in the URL")
    assert _zoom_in_url(page) == f"{rows[0]}-{rows[-1] + 1}x{cols[0]}-{cols[-1] + 1}"

    # The link opens on the same window, and another layer keeps it.
    shared = page.context.new_page()
    shared.goto(page.url)
    wait_for_figures(shared, "input-rdm", ("heatmap", "mds"))
    shared.wait_for_function(FULL_RESOLUTION, timeout=60_000)
    opened = _heatmap(shared)
    np.testing.assert_array_equal(np.array(opened["y"], dtype=int), rows)
    np.testing.assert_allclose(np.array(opened["z"]), full[np.ix_(rows, np.array(opened["x"], dtype=int))],
                               rtol=1e-4, atol=1e-4)
    y_range = shared.evaluate("() => document.querySelector('#input-rdm-heatmap .js-plotly-plot')._fullLayout.yaxis.range")
    assert sorted(y_range) == pytest.approx([rows[0] - 0.5, rows[-1] + 0.5])
    choose(shared, "input-rdm-layer-choice", "fc3")
    wait_for_title(shared, "input-rdm-heatmap", "layer fc3")
    shared.wait_for_function(FULL_RESOLUTION, timeout=60_000)
    assert _zoom_in_url(shared) == _zoom_in_url(page) and "layer=fc3" in shared.url
    np.testing.assert_array_equal(np.array(_heatmap(shared)["y"], dtype=int), rows)
    double_click_to_autorange(shared, "input-rdm-heatmap")  # the blocks, row 0 still at the top
    shared.wait_for_function(
        "() => document.querySelector('#input-rdm-heatmap .js-plotly-plot')._fullData[0].x.length === 100",
        timeout=60_000)
    y_range = shared.evaluate("() => document.querySelector('#input-rdm-heatmap .js-plotly-plot')._fullLayout.yaxis.range")
    assert y_range[0] > y_range[1]
    shared.close()

    double_click_to_autorange(page, "input-rdm-heatmap")  # the blocks again
    page.wait_for_function(
        "() => document.querySelector('#input-rdm-heatmap .js-plotly-plot')._fullData[0].x.length === 100",
        timeout=60_000)
    np.testing.assert_allclose(np.array(_heatmap(page)["z"]), blocks, rtol=1e-4, atol=1e-4)
    wait_until(lambda: _zoom_in_url(page) is None, 30, "the zoom gone from the URL")
