"""Figure functions and the views' pure helpers, without a browser."""
from types import SimpleNamespace

import numpy as np
import pytest

from compute.measures.blocks import class_order
from dashboard.figures.heatmap import labelled_heatmap, matrix_heatmap, rdm_heatmap, replace_heatmap
from dashboard.figures.scatter import class_scatter
from dashboard.compute_panel import combined_status


def test_rdm_heatmap_sorts_by_class_and_marks_boundaries():
    labels = np.array([1, 0, 1, 0, 2])
    matrix = np.abs(np.subtract.outer(np.arange(5.0), np.arange(5.0)))
    order = class_order(labels)
    figure = rdm_heatmap(matrix[np.ix_(order, order)], np.arange(5.0), labels, ["zero", "one", "two"], "t", "c")
    assert order.tolist() == [1, 3, 0, 2, 4]
    assert np.array_equal(np.asarray(figure.data[0].z), matrix[np.ix_(order, order)])
    assert list(figure.layout.xaxis.ticktext) == ["zero", "one", "two"]
    assert list(figure.layout.xaxis.tickvals) == [0.5, 2.5, 4.0]
    # Two boundaries (after 2 and 4 sorted stimuli), one line per axis each.
    assert sorted({shape.x0 for shape in figure.layout.shapes if shape.x0 == shape.x1}) == [1.5, 3.5]
    assert len(figure.layout.shapes) == 4
    assert figure.layout.uirevision == "t"  # a zoom survives the full-resolution patch
    with pytest.raises(ValueError, match="block centres"):
        rdm_heatmap(matrix, np.arange(3.0), labels, ["zero", "one", "two"], "t", "c")


def test_replace_heatmap_patches_only_the_cells():
    patch = replace_heatmap(np.ones((2, 3)), [4, 5], [7, 8, 9])
    operations = patch.to_plotly_json()["operations"]
    assert {tuple(op["location"]) for op in operations} == {("data", 0, "z"), ("data", 0, "x"), ("data", 0, "y")}


def test_labelled_heatmap_is_rectangular_with_a_fixed_range():
    figure = labelled_heatmap(np.ones((2, 3)), ["r1", "r2"], ["c1", "c2", "c3"], "t", "c",
                              zrange=(0.0, 1.0), annotate=True)
    trace = figure.data[0]
    assert list(trace.y) == ["r1", "r2"] and list(trace.x) == ["c1", "c2", "c3"]
    assert (trace.zmin, trace.zmax) == (0.0, 1.0) and trace.texttemplate
    with pytest.raises(ValueError, match="does not match"):
        labelled_heatmap(np.ones((2, 3)), ["r1"], ["c1", "c2", "c3"], "t", "c")


def test_matrix_heatmap_stays_square():
    figure = matrix_heatmap(np.eye(3), ["a", "b", "c"], "t", "c")
    assert figure.layout.yaxis.scaleanchor == "x" and figure.layout.yaxis.autorange == "reversed"
    # a square plot in a wider area: category gridlines would stick out above and below it
    assert figure.layout.xaxis.showgrid is False and figure.layout.yaxis.showgrid is False


def test_class_scatter_has_one_trace_per_class_in_class_order():
    coords = np.arange(12.0).reshape(6, 2)
    labels = np.array([2, 0, 2, 1, 0, 2])
    figure = class_scatter(coords, labels, ["a", "b", "c"], [f"s{i}" for i in range(6)], "t")
    assert [trace.name for trace in figure.data] == ["a", "b", "c"]
    assert [len(trace.x) for trace in figure.data] == [2, 1, 3]
    assert list(figure.data[2].text) == ["s0", "s2", "s5"]
    assert len({trace.marker.color for trace in figure.data}) == 3


def test_combined_status_waits_for_every_job():
    done = {"state": "done", "progress": 1.0, "message": "done"}
    running = {"state": "running", "progress": 0.5, "message": "extracting"}
    assert combined_status([done, done])["state"] == "done"
    both = combined_status([done, running])
    assert both["state"] == "running" and both["progress"] == 0.75 and both["message"] == "extracting"
    failed = {"state": "failed", "progress": 0.1, "message": "boom"}
    assert combined_status([running, failed]) == failed


