"""The ranked bar chart: order, error bars, groups and the shaded band, without a browser."""
import numpy as np
import pytest

from dashboard.figures.bars import ranked_bars, ranking


def test_ranking_puts_the_best_first_and_nan_last():
    assert ranking([0.2, np.nan, 0.9, 0.5]) == [2, 3, 0, 1]
    assert ranking([0.2, np.nan, 0.9, 0.5], higher_is_better=False) == [0, 3, 2, 1]
    assert ranking([1.0, 1.0, 2.0]) == [2, 0, 1]  # ties keep their order


def _figure(higher_is_better=True, band=(0.6, 0.8)):
    return ranked_bars(
        labels=["a", "b", "c", "d"], values=[0.1, 0.7, 0.4, 0.9], low=[0.0, 0.6, np.nan, 0.85],
        high=[0.2, 0.75, np.nan, 0.95], groups=["depth 1", "depth 2", "depth 1", "depth 2"],
        hover=["ha", "hb", "hc", "hd"], title="t", x_title="x", higher_is_better=higher_is_better,
        band=band, band_label="noise ceiling")


def test_bars_are_ranked_grouped_and_carry_their_intervals():
    figure = _figure()
    assert list(figure.layout.yaxis.categoryarray) == ["d", "b", "c", "a"]
    assert figure.layout.yaxis.autorange == "reversed"  # the first category at the top
    depth1, depth2 = figure.data
    assert (depth1.name, list(depth1.y), list(depth1.x)) == ("depth 1", ["c", "a"], [0.4, 0.1])
    assert (depth2.name, list(depth2.y), list(depth2.x)) == ("depth 2", ["d", "b"], [0.9, 0.7])
    np.testing.assert_allclose(depth2.error_x.array, [0.05, 0.05])
    np.testing.assert_allclose(depth2.error_x.arrayminus, [0.05, 0.1])
    np.testing.assert_allclose(depth1.error_x.array, [0.0, 0.1])  # no interval for c: no bar
    assert list(depth1.text) == ["hc", "ha"] and depth1.marker.color != depth2.marker.color
    assert figure.layout.height == 160 + 22 * 4


def test_distances_rank_the_smallest_first():
    assert list(_figure(higher_is_better=False).layout.yaxis.categoryarray) == ["a", "c", "b", "d"]


def test_the_band_is_a_shaded_rectangle_over_the_whole_height():
    (shape,) = _figure(band=(0.8, 0.6)).layout.shapes
    assert (shape.type, shape.x0, shape.x1, shape.yref, shape.y0, shape.y1) == ("rect", 0.6, 0.8, "paper", 0, 1)
    assert _figure(band=(np.nan, np.nan)).layout.shapes == ()
    assert _figure(band=None).layout.annotations == ()


def test_no_error_bars_without_intervals_and_mismatched_inputs_refused():
    figure = ranked_bars(["a", "b"], [1.0, 2.0], [np.nan] * 2, [np.nan] * 2, ["g", "g"], ["", ""], "t", "x")
    assert figure.data[0].error_x.visible is False
    assert ranked_bars([], [], [], [], [], [], "empty", "x").data == ()
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        ranked_bars(["a", "b"], [1.0], [0.0], [2.0], ["g"], [""], "t", "x")
    with pytest.raises(ValueError, match="unique labels"):
        ranked_bars(["a", "a"], [1.0, 2.0], [0.0] * 2, [2.0] * 2, ["g"] * 2, [""] * 2, "t", "x")
