"""ONNX models: an export of a zoo network gives the torch model's activations, RDMs, layer grids
and accuracy; the layers, defaults and preprocessing are what the docs say; every file RepScope
must not run is refused by name."""
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from compute.measures.rdm import rdm
from compute.measures.similarity import layer_grid
from compute.sources.models import get_model_info, list_models, load_model, model_accuracy
from compute.sources.onnx_models import prepare, register_onnx
from compute.sources.representations import open_model, resolve
from compute.sources.stimuli import get_stimulus_set


def zoo(arch: str):
    """The most accurate zoo model of ``arch`` (trained, so its layers carry signal)."""
    return max((m for m in list_models("digits") if m.architecture == arch), key=lambda m: m.accuracy or 0)


def export(module, path, batch: int | None = None):
    """``module`` as an .onnx at ``path``: a dynamic batch axis, or a fixed ``batch``."""
    dynamic = None if batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():  # dynamo=False: the TorchScript exporter, deprecated and ~1 s faster
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), torch.zeros(batch or 2, 1, 8, 8), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"], dynamic_axes=dynamic)
    return path


@pytest.fixture
def stimuli():
    return get_stimulus_set("digits")


def onnx_name(model, torch_layer: str) -> str:
    """The tensor torch.onnx.export names after the module ``torch_layer`` ("/bn1/...")."""
    return next(info.name for info in model.layers() if info.name.startswith(f"/{torch_layer}/"))


@pytest.mark.parametrize("arch, batch", [("cnn", None), ("mlp", None), ("cnn", 3)])
def test_an_export_gives_the_torch_models_input_rdms_scores_and_accuracy(zoo_dir, cache_dir, tmp_path, stimuli,
                                                                          arch, batch):
    info = zoo(arch)
    module = load_model(info)
    registered = register_onnx(f"{arch}-onnx", export(module, tmp_path / "m.onnx", batch), "digits")
    assert (registered.source, registered.architecture, registered.num_classes) == ("onnx", "onnx:m", 10)
    assert (registered.accuracy, registered.top5) == pytest.approx(model_accuracy(module, stimuli))
    assert registered.accuracy > 0.5
    graph, torch_model = open_model(registered.name), open_model(info.name)
    torch_layers = [layer.name for layer in torch_model.layers() if layer.default]
    names = [onnx_name(graph, layer) for layer in torch_layers]
    for pooling in ("none", "avg", "proj:8"):
        ours = graph.extract(stimuli, names, pooling)
        theirs = torch_model.extract(stimuli, torch_layers, pooling)
        for name, layer in zip(names, torch_layers):
            assert ours[name].shape == theirs[layer].shape
            np.testing.assert_allclose(rdm(ours[name]), rdm(theirs[layer]), atol=1e-5, err_msg=f"{layer} {pooling}")
            assert graph.width(stimuli, name, pooling) == ours[name].shape[1]
    np.testing.assert_allclose(graph.scores(stimuli), torch_model.scores(stimuli), atol=1e-5)
    assert resolve(graph, "penultimate") == onnx_name(graph, resolve(torch_model, "penultimate"))


def test_an_export_gives_the_torch_models_layer_grid(zoo_dir, cache_dir, tmp_path, stimuli):
    info = zoo("cnn")
    registered = register_onnx("cnn-onnx", export(load_model(info), tmp_path / "cnn.onnx"), "digits")
    graph, torch_model = open_model(registered.name), open_model(info.name)
    layers = ["bn1", "bn2", "bn3"]
    theirs = torch_model.extract(stimuli, layers, "avg")
    ours = graph.extract(stimuli, [onnx_name(graph, layer) for layer in layers], "avg")
    np.testing.assert_allclose(layer_grid(ours, ours), layer_grid(theirs, theirs), atol=1e-5)
    np.testing.assert_allclose(layer_grid(ours, theirs), layer_grid(theirs, theirs), atol=1e-5)


def test_layers_are_the_graphs_tensors_with_block_outputs_and_the_penultimate_by_default(zoo_dir, cache_dir,
                                                                                      tmp_path):
    for arch, defaults, penultimate in (
        ("cnn", ["conv1/Conv", "bn1/BatchNormalization", "bn2/BatchNormalization", "bn3/BatchNormalization"],
         "bn3/BatchNormalization"),
        ("mlp", ["act1/Sigmoid", "act2/Sigmoid", "act3/Sigmoid"], "act3/Sigmoid"),
    ):
        registered = register_onnx(f"{arch}-layers", export(load_model(zoo(arch)), tmp_path / f"{arch}.onnx"), None)
        assert registered.accuracy is None  # no stimulus set: nothing to score
        layers = open_model(registered.name).layers()
        assert [layer.name for layer in layers if layer.default] == [f"/{name}_output_0" for name in defaults]
        assert [layer.name for layer in layers if layer.penultimate] == [f"/{penultimate}_output_0"]
        assert layers[-1].name == "logits" and not layers[-1].default
        kinds = {layer.name: (layer.kind, layer.shape) for layer in layers}
        if arch == "cnn":  # weights and Identity copies of them never count: only what the image flows through
            width = get_model_info(zoo("cnn").name).hparams["channels"]
            assert kinds["/pool1/MaxPool_output_0"] == ("MaxPool", (None, width, 4, 4))
            assert kinds["/flatten/Flatten_output_0"] == ("Flatten", (None, width * 16))
            assert all(kind != "Identity" for kind, _ in kinds.values())
        else:
            assert kinds["/fc1/Gemm_output_0"][0] == "Gemm"