def _model(name, epochs, seed=0, width=8, arch="mlp"):
    return SimpleNamespace(name=name, key=name, architecture=arch, hparams={"hidden": [width]},
                           tags={"epochs": epochs, "seed": seed})


def test_random_init_twin_is_the_untrained_model_of_the_same_architecture():
    from dashboard.views.layer_grid import random_init_twin

    trained = _model("t", 25, seed=1)
    models = [trained, _model("u-other-width", 0, width=4), _model("u-s0", 0, seed=0),
              _model("u-s1", 0, seed=1), _model("cnn-u", 0, arch="cnn")]
    assert random_init_twin(trained, models).name == "u-s1"
    assert random_init_twin(trained, models[:3]).name == "u-s0"
    assert random_init_twin(models[2], models) is None
    assert random_init_twin(trained, [trained, models[1]]) is None


def test_layer_curves_are_a_scatter_per_depth_with_its_least_squares_trend():
    from dashboard.figures.curves import layer_curves, trend

    accuracy, values = [0.9, None, 0.1, 0.5, 0.7], [3.0, 2.0, 1.0, 1.5, 2.5]
    figure = layer_curves([("depth 1", accuracy, values, ["a", "b", "c", "d", "e"]),
                           ("depth 2", [0.5, 0.6], [0.2, 0.4], ["a", "b"])], "t", "y (higher = more)")
    assert [trace.name for trace in figure.data] == ["depth 1", "depth 1: quadratic fit (least squares)",
                                                     "depth 2", "depth 2: linear fit (least squares)"]
    points, line = figure.data[:2]
    assert points.mode == "markers" and line.mode == "lines"  # no line zig-zags through the models
    assert list(points.x) == [0.1, 0.5, 0.7, 0.9] and list(points.y) == [1.0, 1.5, 2.5, 3.0]  # unknown left out
    assert list(points.text) == ["c", "d", "e", "a"]
    np.testing.assert_allclose(trend(points.x, points.y), np.polyfit([0.1, 0.5, 0.7, 0.9], [1.0, 1.5, 2.5, 3.0], 2))
    np.testing.assert_allclose(line.y, np.polyval(trend(points.x, points.y), line.x))
    assert line.x[0] == 0.1 and line.x[-1] == 0.9
    np.testing.assert_allclose(figure.data[3].y[[0, -1]], [0.2, 0.4])  # two points: the line through them
    assert figure.layout.xaxis.title.text == "top-1 accuracy (%)" and figure.layout.yaxis.title.text == "y (higher = more)"
    with pytest.raises(ValueError, match="curve 'x'"):
        layer_curves([("x", [0.1], [1.0, 2.0], ["a"])], "t", "y")


def test_depth_layers_name_the_penultimate_layer_as_the_other_views_do():
    from compute.sources.layers import LayerInfo
    from dashboard.view_parts.depths import depth_layers

    layers = [LayerInfo("fc1", "Linear", False, False), LayerInfo("act1", "ReLU", True, False),
              LayerInfo("act2", "ReLU", True, True), LayerInfo("out", "Linear", False, False)]
    assert depth_layers(layers) == ["act1", "penultimate"]


def test_small_multiples_share_one_colour_scale_and_name_each_panel():
    from dashboard.figures.heatmap import small_multiples

    panels = [(np.full((2, 3), i / 10), ["r1", "r2"], ["c1", "c2", "c3"], f"pair {i}") for i in range(5)]
    figure = small_multiples(panels, "CKA", (0.0, 1.0), "t", columns=4)
    assert len(figure.data) == 5 and {t.coloraxis for t in figure.data} == {"coloraxis"}
    assert (figure.layout.coloraxis.cmin, figure.layout.coloraxis.cmax) == (0.0, 1.0)
    assert [a.text for a in figure.layout.annotations] == [f"pair {i}" for i in range(5)]
    assert figure.data[4].xaxis == "x5"  # second row
    assert all(axis.showgrid is False for axis in (figure.layout.xaxis, figure.layout.yaxis5))
    with pytest.raises(ValueError, match="at least one panel"):
        small_multiples([], "CKA", None, "t")


