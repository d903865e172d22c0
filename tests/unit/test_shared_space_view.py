"""The Shared space (SRM) view's pure parts and its grouped-bar figure, without a browser."""
from __future__ import annotations

import contextlib
import io
import math
from types import SimpleNamespace

import numpy as np
import pytest

from compute.engine import artifacts
from compute.engine.store import ArtifactStore
from dashboard.figures.grouped_bars import grouped_bars
from dashboard.selection import Selection

TRIO = ["mlp-w8-s0-e25", "mlp-w8-s1-e25", "mlp-w8-s2-e25"]


@pytest.fixture(scope="module")
def view(zoo_dir):
    from dashboard.views import shared_space

    return shared_space


def _model(name, accuracy, architecture="mlp", width=8, epochs=25):
    return SimpleNamespace(name=name, key=name, accuracy=accuracy, architecture=architecture,
                           hparams={"hidden": [width] * 3}, tags={"epochs": epochs, "labels": "true"})


def test_grouped_bars_draw_each_series_and_mark_missing_values():
    figure = grouped_bars(["depth 1", "depth 2"], [("a", [0.5, float("nan")], ["h1", "h2"]), ("b", [0.2, None], None)],
                          title="t", y_title="y", y_range=(-1, 1), missing_text="n/a (why)")
    assert [trace.name for trace in figure.data] == ["a", "b"]
    assert list(figure.data[0].y) == [0.5, None] and list(figure.data[1].y) == [0.2, None]
    assert list(figure.data[0].x) == ["depth 1", "depth 2"] and list(figure.data[0].customdata) == ["h1", "h2"]
    # Where the missing bars would be: the second category (1), left and right halves of its group.
    assert [a.text for a in figure.layout.annotations] == ["n/a (why)"] * 2
    assert [a.x for a in figure.layout.annotations] == pytest.approx([0.8, 1.2])
    assert figure.layout.annotations[0].hovertext == "a, depth 2: n/a (why)"
    assert figure.layout.barmode == "group" and list(figure.layout.yaxis.range) == [-1, 1]
    with pytest.raises(ValueError, match="series 'a': 1 values"):
        grouped_bars(["d1", "d2"], [("a", [1.0], None)], title="t", y_title="y")


def test_comparable_models_are_the_largest_architecture_group(view):
    models = [_model("a1", 0.9), _model("a2", 0.5), _model("a3", None), _model("b1", 0.95, width=16),
              _model("b2", 0.94, width=16), _model("b3", 0.1, width=16), _model("c1", 0.99, "cnn")]
    # Two groups of three: the one with the most accurate member (b1, 0.95) wins; accuracy order.
    assert [m.name for m in view.comparable(models)] == ["b3", "b2", "b1"]
    assert [m.name for m in view.comparable(models, cap=2)] == ["b2", "b1"]
    assert [m.name for m in view.comparable(models[:4] + models[6:], cap=2)] == ["a2", "a1"]
    # Trained for different numbers of epochs: not alike.
    other = [_model("e1", 0.3, epochs=1), _model("e5", 0.6, epochs=5), _model("f1", 0.2, epochs=1)]
    assert [m.name for m in view.comparable(other)] == ["f1", "e1"]
    singles = [_model("x", 0.3), _model("y", 0.8, "cnn"), _model("z", None, "vit")]
    assert [m.name for m in view.comparable(singles, cap=2)] == ["x", "y"]


def test_layout_offers_the_selection_and_picks_from_the_url(view):
    selection = Selection()
    default = [m.name for m in view.picked(selection, "")]
    assert default == [m.name for m in view.comparable(selection.models)]
    assert 2 <= len(default) <= view.MAX_MODELS
    alike = {(m.architecture, str(m.hparams), m.tags.get("epochs"), m.tags.get("labels"))
             for m in map(selection.named, default)}
    assert len(alike) == 1
    assert [m.name for m in view.picked(selection, ",".join(TRIO + ["nonsense"]))] == TRIO
    page = str(view.layout("?align=" + ",".join(TRIO) + "&k=5", selection))
    assert "srm-models-choice" in page and "srm-variance" in page and "srm-agreement" in page