def identity_graph(path, shape, name="probe", elem=TensorProto.FLOAT):
    """A graph that returns its input: what it extracts is the preprocessed stimuli."""
    node = helper.make_node("Identity", ["image"], ["seen"])
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info("image", elem, shape)],
                              [helper.make_tensor_value_info("seen", elem, shape)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_preprocessing_is_channels_then_bilinear_size_then_normalisation(cache_dir, tmp_path, stimuli):
    path = identity_graph(tmp_path / "probe.onnx", ["N", 3, 4, 4])
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    registered = register_onnx("probe", path, "digits", mean="0.1, 0.2, 0.3", std=std)
    assert registered.hparams["size"] == [4, 4] and registered.hparams["channels"] == 3  # from the graph
    assert registered.accuracy is None  # 48 outputs for 10 classes: no accuracy
    seen = open_model("probe").extract(stimuli, ["seen"])["seen"].reshape(-1, 3, 4, 4)
    images = stimuli.images.numpy()[:, 0]  # N x 8 x 8, grey
    # Halving with bilinear interpolation (align_corners=False) samples between pixels: 2 x 2 block means.
    blocks = images.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4))
    expected = (blocks[:, None] - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]
    np.testing.assert_allclose(seen, expected, atol=1e-6)
    # Defaults: the identity normalisation, the graph's size; RGB averaged for a grey model.
    rgb = torch.rand(5, 3, 6, 6)
    grey = prepare(rgb, {"size": None, "mean": [0.0], "std": [1.0], "channels": 1})
    np.testing.assert_allclose(grey.numpy(), rgb.mean(dim=1, keepdim=True).numpy(), atol=1e-7)
    bigger = prepare(rgb, {"size": [12, 9], "mean": [0.0], "std": [1.0], "channels": 3})
    np.testing.assert_allclose(bigger.numpy(), F.interpolate(rgb, size=(12, 9), mode="bilinear").numpy())
    open_size = register_onnx("open", identity_graph(tmp_path / "open.onnx", ["N", 1, "H", "W"]), "digits")
    assert open_size.hparams == {**open_size.hparams, "size": None, "mean": [0.0], "std": [1.0], "channels": 1}
    np.testing.assert_array_equal(open_model("open").extract(stimuli, ["seen"])["seen"],
                                  stimuli.images.reshape(len(stimuli), -1).numpy())


@pytest.mark.parametrize("fields, message", [
    ({"std": "1, 0, 1"}, "std must be positive"),
    ({"mean": "0.5, 0.5"}, "mean needs one value or one per channel (3), got 2"),
    ({"mean": "a lot"}, "mean must be numbers"),
    ({"size": "8"}, "size 8x8 disagrees with the graph's input, which takes 4x4"),
    ({"size": "0"}, "size must be one or two whole numbers"),
    ({"channels": 1}, "channels 1 disagrees with the graph's input, which takes 3"),
    ({"channels": 2}, "channels must be 1 or 3"),
])
def test_bad_preprocessing_is_refused_by_name(cache_dir, tmp_path, fields, message):
    path = identity_graph(tmp_path / "probe.onnx", ["N", 3, 4, 4])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register_onnx("probe", path, "digits", **fields)
    assert "probe" not in {m.name for m in list_models(None)}


def custom_graph(path, domain="my.lab", op="Foo", node_domain=None):
    node = helper.make_node(op, ["image"], ["out"], domain=domain if node_domain is None else node_domain)
    graph = helper.make_graph([node], "lab", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])
    path.write_bytes(model.SerializeToString())
    return path


def test_files_that_would_run_code_or_read_server_files_are_refused(zoo_dir, cache_dir, tmp_path):
    with pytest.raises(ValueError, match=r"custom operator domain 'my.lab' \(op 'Foo'\) is refused: no code from an "
                                         "upload runs"):
        register_onnx("lab", custom_graph(tmp_path / "lab.onnx"), "digits")
    with pytest.raises(ValueError, match=r"custom operator domain 'my.lab' \(imported at version 1\) is refused"):
        register_onnx("lab", custom_graph(tmp_path / "lab2.onnx", op="Relu", node_domain=""), "digits")
    model = onnx.load(str(export(load_model(zoo("mlp")), tmp_path / "mlp.onnx")))
    onnx.save_model(model, str(tmp_path / "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    with pytest.raises(ValueError, match=r"external.onnx: tensor 'fc1.weight' keeps its data in an external file"):
        register_onnx("external", tmp_path / "external.onnx", "digits")
    assert not any(m.source == "onnx" for m in list_models(None))


def test_graphs_that_cannot_take_images_and_non_onnx_files_are_refused(cache_dir, tmp_path):
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, 8, 8])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 1, 8, 8])
    two = helper.make_model(helper.make_graph([helper.make_node("Add", ["image", "mask"], ["out"])], "two",
                                              [image, mask], [out]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(two, str(tmp_path / "two.onnx"))
    with pytest.raises(ValueError, match=r"two.onnx: the graph takes 2 inputs \('image', 'mask'\); RepScope feeds it "
                                         r"one: a batch of images \(N, C, H, W\)"):
        register_onnx("two", tmp_path / "two.onnx", "digits")
    with pytest.raises(ValueError, match=r"the input 'image' has shape \(\?, 64\); .* needs 4 dimensions"):
        register_onnx("flat", identity_graph(tmp_path / "flat.onnx", ["N", 64]), "digits")
    with pytest.raises(ValueError, match="the input 'image' is of type INT64"):
        register_onnx("ints", identity_graph(tmp_path / "ints.onnx", ["N", 1, 8, 8], elem=TensorProto.INT64), "digits")
    (tmp_path / "garbage.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="garbage.onnx: not an ONNX model"):
        register_onnx("garbage", tmp_path / "garbage.onnx", "digits")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.onnx: not an ONNX model"):
        register_onnx("empty", tmp_path / "empty.onnx", "digits")