def test_matrix_heatmap_separates_groups_and_names_them_when_labels_are_too_many():
    labels = [f"m{i}" for i in range(50)]
    groups = ["cnn"] * 20 + ["mlp"] * 30
    figure = matrix_heatmap(np.zeros((50, 50)), labels, "t", "c", groups=groups)
    lines = [(s.x0, s.x1, s.y0, s.y1) for s in figure.layout.shapes]
    assert lines == [(19.5, 19.5, -0.5, 49.5), (-0.5, 49.5, 19.5, 19.5)]
    assert list(figure.layout.xaxis.tickvals) == ["m9", "m34"] and list(figure.layout.yaxis.ticktext) == ["cnn", "mlp"]
    few = matrix_heatmap(np.zeros((3, 3)), ["a", "b", "c"], "t", "c", groups=["x", "x", "y"])
    assert len(few.layout.shapes) == 2 and few.layout.xaxis.tickvals is None  # the names themselves fit
    with pytest.raises(ValueError, match="2 groups for 3 labels"):
        matrix_heatmap(np.zeros((3, 3)), ["a", "b", "c"], "t", "c", groups=["x", "y"])


def test_model_rdm_sorted_by_group_or_name_permutes_rows_and_columns_alike():
    from types import SimpleNamespace

    from dashboard.views.model_space import display_order, figures

    models = [SimpleNamespace(name=n, accuracy=a, architecture=f, tags={"family": f})
              for n, a, f in [("d", 0.9, "mlp"), ("b", 0.8, "cnn"), ("c", 0.7, "mlp"), ("a", 0.6, "cnn")]]
    family = lambda m: m.tags["family"]  # noqa: E731
    assert display_order(models, "accuracy", family) == [0, 1, 2, 3]
    assert display_order(models, "group", family) == [1, 3, 0, 2]  # cnn then mlp, by accuracy within
    assert display_order(models, "name", family) == [3, 1, 2, 0]
    widths = {"d": "16", "b": "2", "c": "(none)", "a": "16"}
    assert display_order(models, "group", lambda m: widths[m.name]) == [1, 0, 3, 2]  # 2 < 16, then names
    matrix = np.arange(16.0).reshape(4, 4)
    matrix = matrix + matrix.T
    view = {"compare": "spearman", "mds": "classical", "sort": "group"}
    heatmap, _ = figures(models, matrix, np.zeros((4, 2)), view, family)
    trace = heatmap.data[0]
    assert list(trace.y) == ["b", "a", "d", "c"] and list(trace.x) == list(trace.y)
    np.testing.assert_array_equal(np.asarray(trace.z), matrix[np.ix_([1, 3, 0, 2], [1, 3, 0, 2])])
    assert "sorted by group, then accuracy" in heatmap.layout.title.text and len(heatmap.layout.shapes) == 2


def test_the_model_map_shows_accuracy_in_percent():
    from types import SimpleNamespace

    from dashboard.view_parts.model_map import models_scatter

    models = [SimpleNamespace(name=f"m{i}", architecture="cnn", accuracy=a, tags={}) for i, a in enumerate((0.5, 0.9))]
    bar = models_scatter(models, np.zeros((2, 2)), "map").data[0].marker.colorbar
    assert bar.tickformat == ".0%" and "%" in bar.title.text and "higher is better" in bar.title.text


