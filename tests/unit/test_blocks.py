"""Class-sorted block means and full-resolution windows of a condensed RDM, against the square
matrix scipy's squareform gives."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.spatial.distance import pdist, squareform

from compute.measures.blocks import class_order, sorted_blocks, sorted_window, window
from compute.measures.condensed import side_of


def _rdm(n, seed=0, classes=4):
    rng = np.random.default_rng(seed)
    return pdist(rng.normal(size=(n, 5))).astype(np.float32), rng.integers(0, classes, n)


def _reference_blocks(square, factor):
    n = square.shape[0]
    starts = np.arange(0, n, factor)
    sizes = np.diff(np.append(starts, n))
    sums = np.add.reduceat(np.add.reduceat(square.astype(np.float64), starts, 0), starts, 1)
    return sums / np.outer(sizes, sizes), starts + (sizes - 1) / 2


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 120), max_side=st.integers(1, 130), chunk=st.sampled_from([50, 1000, 10**6]))
def test_sorted_blocks_are_the_block_means_of_the_class_sorted_matrix(n, max_side, chunk):
    condensed, labels = _rdm(n, seed=n)
    order = class_order(labels)
    square = squareform(condensed)[np.ix_(order, order)]
    blocks, centres = sorted_blocks(condensed, labels, max_side, chunk=chunk)
    expected, expected_centres = _reference_blocks(square, -(-n // max_side))
    assert blocks.shape == expected.shape and blocks.shape[0] <= max_side
    np.testing.assert_allclose(blocks, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(centres, expected_centres)


def test_a_window_is_the_square_matrix_s_entries_without_building_it():
    condensed, labels = _rdm(57)
    square = squareform(condensed)
    rows, cols = [0, 5, 56, 5], [56, 5, 0, 1, 30]
    np.testing.assert_array_equal(window(condensed, rows, cols), square[np.ix_(rows, cols)])
    order = class_order(labels)
    z, r, c = sorted_window(condensed, labels, (10, 30), (-5, 20), max_side=100)  # clipped at 0
    np.testing.assert_array_equal(z, square[np.ix_(order, order)][10:30, 0:20])
    assert (r[0], r[-1], c[0], c[-1]) == (10, 29, 0, 19)
    z, r, c = sorted_window(condensed, labels, (0, 57), (0, 57), max_side=10)  # too big: blocks
    assert z.shape == (10, 10)
    with pytest.raises(ValueError, match="empty window"):
        sorted_window(condensed, labels, (30, 30), (0, 5))


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="N\\(N-1\\)/2"):
        side_of(np.zeros(4))
    with pytest.raises(ValueError, match="3 labels for an RDM of 4"):
        sorted_blocks(np.zeros(6), [0, 1, 2])
    with pytest.raises(ValueError, match="max_side"):
        sorted_blocks(np.zeros(6), [0, 1, 2, 3], 0)


def test_a_zoom_asks_for_the_window_it_shows_and_a_reset_for_the_overview():
    from dashboard.views.input_rdm import zoom_window

    assert zoom_window({"xaxis.range[0]": 9.6, "xaxis.range[1]": 20.2,
                        "yaxis.range[0]": 30.4, "yaxis.range[1]": 4.5}, 500) == ((5, 31), (10, 21))
    assert zoom_window({"xaxis.range": [-3, 10]}, 500) == ((0, 500), (0, 11))
    assert zoom_window({"xaxis.autorange": True, "yaxis.autorange": True}, 500) == "overview"
    assert zoom_window({"dragmode": "pan"}, 500) is None
    assert zoom_window({"xaxis.range": [-3, 600]}, 500) is None  # the whole matrix: nothing to redraw
    assert zoom_window({"xaxis.range": [600, 700]}, 500) is None  # beyond it


def test_a_zoom_window_is_written_in_the_url_and_read_back():
    from dashboard.views.input_rdm import parse_window, window_text

    window = ((40, 91), (10, 71))
    assert window_text(window) == "40-91x10-71" and parse_window("40-91x10-71", 500) == window
    assert window_text(None) == ""
    for edited in ("", "40-91", "91-40x10-71", "40-91x10-501", "a-bxc-d", "40-91x10-71;"):
        assert parse_window(edited, 500) is None  # an edited link falls back to the whole RDM


def test_the_url_keeps_a_replaced_key_and_the_others():
    from dashboard import url_codec

    assert url_codec.replace("?b=2&zoom=1-2x3-4", "zoom", "5-6x7-8") == "?b=2&zoom=5-6x7-8"
    assert url_codec.replace("?b=2&zoom=1-2x3-4", "zoom", "") == "?b=2"
    assert url_codec.replace(None, "zoom", None) == ""


def test_a_view_opened_on_a_zoom_draws_that_window():
    """Without block averaging (500 stimuli, max side 1000) the cells stay and the axes show the window."""
    from dashboard.selection import Selection
    from dashboard.views.input_rdm import draw

    view = {"model": "m", "layer": "fc1", "rdm": "euclidean", "mds": "classical", "zoom": "40-91x10-71"}
    context = {"view": view, "max_side": 1000, "selection": Selection().url_params()}
    n = len(Selection().stimuli)
    arrays = {"blocks": np.zeros((n, n), np.float32), "mds": np.zeros((n, 2), np.float32)}
    heatmap, _ = draw(context, arrays)
    assert list(heatmap.layout.xaxis.range) == [9.5, 70.5] and list(heatmap.layout.yaxis.range) == [90.5, 39.5]
    heatmap, _ = draw({**context, "view": {**view, "zoom": ""}}, arrays)
    assert heatmap.layout.xaxis.range is None


def test_a_zoomed_view_whose_rdm_was_evicted_shows_the_window_in_blocks(tmp_path, monkeypatch):
    from compute.engine import artifacts
    from dashboard import services
    from dashboard.selection import Selection
    from dashboard.views.input_rdm import draw

    monkeypatch.setenv("REPSCOPE_CACHE_DIR", str(tmp_path / "cache"))  # an empty store
    services.backend.cache_clear()
    try:
        stimuli = Selection().stimuli
        rdm = artifacts.rdm_spec("a" * 64, stimuli, "fc1")
        view = {"model": "m", "layer": "fc1", "rdm": "correlation", "mds": "classical", "zoom": "40-91x10-71"}
        context = {"view": view, "max_side": 100, "rdm": rdm.to_json(), "selection": Selection().url_params()}
        blocks = np.random.default_rng(0).random((100, 100)).astype(np.float32)
        heatmap, _ = draw(context, {"blocks": blocks, "mds": np.zeros((len(stimuli), 2), np.float32)})
    finally:
        services.backend.cache_clear()
    np.testing.assert_array_equal(np.asarray(heatmap.data[0].z), blocks)
    assert list(heatmap.layout.xaxis.range) == [9.5, 70.5]
