"""The layer grid's layers, chosen one by one: what a client sends is checked against the
model's own layers (unknown names refused, naming the model and its layers), kept in the
model's order, written into the link only where it is not the preset, and read back from it."""
import pytest

from dashboard import url_codec
from dashboard.view_parts.layer_lists import check_layers, decode_layers, encode_layers

KNOWN = ["conv1", "bn1", "fc2", "bn2", "out"]


def test_a_choice_comes_back_in_the_model_s_order_once_each():
    assert check_layers(["out", "conv1", "out"], KNOWN, "m") == ["conv1", "out"]


@pytest.mark.parametrize("asked, said", [
    (["bn1", "conv9"], "'conv9' is not a layer of model A (rows) (cnn); its layers: conv1, bn1, fc2, bn2, out"),
    ([], "choose at least one layer of model A (rows) (cnn)"),
    ("bn1", "the layers of model A (rows) (cnn) must be a list of layer names"),
    ([["bn1"]], "must be a list of layer names"),
])
def test_what_a_model_lacks_or_a_malformed_choice_is_refused_saying_why(asked, said):
    with pytest.raises(ValueError, match=said.replace("(", r"\(").replace(")", r"\)")):
        check_layers(asked, KNOWN, "cnn", "A (rows)")


def test_the_link_lists_layers_only_off_the_preset_and_reads_them_back():
    assert encode_layers(["bn1", "bn2"], ["bn1", "bn2"]) == ""
    assert encode_layers(["conv1", "out"], ["bn1", "bn2"]) == "conv1,out"
    assert decode_layers("out,conv1", KNOWN) == ["conv1", "out"]
    assert decode_layers("conv1,/etc/passwd", KNOWN) is None


def test_the_plan_grids_the_chosen_layers_with_both_measures_and_refuses_unknown_layers(zoo_dir):
    from dashboard.selection import Selection
    from dashboard.views import layer_grid

    selection = Selection(names=("mlp-w8-s0-e25", "cnn-w4-s0-e25"))
    a, b = "mlp-w8-s0-e25", "cnn-w4-s0-e25"
    specs, targets, context, search = layer_grid.plan(selection, a, b, "cka_linear", "default", measure2="pwcca",
                                                      layers_a=["out", "fc1"], layers_b=["bn3", "conv1"])
    assert targets == ["grid", "grid2"]
    for name, measure in (("grid", "cka_linear"), ("grid2", "pwcca")):
        params = specs[name].params
        assert (params["measure"], params["layers_a"], params["layers_b"]) == (measure, ["fc1", "out"], ["conv1", "bn3"])
    assert context["layers_a"] == ["fc1", "out"]
    assert dict(url_codec.parse(search)) == {"a": a, "b": b, "measure2": "pwcca", "layers_a": "fc1,out",
                                             "layers_b": "conv1,bn3"}
    # None (a client sending nothing) is the preset's layers, and the link then lists none.
    specs, _, _, search = layer_grid.plan(selection, a, b, "cka_linear", "all")
    assert specs["grid"].params["layers_a"] == ["flatten", "fc1", "act1", "fc2", "act2", "fc3", "act3", "out"]
    assert "layers_a" not in search
    with pytest.raises(ValueError, match=r"'conv1' is not a layer of model B \(columns\) \(mlp-w8-s0-e25\)"):
        layer_grid.plan(selection, b, a, "cka_linear", "default", layers_b=["conv1"])
    with pytest.raises(ValueError, match="measure2 must be one of none, cka_linear"):
        layer_grid.plan(selection, a, b, "cka_linear", "default", measure2="euclidean")
    with pytest.raises(ValueError, match=r"'conv1' is not a layer of model A \(rows\)"):
        layer_grid.plan_dims(selection, a, b, "default", "participation_ratio", layers_a=["conv1"])


def test_a_link_s_layers_are_read_back_and_a_layer_the_model_lacks_falls_back_to_the_preset(zoo_dir):
    from dashboard.selection import Selection
    from dashboard.views import layer_grid

    selection = Selection(names=("mlp-w8-s0-e25", "cnn-w4-s0-e25"))
    search = "?a=mlp-w8-s0-e25&b=cnn-w4-s0-e25&layers_a=out,fc1&layers_b=bn3,conv7"
    with url_codec.noting_ignored() as ignored:
        view = layer_grid.read_state(search, selection)
    assert view["layers_a"] == ["fc1", "out"]
    assert view["layers_b"] == ["bn1", "bn2", "bn3"]  # the preset's
    assert ignored == [("layers_b", "bn3,conv7")]
