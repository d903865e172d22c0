"""The architecture registry: a lab's entry-point package, timm and Hugging Face models listed,
built, registered (random init, local-cache pretrained, uploaded weights) and extracted from.

The lab package is examples/repscope-lab-models, pip-installed into a session folder (the
``lab_models`` fixture): RepScope finds it through importlib.metadata as in production.
"""
import json
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from compute.sources import architectures as A
from compute.sources import models as M
from compute.sources import weights as W
from compute.sources.representations import open_model
from compute.sources.stimuli import get_stimulus_set
from compute.sources.upload_worker import run_in_worker
from tests.support import ROOT

timm = pytest.importorskip("timm", reason="timm support is the optional extra repscope[timm]")
transformers = pytest.importorskip("transformers", reason="Hugging Face support is the optional extra repscope[hf]")


@pytest.fixture(autouse=True)
def private_dirs(cache_dir, zoo_dir, tmp_path, monkeypatch, lab_models):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(self, address):
        raise AssertionError(f"network connection attempted to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def digits():
    return get_stimulus_set("digits")


def defaults(representation) -> tuple[list[str], list[str]]:
    layers = representation.layers()
    return [l.name for l in layers if l.default], [l.name for l in layers if l.penultimate]


def extracted(info, layers):
    """{layer: N x D} of ``info`` on digits, averaged over space/tokens, through open_model."""
    return open_model(info).extract(digits(), layers, pooling="avg")


# --- the registry and the lab package ---

def test_lab_architectures_are_listed_beside_torchvisions_through_entry_points():
    from importlib.metadata import entry_points

    points = {p.name: p for p in entry_points(group="repscope.models")}
    assert points["lab_cnn"].dist.name == "repscope-lab-models"  # the real install, found on sys.path
    listed = A.list_architectures()
    assert {"mlp", "cnn", "torchvision:resnet18", "lab:lab_cnn", "lab:lab_mlp", "timm:test_vit",
            "hf:tiny-vit"} <= set(listed)
    assert A.split_architecture("lab:lab_cnn") == ("lab", "lab_cnn")
    assert A.split_architecture("resnet18") == A.split_architecture("torchvision:resnet18") == ("torchvision", "resnet18")
    with pytest.raises(ValueError, match="no lab architecture 'nope'.*'repscope.models' entry points"):
        A.split_architecture("lab:nope")
    with pytest.raises(ValueError, match="unknown architecture family 'keras'"):
        A.split_architecture("keras:resnet")


def test_the_models_page_offers_every_family_for_uploads():
    from dashboard.views import models as view

    def options(component):
        if getattr(component, "id", None) == "models-architecture":
            return component.options
        for child in (component.children if isinstance(getattr(component, "children", None), list)
                      else [getattr(component, "children", None)]):
            if child is not None and not isinstance(child, str) and (found := options(child)) is not None:
                return found
        return None

    offered = options(view.layout())
    assert {"cnn-w16", "resnet18", "lab:lab_cnn", "lab:lab_mlp", "timm:resnet10t", "hf:tiny-resnet"} <= set(offered)


def test_listing_and_importing_the_registry_loads_no_torch():
    code = ("import sys; from compute.sources import architectures, lab_models, models; "
            "names = lab_models.names(); "
            "print(names, [m for m in ('torch', 'timm', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['lab_cnn', 'lab_mlp'] []"


def test_a_lab_architecture_registers_with_a_seeded_random_init_and_extracts():
    info = M.register_model("lab-rand", "lab:lab_cnn", num_classes=10, seed=3, hparams={"image_shape": [1, 8, 8]},
                            stimulus_set="digits")
    assert info.source == "lab" and info.architecture == "lab:lab_cnn" and info.num_classes == 10
    assert 0 <= info.accuracy <= info.top5 <= 1
    again = M.register_model("lab-rand-2", "lab:lab_cnn", num_classes=10, seed=3, hparams={"image_shape": [1, 8, 8]})
    assert again.key == info.key
    model = open_model("lab-rand")  # rebuilt from the registry, its key checked
    assert defaults(model) == (["block1", "block2", "pool"], ["pool"])  # the package's default_layers
    acts = model.extract(digits(), ["block2", "pool"], pooling="avg")
    assert acts["block2"].shape == acts["pool"].shape == (len(digits()), 16)
    with pytest.raises(ValueError, match="lab:lab_cnn has no pretrained weights"):
        M.register_model("lab-pre", "lab:lab_cnn", pretrained=True)


def test_uploaded_weights_for_a_lab_architecture_are_checked_like_any_upload(tmp_path):
    from repscope_lab_models import lab_cnn

    torch.manual_seed(0)
    trained = lab_cnn(num_classes=10, image_shape=(1, 8, 8))
    save_file(trained.state_dict(), str(tmp_path / "lab.safetensors"))
    info = M.register_model("lab-up", "lab:lab_cnn", weights=tmp_path / "lab.safetensors", num_classes=10,
                            hparams={"image_shape": [1, 8, 8]}, stimulus_set="digits")
    assert info.source == "upload" and info.key == W.weights_key(trained.state_dict())
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(M.load_model("lab-up")(x), trained.eval()(x))
    narrow = lab_cnn(num_classes=10, width=4).state_dict()
    with pytest.raises(ValueError, match=r"do not fit the architecture LabCNN: shape mismatches: block1\.0\.weight"):
        M.register_model("lab-narrow", "lab:lab_cnn", weights=narrow, num_classes=10)
    with pytest.raises(ValueError, match=r"LabMLP: missing keys: fc\.weight, fc\.bias; unexpected keys: block1\.0\.weight"):
        M.register_model("lab-other", "lab:lab_mlp", weights=narrow, num_classes=10)
    assert [m.name for m in M.list_models(None) if m.name.startswith("lab-")] == ["lab-up"]


def test_the_upload_worker_finds_the_lab_package_and_gives_it_the_image_shape(tmp_path):
    from repscope_lab_models import lab_mlp

    from compute.sources.uploads import resolve_architecture

    assert resolve_architecture("lab:lab_mlp", 10, (1, 8, 8)) == ("lab:lab_mlp", {"image_shape": [1, 8, 8]})
    torch.manual_seed(1)
    received = tmp_path / "received"
    save_file(lab_mlp(num_classes=10, image_shape=(1, 8, 8)).state_dict(), str(received))
    result = run_in_worker("checkpoint", path=str(received), filename="mlp.safetensors",
                           architecture="lab:lab_mlp", num_classes=10)
    assert result["model"] == "mlp" and result["architecture"] == "lab:lab_mlp" and 0 <= result["accuracy"] <= 1
    wrong = tmp_path / "wrong"
    save_file(lab_mlp(num_classes=10, image_shape=(1, 8, 8), hidden=7).state_dict(), str(wrong))
    with pytest.raises(ValueError, match=r"do not fit the architecture LabMLP: shape mismatches: fc\.weight"):
        run_in_worker("checkpoint", path=str(wrong), filename="wrong.safetensors", architecture="lab:lab_mlp",
                      num_classes=10)


@pytest.mark.parametrize("architecture", ["timm:test_vit", "hf:tiny-vit"])
def test_the_upload_worker_checks_timm_and_hugging_face_weights(tmp_path, architecture):
    """The worker imports timm or transformers before its memory limit, then checks as always."""
    family, name = A.split_architecture(architecture)
    received = tmp_path / "received"
    save_file(A.build_module(family, name, {"num_classes": 10, "seed": 2}).state_dict(), str(received))
    result = run_in_worker("checkpoint", path=str(received), filename="net.safetensors",
                           architecture=architecture, num_classes=10)
    assert result["architecture"] == architecture and 0 <= result["accuracy"] <= 1
    assert M.get_model_info("net").source == "upload"
    save_file(A.build_module(family, name, {"num_classes": 7}).state_dict(), str(received))
    with pytest.raises(ValueError, match=r"shape mismatches: .*\(expected \(10, \d+\), got \(7, \d+\)\)"):
        run_in_worker("checkpoint", path=str(received), filename="seven.safetensors", architecture=architecture,
                      num_classes=10)


def test_a_lab_entry_point_that_fails_to_import_is_named(tmp_path, monkeypatch):
    """A second distribution whose entry point names a missing module (metadata only)."""
    info = tmp_path / "broken_lab-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-lab\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[repscope.models]\nbroken = no_such_lab_module:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "lab:broken" in A.list_architectures("lab")
    with pytest.raises(ValueError, match=r"'broken' \(no_such_lab_module:build\) could not be imported: "
                                         "ModuleNotFoundError"):
        M.register_model("broken", "lab:broken")


# --- timm ---

@pytest.mark.parametrize("name, hparams, blocks, penultimate", [
    ("test_resnet", {"image_size": 32}, ["conv1", "layer1", "layer2", "layer3", "layer4"], "global_pool"),
    ("test_vit", {"img_size": 32}, ["patch_embed"] + [f"blocks.{i}" for i in range(6)], "norm"),
    ("test_convnext", {"image_size": 32}, ["stem"] + [f"stages.{i}" for i in range(4)], "head.norm"),
])
def test_tiny_timm_models_register_and_extract(name, hparams, blocks, penultimate):
    info = M.register_model(f"timm-{name}", f"timm:{name}", num_classes=10, seed=0, hparams=hparams,
                            stimulus_set="digits")
    assert info.source == "timm" and info.architecture == f"timm:{name}" and info.num_classes == 10
    assert 0 <= info.accuracy <= 1
    model = open_model(info.name)
    assert defaults(model) == (blocks + [penultimate], [penultimate])
    acts = model.extract(digits(), [blocks[-1], penultimate], pooling="avg")
    assert all(a.shape[0] == len(digits()) and a.shape[1] > 1 for a in acts.values())
    assert model.scores(digits()).shape == (len(digits()), 10)


def test_timm_resizes_grey_stimuli_to_the_models_input():
    model = A.build_module("timm", "test_vit", {"num_classes": 10})  # timm's 160 px
    seen = []
    model.patch_embed.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    model(torch.rand(2, 1, 8, 8))
    assert seen == [(2, 3, 160, 160)]
    with pytest.raises(ValueError, match="bad hyper-parameters for timm:test_resnet"):
        A.build_module("timm", "test_resnet", {"img_size": 32})


def test_timm_pretrained_comes_only_from_the_local_cache(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match=r"not in the local caches \(RepScope never downloads\): "
                                                r"looked for timm/test_resnet\.r160_in1k/model\.safetensors"):
        M.register_model("timm-pre", "timm:test_resnet", pretrained=True)
    snapshot = tmp_path / "hub" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abc")
    torch.manual_seed(7)
    saved = timm.create_model("test_resnet").state_dict()
    save_file(saved, str(snapshot / "model.safetensors"))
    info = M.register_model("timm-pre", "timm:test_resnet", pretrained=True)
    assert info.source == "timm" and info.key == W.weights_key(saved) and info.hparams["pretrained"] is True
    assert W.weights_key(M.load_model("timm-pre").state_dict()) == info.key
    with pytest.raises(ValueError, match="pretrained timm:test_resnet has 1000 classes, not num_classes=10"):
        M.register_model("timm-pre-10", "timm:test_resnet", pretrained=True, num_classes=10)


# --- Hugging Face ---

@pytest.mark.parametrize("name, blocks, penultimate", [
    ("tiny-vit", ["vit.embeddings"] + [f"vit.layers.{i}" for i in range(3)], "vit.layernorm"),
    ("tiny-resnet", ["resnet.embedder"] + [f"resnet.encoder.stages.{i}" for i in range(4)], "resnet.pooler"),
    ("tiny-convnext", ["convnext.embeddings"] + [f"convnext.encoder.stages.{i}" for i in range(4)],
     "convnext.layernorm"),
])
def test_tiny_hugging_face_configs_register_and_extract(name, blocks, penultimate):
    info = M.register_model(f"hf-{name}", f"hf:{name}", num_classes=10, seed=0, stimulus_set="digits")
    assert info.source == "hf" and info.num_classes == 10 and 0 <= info.accuracy <= 1
    model = open_model(info.name)
    assert defaults(model) == (blocks + [penultimate], [penultimate])
    acts = model.extract(digits(), [blocks[0], blocks[-1], penultimate], pooling="avg")
    assert all(a.shape[0] == len(digits()) and a.shape[1] > 1 for a in acts.values())
    assert model.scores(digits()).shape == (len(digits()), 10)  # the logits tensor, not a ModelOutput
    # any named module may be chosen, the base model (whose output is a ModelOutput) too
    base = penultimate.split(".")[0]
    assert open_model(info.name).extract(digits(), [base], pooling="avg")[base].shape[0] == len(digits())


def save_cached_vit(hub, repo_id: str):
    """A small ViT classifier saved into a hub cache as a download would leave it."""
    from transformers import AutoConfig, AutoModelForImageClassification, ViTImageProcessor

    folder = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / "c0ffee"
    torch.manual_seed(5)
    config = AutoConfig.for_model("vit", image_size=16, patch_size=8, hidden_size=24, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=48, num_labels=10)
    model = AutoModelForImageClassification.from_config(config)
    model.save_pretrained(snapshot)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("c0ffee")
    return model


def test_hugging_face_pretrained_comes_only_from_the_local_cache(tmp_path, no_network):
    with pytest.raises(ValueError, match="no hf architecture 'lab/vit-digits'.*local Hugging Face hub cache"):
        M.register_model("hf-pre", "hf:lab/vit-digits", pretrained=True)
    saved = save_cached_vit(tmp_path / "hub", "lab/vit-digits")
    assert "hf:lab/vit-digits" in A.list_architectures("hf")
    info = M.register_model("hf-pre", "hf:lab/vit-digits", pretrained=True, stimulus_set="digits")
    assert info.source == "hf" and info.key == W.weights_key(saved.state_dict()) and info.num_classes == 10
    model = M.load_model("hf-pre")
    seen = []
    model.vit.embeddings.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x = torch.rand(2, 1, 8, 8)
    model(x)
    expected = (torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1), size=(16, 16), mode="bilinear") - 0.5) / 0.25
    assert torch.allclose(seen[0], expected, atol=1e-5)  # grey -> RGB, resized, normalised as cached
    random = M.register_model("hf-rand", "hf:lab/vit-digits", num_classes=4, seed=1)  # its config, fresh weights
    assert random.num_classes == 4 and random.key != info.key
    with pytest.raises(ValueError, match="hf:tiny-vit is a built-in configuration for a random init"):
        M.register_model("hf-builtin-pre", "hf:tiny-vit", pretrained=True)
    with pytest.raises(ValueError, match="pretrained hf:lab/vit-digits has 10 classes, not num_classes=3"):
        M.register_model("hf-pre-3", "hf:lab/vit-digits", pretrained=True, num_classes=3)


def test_a_cached_model_without_safetensors_is_refused_clearly(tmp_path, no_network):
    save_cached_vit(tmp_path / "hub", "lab/vit-bin")
    snapshot = tmp_path / "hub" / "models--lab--vit-bin" / "snapshots" / "c0ffee"
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="pretrained weights for hf:lab/vit-bin are not in the local "
                                                "Hugging Face hub cache.*never downloads"):
        M.register_model("hf-bin", "hf:lab/vit-bin", pretrained=True)
    config = json.loads((snapshot / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "modeling.Net"}  # remote code: never offered
    (snapshot / "config.json").write_text(json.dumps(config))
    assert "hf:lab/vit-bin" not in A.list_architectures("hf")
    config.pop("auto_map")
    config["architectures"] = ["ViTModel"]  # a backbone, no classifier: not offered
    (snapshot / "config.json").write_text(json.dumps(config))
    assert "hf:lab/vit-bin" not in A.list_architectures("hf")