def test_confusion_and_input_rdm_figures_say_what_their_axes_and_colours_are():
    """Axes titled ("true class" / "predicted class", stimuli sorted by class) and colour bars in
    words with their direction, not a method's code name (issue 19)."""
    from dashboard.views import confusion, input_rdm

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 4)
    stimuli = type("Stimuli", (), {"labels": labels, "class_names": ["a", "b", "c"],
                                   "ids": [str(i) for i in range(12)], "__len__": lambda self: 12})()
    blocks = rng.random((12, 12))
    arrays = {"blocks": blocks, **{f"top{k}": rng.random((3, 3)) for k in confusion.TOP_K}}
    rdm, *confusions = confusion.figures(stimuli, arrays, {"rdm": "correlation", "model": "m"})
    assert rdm.data[0].colorbar.title.text == "1 − Pearson<br>correlation<br>(dissimilarity)"
    assert "1 - Pearson correlation: higher = more different" in rdm.layout.title.text
    assert "rows and columns: stimuli sorted by class" in rdm.layout.title.text
    for k, figure in zip(confusion.TOP_K, confusions):
        assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == ("predicted class", "true class")
        assert figure.data[0].colorbar.title.text.startswith("share of the true class's stimuli")
    heatmap, scatter = input_rdm.figures(stimuli, blocks, rng.random((12, 2)),
                                         {"rdm": "euclidean", "model": "m", "layer": "fc", "mds": "classical"})
    assert "Euclidean distance: higher = more different" in heatmap.layout.title.text
    assert "(positions in class order)" in heatmap.data[0].hovertemplate  # not the stimuli's own indices
    assert scatter.layout.xaxis.title.text == "MDS 1 (distance between points ≈ their dissimilarity)"
    from dashboard.views import layer_grid

    grid = layer_grid.figure(rng.random((2, 3)), ["c1", "c2"], ["f1", "f2", "f3"],
                             {"a": "net", "b": "twin", "measure": "cka_linear", "null": "off", "show": "raw"})
    assert (grid.layout.yaxis.title.text, grid.layout.xaxis.title.text) == ("layer of A (net)", "layer of B (twin)")


def test_the_model_map_rings_uploads_and_finds_models_by_name():
    """Uploaded models get their own ring and label; a search rings the model it names exactly,
    else those whose names contain it, read from the figure as the browser sends it back
    (Plotly's typed arrays); group-by source names the source."""
    import json
    from types import SimpleNamespace

    import plotly.io as pio

    from dashboard.selection import Selection
    from dashboard.view_parts.model_map import highlight, models_scatter

    models = [SimpleNamespace(name=n, architecture="cnn", accuracy=0.5, tags={}, source=s)
              for n, s in (("cnn-a", "zoo"), ("mine", "upload"), ("mine-2", "onnx"), ("cnn-b", "torchvision"))]
    coords = np.arange(8.0).reshape(4, 2)
    selection = Selection.from_url_params({"group": "source"})
    figure = json.loads(pio.to_json(models_scatter(models, coords, "map", selection.group_of)))
    assert [t["name"] for t in figure["data"]] == ["zoo", "upload", "onnx", "torchvision", "uploaded (ringed)"]
    ring = figure["data"][-1]
    assert ring["text"] == ["mine", "mine-2"] and ring["x"] == [2.0, 4.0] and ring["marker"]["symbol"] == "circle-open"
    found, words = highlight(figure, "mine")
    assert found["data"][-1]["customdata"] == ["mine"] and (found["data"][-1]["x"], found["data"][-1]["y"]) == ([2.0], [3.0])
    assert words == "1 model found: mine"
    again, words = highlight(found, "CNN")
    assert again["data"][-1]["customdata"] == ["cnn-a", "cnn-b"] and len(again["data"]) == len(found["data"])
    assert highlight(again, "")[0]["data"] == figure["data"] and "no model" in highlight(figure, "zzz")[1]


def test_an_mds_subtitle_gives_its_stress_with_kruskals_word():
    from dashboard.figures.scatter import with_stress

    assert with_stress("MDS", None) == "MDS"
    assert with_stress("MDS", np.array([0.02])) == "MDS<br><sup>Kruskal stress-1 0.020, excellent (0 = every distance exact)</sup>"
    joined = with_stress("MDS<br><sup>model m</sup>", np.array([0.15]))
    assert joined == "MDS<br><sup>model m; Kruskal stress-1 0.150, fair to poor (0 = every distance exact)</sup>"
    assert "poor: read distances with care" in with_stress("MDS", np.array([0.299]))
    assert ", good " in with_stress("MDS", np.array([0.049])) and ", fair " in with_stress("MDS", np.array([0.05]))
