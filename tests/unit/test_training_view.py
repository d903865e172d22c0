"""The training-dynamics view's pure parts: series and groups from tags, its plans, its figures."""
import numpy as np
import pytest

from compute.sources.models import ModelInfo
from dashboard.figures.training import over_training, pair_summary, within_between
from dashboard.views import training


def _model(name, arch="mlp", width=4, **tags):
    return ModelInfo(name, name * 4, arch, "zoo", tags, None, None, 10, {"hidden": [width, width]})


SERIES = [_model(f"s-{step}", series="s", step=step) for step in (10, 0, 2)] + [_model("t-0", series="t", step=0)]
GROUPS = ([_model(f"g{i}", group="true-labels") for i in range(3)]
          + [_model(f"m{i}", group="shuffled-labels") for i in range(2)]
          + [_model("wide-g", width=8, group="true-labels"), _model("wide-m", width=8, group="shuffled-labels"),
             _model("cnn-g0", arch="cnn", group="true-labels"), _model("cnn-g1", arch="cnn", group="true-labels"),
             _model("cnn-m0", arch="cnn", group="shuffled-labels"), _model("cnn-m1", arch="cnn", group="shuffled-labels"),
             _model("u", group="untrained")])
MLP4, CNN4 = training.architecture(GROUPS[0]), training.architecture(GROUPS[7])


def test_series_are_the_series_tag_values_and_checkpoints_go_by_step():
    assert training.series_names(SERIES + GROUPS) == ["s", "t"]
    assert [m.name for m in training.checkpoints(SERIES, "s")] == ["s-0", "s-2", "s-10"]


@pytest.mark.parametrize("models, series, message", [
    (SERIES, "t", "needs at least two checkpoints and has 1; series of this stimulus set: s, t"),
    (GROUPS, "", "has 0; series of this stimulus set: none"),
    (SERIES + [_model("s-x", series="s", step="late")], "s", "'s-x' has no integer 'step' tag"),
    (SERIES + [_model("s-again", series="s", step=2)], "s", "two models at the same step"),
])
def test_checkpoints_say_what_is_wrong_with_a_series(models, series, message):
    with pytest.raises(ValueError, match=message):
        training.checkpoints(models, series)


def test_architectures_shared_by_two_groups_need_two_models_in_each():
    assert training.architecture(GROUPS[0]) == 'mlp(hidden=[4,4])'
    assert training.group_names(GROUPS) == ["shuffled-labels", "true-labels", "untrained"]
    # mlp w4: 3 + 2 models, cnn: 2 + 2, mlp w8: 1 + 1 (no pairs within: left out)
    assert training.shared_architectures(GROUPS, "true-labels", "shuffled-labels") == [MLP4, CNN4]
    assert training.shared_architectures(GROUPS, "true-labels", "untrained") == []
    assert training.shared_architectures(GROUPS, "true-labels", "true-labels") == []
    assert [o["label"] for o in training.architecture_options(GROUPS, "true-labels", "shuffled-labels")] == \
        ["sigmoid MLP, widths 4-4 (3 + 2 models)", "CNN, widths 4-4 (2 + 2 models)"]
    assert [m.name for m in training.members(GROUPS, "shuffled-labels", CNN4)] == ["cnn-m0", "cnn-m1"]


def test_view_state_defaults_and_links():
    models = SERIES + GROUPS
    assert training.defaults(models) == {"series": "s", "measure": "pwcca", "group1": "true-labels",
                                         "group2": "shuffled-labels", "arch": ""}
    assert training.read_state(None, models)["arch"] == MLP4
    state = training.read_state(f"?series=t&measure=rv2&arch={CNN4}&group1=nonsense", models)
    assert (state["series"], state["measure"], state["group1"], state["arch"]) == ("t", "rv2", "true-labels", CNN4)
    assert training.read_state("?arch=mlp(hidden=[8,8])", models)["arch"] == MLP4  # not shared: the default
    assert training._search(models, state) == "?" + "&".join(
        ["arch=cnn%28hidden%3D%5B4%2C4%5D%29", "measure=rv2", "series=t"])
    assert training._search(models, training.read_state(None, models)) == ""


def test_group_pairs_are_within_each_then_between_and_split_back():
    assert training.group_pairs(["a", "b", "c"], ["x", "y"]) == [
        ("a", "b"), ("a", "c"), ("b", "c"), ("x", "y"), ("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"),
        ("c", "x"), ("c", "y")]
    values = np.arange(20.0)  # 2 layers x 10 pairs
    within1, within2, between = training.split_pairs(values, 3, 2, 2)
    assert within1.tolist() == [[0, 1, 2], [10, 11, 12]]
    assert within2.tolist() == [[3], [13]]
    assert between.tolist() == [[4, 5, 6, 7, 8, 9], [14, 15, 16, 17, 18, 19]]


