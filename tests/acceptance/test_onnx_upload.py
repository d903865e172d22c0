"""ONNX uploads against a real app process, through the chunked route: a zoo export is registered
with the torch model's accuracy and kept by content hash; what RepScope must not run is refused
by name, and nothing of it is kept."""
import hashlib
import json
import warnings

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from onnx.external_data_helper import set_external_data

from compute.sources.models import load_model, model_accuracy
from compute.sources.stimuli import get_stimulus_set
from compute.sources.zoo_manifest import load_manifest, zoo_path
from tests.acceptance.test_uploads import refused, upload


@pytest.fixture(scope="module")
def server(upload_server):
    return upload_server


def exported(tmp_path) -> tuple[bytes, object]:
    """A trained zoo CNN's ONNX export (dynamic batch) and the zoo entry it came from."""
    entry = next(e for e in load_manifest(zoo_path("digits")) if e.name.startswith("cnn-w16-s1-e25"))
    module = load_model(entry.name).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, torch.zeros(2, 1, 8, 8), str(tmp_path / "cnn.onnx"), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return (tmp_path / "cnn.onnx").read_bytes(), module


def registry(server) -> list[dict]:
    return json.loads((server.directory / "cache" / "models" / "registry.json").read_text())["models"]


def test_an_onnx_export_is_registered_with_its_accuracy_and_kept_by_content_hash(server, tmp_path):
    content, module = exported(tmp_path)
    status, answer = upload(server, content, "my net.onnx", kind="onnx", stimulus_set="digits", mean="0", std="1")
    assert status == 200 and answer["ok"], answer
    assert (answer["model"], answer["architecture"]) == ("my-net", "onnx:my net")
    assert (answer["accuracy"], answer["top5"]) == pytest.approx(model_accuracy(module, get_stimulus_set("digits")))
    digest = hashlib.sha256(content).hexdigest()
    entry = next(e for e in registry(server) if e["name"] == "my-net")
    assert entry["source"] == "onnx" and entry["hparams"]["sha256"] == digest
    assert entry["hparams"]["size"] == [8, 8] and entry["hparams"]["channels"] == 1
    assert (server.directory / "cache" / "models" / "onnx" / f"{digest}.onnx").read_bytes() == content
    assert "path" not in json.dumps(answer) and str(server.directory) not in json.dumps(answer)


def test_custom_operators_external_data_garbage_and_bad_preprocessing_are_refused(server, tmp_path):
    before = len(registry(server)) if (server.directory / "cache" / "models" / "registry.json").exists() else 0
    node = helper.make_node("Foo", ["image"], ["out"], domain="my.lab")
    graph = helper.make_graph([node], "lab", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 10])])
    lab = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.lab", 1)])
    refused(server, lab.SerializeToString(), "lab.onnx", "custom operator domain 'my.lab' (op 'Foo') is refused",
            kind="onnx")
    content, _ = exported(tmp_path)
    model = onnx.load_model_from_string(content)
    weight = next(t for t in model.graph.initializer if t.name == "fc2.weight")
    set_external_data(weight, location="/etc/passwd")  # a server path the file would have us read
    weight.ClearField("raw_data")
    refused(server, model.SerializeToString(), "ext.onnx", "tensor 'fc2.weight' keeps its data in an external file",
            kind="onnx")
    refused(server, b"not a model at all" * 100, "garbage.onnx", "garbage.onnx: not an ONNX model", kind="onnx")
    refused(server, content, "cnn.onnx", "std must be positive", kind="onnx", std="0")
    refused(server, content, "cnn.onnx", "size 224x224 disagrees with the graph's input, which takes 8x8",
            kind="onnx", size="224")
    refused(server, content, "cnn.onnx", "channels 3 disagrees", kind="onnx", channels=3)
    refused(server, content, "cnn.pkl", "Accepted formats: an .onnx model", kind="onnx")
    refused(server, content, "cnn.onnx", "unknown stimulus set", kind="onnx", stimulus_set="/etc")
    after = len(registry(server)) if (server.directory / "cache" / "models" / "registry.json").exists() else 0
    assert after == before