def test_plan_fits_one_srm_per_depth(view):
    selection = Selection()
    specs, targets, context, search = view.plan(selection, list(reversed(TRIO)), "5")
    assert targets == list(specs) == ["depth1", "depth2", "depth3"]
    keys = [selection.named(name).key for name in TRIO]
    for name, layer in zip(targets, ["act1", "act2", "penultimate"]):
        spec = specs[name]
        assert spec.kind == "srm_fit" and spec.params["k"] == 5 and spec.params["train_fraction"] == 0.5
        assert [s.params["model"] for s in spec.inputs] == keys  # ordered by accuracy, as the selection
        assert context["layers"][name] == [[key, layer] for key in keys]
    in_order = [m.name for m in view.ordered(selection.named(name) for name in TRIO)]
    assert search == "?align=" + "%2C".join(in_order) + "&k=5"
    assert context["note"] == ""


def test_plan_caps_the_models_and_says_so(view):
    selection = Selection()
    names = [m.name for m in selection.models if m.tags.get("family") == "mlp"][:view.MAX_MODELS + 3]
    specs, _, context, _ = view.plan(selection, names, "10")
    assert context["note"] == f"the {view.MAX_MODELS} most accurate of the {view.MAX_MODELS + 3} models picked"
    kept = [selection.named(n) for n in context["view"]["align"].split(",")]
    assert len(kept) == view.MAX_MODELS
    dropped = [selection.named(n) for n in names if n not in context["view"]["align"].split(",")]
    assert min(m.accuracy for m in kept) >= max(m.accuracy for m in dropped)
    assert all(len(spec.inputs) == view.MAX_MODELS for spec in specs.values())


def test_plan_refuses_impossible_requests(view):
    selection = Selection()
    with pytest.raises(ValueError, match="at least two models"):
        view.plan(selection, TRIO[:1], "10")
    with pytest.raises(ValueError, match="no model named 'nonsense'"):
        view.plan(selection, [*TRIO, "nonsense"], "10")
    with pytest.raises(ValueError, match="k must be one of"):
        view.plan(selection, TRIO, "7")
    with pytest.raises(ValueError, match="at least 2 models and the selection has 0"):
        view.plan(Selection(where="family:nonsense"), [], "10")


def test_draw_shows_the_artifacts_numbers(view):
    context = {"view": {"k": "10", "align": "a,b,c"}, "note": "",
               "layers": {"depth1": [["ka", "act1"], ["kb", "act1"]], "depth2": [["ka", "act2"], ["kb", "act2"]]}}
    arrays = {"depth1": np.array([0.4, 0.1, 0.8, 0.6, 8.0]), "depth2": np.array([-0.2, np.nan, 0.7, 0.9, 4.0])}
    variance, agreement = view.draw(context, arrays)
    assert [t.name for t in variance.data] == ["held-out stimuli", "fitting stimuli"]
    assert list(variance.data[0].y) == [0.4, -0.2] and list(variance.data[1].y) == [0.6, 0.9]
    assert variance.layout.yaxis.range[0] == -0.2
    assert list(agreement.data[0].y) == [0.1, None] and list(agreement.data[1].y) == [0.8, 0.7]
    assert list(agreement.data[0].x) == ["depth 1", "depth 2"]
    assert [a.text for a in agreement.layout.annotations] == ["n/a"]
    assert "native: n/a where layer widths differ" in agreement.layout.title.text
    assert variance.data[0].customdata[1] == "k = 4; 2 models; layers: act2"
    assert "3 models, k = 4–8 (of 10 asked: capped by layer widths or stimuli)" in variance.layout.title.text


def test_code_reproduces_the_artifacts(view, tmp_path):
    selection = Selection()
    names = ["mlp-w4-s0-e25", "mlp-w8-s1-e25"]  # unequal widths: k capped at 4, native n/a
    specs, targets, context, _ = view.plan(selection, names, "10")
    store = ArtifactStore(tmp_path / "artifacts")
    last = specs[targets[-1]]
    artifacts.ensure(last, store)
    values = store.get("srm_fit", last.key)[0]
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(view.code({**context, "selection": selection.url_params()}), namespace)  # noqa: S102 - our own snippet
    assert printed.getvalue().count("variance explained") == len(targets)
    fit, agreement, held_out = namespace["fit"], namespace["agreement"], namespace["held_out"]
    from compute.measures.srm import srm_variance_explained

    assert namespace["k"] == values[4] == 4
    np.testing.assert_allclose(values[[0, 2, 3]], [srm_variance_explained(fit, held_out), agreement.shared,
                                                   fit.variance_explained], rtol=1e-9)
    assert agreement.native is None and math.isnan(values[1])