def test_over_training_puts_step_plus_one_on_a_log_axis_one_line_per_layer():
    values = np.array([[0.5, 0.8, 1.0], [0.2, 0.6, 1.0]])
    figure = over_training([0, 5, 100], values, ["act1", "act2"], ["c0", "c5", "c100"], "t", "pwcca")
    assert [trace.name for trace in figure.data] == ["act1", "act2"]
    assert list(figure.data[1].x) == [1, 6, 101] and list(figure.data[1].y) == [0.2, 0.6, 1.0]
    assert list(figure.data[0].customdata) == [0, 5, 100]
    assert figure.layout.xaxis.type == "log" and list(figure.layout.xaxis.ticktext) == ["0", "5", "100"]
    with pytest.raises(ValueError, match=r"shape \(layers, steps\) = \(2, 2\)"):
        over_training([0, 5], values, ["act1", "act2"], ["c0", "c5"], "t", "y")
    with pytest.raises(ValueError, match="ascending"):
        over_training([5, 0, 100], values, ["act1", "act2"], ["a", "b", "c"], "t", "y")


def test_pair_summary_and_bars_show_mean_with_min_max_whiskers():
    values = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    stats = pair_summary(values)
    assert stats["mean"].tolist() == [2.0, 0.5] and stats["min"].tolist() == [1.0, 0.5]
    assert stats["max"].tolist() == [3.0, 0.5]
    np.testing.assert_allclose(stats["sd"], [np.sqrt(2 / 3), 0.0])
    figure = within_between(["l1", "l2"], [("within g", values), ("between", values[:, :1])], "t", "cka")
    assert [trace.name for trace in figure.data] == ["within g", "between"]
    assert list(figure.data[0].y) == [2.0, 0.5]
    assert list(figure.data[0].error_y.array) == [1.0, 0.0] and list(figure.data[0].error_y.arrayminus) == [1.0, 0.0]
    assert list(figure.data[1].y) == [1.0, 0.5] and figure.layout.barmode == "group"
    with pytest.raises(ValueError, match="at least one pair"):
        pair_summary(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="'x': values must be"):
        within_between(["l1"], [("x", values)], "t", "y")


def test_plans_on_the_zoo_ask_for_each_layer_against_the_final_checkpoint(zoo_dir):
    from dashboard.selection import Selection

    selection = Selection()
    specs, targets, context, search = training.plan(selection, "mlp-w16-s10", "cka_linear", "true-labels",
                                                    "shuffled-labels", "")
    assert targets == ["curves"] and search == "?measure=cka_linear&series=mlp-w16-s10"
    assert context["steps"] == [0, 1, 2, 5, 10, 20, 50, 100, 200, 400, 800, 1600]
    assert context["layers"] == ["act1", "act2", "act3"]
    spec = specs["curves"]
    assert len(spec.params["pairs"]) == 3 * 12 and len(spec.inputs) == 3 * 12  # each activation once
    final = [s for s in spec.inputs if s.params["model"] == selection.named("mlp-w16-s10-step1600").key]
    assert [s.params["layer"] for s in final] == ["act1", "act2", "penultimate"]  # shared with other views
    assert all(spec.inputs[b] in final for _, b in spec.params["pairs"])

    # No architecture given (or one the groups do not share): the shared one with the most models.
    specs, targets, context, search = training.plan_groups(selection, "pwcca", "true-labels", "shuffled-labels", "")
    assert search is None and context["first"] == ["mlp-w45-s0-true-e400", "mlp-w45-s1-true-e400",
                                                    "mlp-w45-s2-true-e400"]
    assert context["view"]["arch"] == training.architecture(selection.named("mlp-w45-s0-true-e400"))
    assert len(specs["pairs"].params["pairs"]) == 3 * (3 + 3 + 9)
    with pytest.raises(ValueError, match="two different groups"):
        training.plan_groups(selection, "pwcca", "true-labels", "true-labels", "")
    with pytest.raises(ValueError, match="share no architecture"):
        training.plan_groups(selection, "pwcca", "true-labels", "untrained", "")
    with pytest.raises(ValueError, match="unknown measure 'cca'"):
        training.plan(selection, "mlp-w16-s10", "cca", "true-labels", "shuffled-labels", "")


def test_architectures_are_shown_in_words():
    from compute.sources.zoo_architectures import family_hparams

    cnn = ModelInfo("c", "k", "cnn", "zoo", {}, None, None, 10, {**family_hparams("cnn", 16, (1, 8, 8), 10), "dropout": 0.1})
    mlp = ModelInfo("m", "k", "mlp", "zoo", {}, None, None, 10, family_hparams("mlp", 4, (1, 8, 8), 10))
    other = ModelInfo("r", "k", "torchvision:resnet18", "upload", {}, None, None, 10,
                      {"num_classes": 10, "zero_init_residual": True, "pretrained": None})
    assert training.architecture_words(cnn) == "CNN, widths 16-128-64, dropout 0.1, input 1×8×8, 10 classes"
    assert training.architecture_words(mlp) == "sigmoid MLP, widths 4-4-4, 64 inputs, 10 classes"
    assert training.architecture_words(other) == "torchvision:resnet18, 10 classes, zero init residual True"
