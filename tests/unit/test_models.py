"""Model registry, safe checkpoint loading and its refusals, torchvision, layer listing."""
import os
import zipfile

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from compute.sources import layers as L
from compute.sources import models as M
from compute.sources import torchvision_models as TV
from compute.sources import weights as W
from compute.sources.zoo_architectures import build_architecture, family_hparams
from compute.sources.zoo_training import build_zoo


@pytest.fixture(scope="module")
def tiny_zoo_dir(tmp_path_factory):
    """A digits zoo of four models, so list_models never trains the full zoo here."""
    directory = tmp_path_factory.mktemp("tinyzoo")
    build_zoo("digits", directory / "digits", select=lambda n: n.startswith("mlp-w4-s0-"))
    return directory


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch, tiny_zoo_dir):
    monkeypatch.setenv("REPSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPSCOPE_ZOO_DIR", str(tiny_zoo_dir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def small_cnn(num_classes=10):
    torch.manual_seed(0)
    return build_architecture("cnn", **family_hparams("cnn", 2, (1, 8, 8), num_classes))


# --- weights and identity ---

def test_weights_key_is_content_and_order_independent():
    state = small_cnn().state_dict()
    reordered = dict(reversed(list(state.items())))
    assert W.weights_key(state) == W.weights_key(reordered)
    changed = {k: v.clone() for k, v in state.items()}
    changed["out.bias"][0] += 1e-6
    assert W.weights_key(changed) != W.weights_key(state)
    renamed = {("x." + k): v for k, v in state.items()}
    assert W.weights_key(renamed) != W.weights_key(state)


def test_safetensors_and_state_dict_files_load(tmp_path):
    state = small_cnn().state_dict()
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "wrapped.pth")
    for name in ("w.safetensors", "w.pt", "wrapped.pth"):
        loaded = W.load_state_dict_file(tmp_path / name)
        assert W.weights_key(loaded) == W.weights_key(state), name


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_that_run_code_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.zeros(2), "payload": Evil(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="other than tensors.*Accepted formats"):
        W.load_state_dict_file(tmp_path / "evil.pt")
    assert not marker.exists()
    import pickle

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(ValueError, match=r"'\.pkl' is not accepted.*Accepted formats: \.safetensors"):
        W.load_state_dict_file(tmp_path / "evil.pkl")
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still loadable
def test_whole_modules_torchscript_and_junk_are_refused(tmp_path):
    model = small_cnn()
    torch.save(model, tmp_path / "module.pt")
    with pytest.raises(ValueError, match="whole pickled module"):
        W.load_state_dict_file(tmp_path / "module.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "script.pt"))
    with pytest.raises(ValueError, match="TorchScript"):
        W.load_state_dict_file(tmp_path / "script.pt")
    (tmp_path / "junk.pth").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        W.load_state_dict_file(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        W.load_state_dict_file(tmp_path / "junk.safetensors")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a state_dict"):
        W.load_state_dict_file(tmp_path / "list.pt")
    with zipfile.ZipFile(tmp_path / "fake.pt", "w") as archive:  # TorchScript layout, any content
        archive.writestr("fake/code/__torch__.py", "import os")
        archive.writestr("fake/constants.pkl", b"")
    with pytest.raises(ValueError, match="TorchScript"):
        W.load_state_dict_file(tmp_path / "fake.pt")


def test_validate_state_dict_names_the_offending_tensors():
    model = small_cnn()
    good = model.state_dict()
    W.validate_state_dict(model, good)
    nan = {k: v.clone() for k, v in good.items()}
    nan["fc2.weight"][0, 0] = float("nan")
    nan["bn1.running_var"][0] = float("inf")
    with pytest.raises(ValueError, match=r"NaN or inf values in: (fc2\.weight, bn1\.running_var|bn1\.running_var, fc2\.weight)"):
        W.validate_state_dict(model, nan)
    shapes = dict(small_cnn(num_classes=7).state_dict())
    with pytest.raises(ValueError, match=r"out\.weight \(expected \(10, 8\), got \(7, 8\)\)"):
        W.validate_state_dict(model, shapes)
    keys = dict(good)
    keys.pop("conv1.bias")
    keys["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys: conv1\.bias; unexpected keys: extra\.weight"):
        W.validate_state_dict(model, keys)
    half = {k: (v.half() if k == "fc3.weight" else v) for k, v in good.items()}
    with pytest.raises(ValueError, match=r"fc3\.weight \(expected torch\.float32, got torch\.float16\)"):
        W.validate_state_dict(model, half)


# --- torchvision ---

def test_torchvision_random_init_and_architecture_list():
    names = TV.torchvision_architectures()
    assert {"resnet18", "vit_b_16", "squeezenet1_0"} <= set(names) and len(names) > 50
    assert "fasterrcnn_resnet50_fpn" not in names
    model = TV.load_torchvision("resnet18", num_classes=10, seed=3)
    assert not model.training and model(torch.rand(2, 1, 32, 32)).shape == (2, 10)  # gray -> RGB
    again = TV.load_torchvision("resnet18", num_classes=10, seed=3)
    assert W.weights_key(model.state_dict()) == W.weights_key(again.state_dict())
    with pytest.raises(ValueError, match="unknown torchvision"):
        TV.load_torchvision("resnet19")


def test_pretrained_comes_only_from_the_hub_cache(tmp_path):
    path = TV.hub_weights_path("squeezenet1_0")
    assert str(path).startswith(str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match=str(path)):
        TV.load_torchvision("squeezenet1_0", pretrained=True)
    torch.manual_seed(42)
    saved = torchvision.models.squeezenet1_0().state_dict()
    path.parent.mkdir(parents=True)
    torch.save(saved, path)
    model = TV.load_torchvision("squeezenet1_0", pretrained=True)
    assert W.weights_key(model.state_dict()) == W.weights_key(saved)
    with pytest.raises(ValueError, match="1000 classes"):
        TV.load_torchvision("squeezenet1_0", pretrained=True, num_classes=10)
    prepare = TV.preprocessing("squeezenet1_0", pretrained=True)
    out = prepare(torch.rand(2, 1, 8, 8))
    assert out.shape == (2, 3, 224, 224) and float(out.min()) < 0  # resized and normalised
    info = M.register_model("sq-pre", "squeezenet1_0", pretrained=True)
    assert info.source == "torchvision" and info.key == W.weights_key(saved) and info.accuracy is None
    assert W.weights_key(M.load_model("sq-pre").state_dict()) == info.key


# --- registry ---

def test_zoo_models_are_listed_and_load_by_name_or_key():
    listed = M.list_models("digits")
    assert [m.name for m in listed] == ["mlp-w4-s0-untrained", "mlp-w4-s0-e1", "mlp-w4-s0-e5", "mlp-w4-s0-e25"]
    info = listed[-1]
    assert info.source == "zoo" and info.tags["group"] == "trained" and info.num_classes == 10
    model = M.load_model(info.key)
    assert not model.training and W.weights_key(model.state_dict()) == info.key
    assert M.get_model_info(info.name) == info
    assert M.list_models("cifar10") == []
    with pytest.raises(KeyError, match="no model"):
        M.get_model_info("nope")


def test_load_model_detects_weights_changed_on_disk(tmp_path, tiny_zoo_dir, monkeypatch):
    import shutil

    copy = tmp_path / "zoo-copy"
    shutil.copytree(tiny_zoo_dir, copy)
    monkeypatch.setenv("REPSCOPE_ZOO_DIR", str(copy))
    info = M.get_model_info("mlp-w4-s0-e5")
    other = W.load_state_dict_file(copy / "digits" / "mlp-w4-s0-e1.safetensors")
    save_file(other, info.weights)
    with pytest.raises(ValueError, match="changed on disk"):
        M.load_model(info.name)


def test_register_an_upload_with_accuracy(tmp_path):
    model = small_cnn()
    save_file(model.state_dict(), str(tmp_path / "mine.safetensors"))
    info = M.register_model("mine", "cnn", weights=tmp_path / "mine.safetensors",
                            hparams=family_hparams("cnn", 2, (1, 8, 8), 10), stimulus_set="digits",
                            tags={"who": "me"})
    assert info.source == "upload" and info.key == W.weights_key(model.state_dict())
    assert 0 <= info.accuracy <= info.top5 <= 1 and info.num_classes == 10
    assert [m.name for m in M.list_models("digits")][-1] == "mine"
    assert M.get_model_info(info.key).tags == {"who": "me"}
    loaded = M.load_model("mine")
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(loaded(x), model.eval()(x))
    with pytest.raises(ValueError, match="exists already"):
        M.register_model("mine", "cnn", weights=model.state_dict(), hparams=info.hparams)
    with pytest.raises(ValueError, match="exists already"):
        M.register_model("mlp-w4-s0-e1", "cnn", weights=model.state_dict(), hparams=info.hparams)


def test_refused_uploads_leave_nothing_registered(tmp_path):
    cache = tmp_path / "cache" / "models"
    bad = {k: v.clone() for k, v in small_cnn().state_dict().items()}
    bad["conv1.weight"][0] = float("nan")
    hparams = family_hparams("cnn", 2, (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"conv1\.weight"):
        M.register_model("nan", "cnn", weights=bad, hparams=hparams)
    with pytest.raises(ValueError, match="missing keys"):
        M.register_model("wrong-arch", "resnet18", weights=small_cnn().state_dict(), num_classes=10)
    with pytest.raises(ValueError, match="unknown architecture"):
        M.register_model("x", "lenet", weights=bad)
    assert not (cache / "registry.json").exists() and not (cache / "weights").exists()


def test_outputs_that_do_not_match_the_labels_give_accuracy_na():
    five = small_cnn(num_classes=5)
    info = M.register_model("five", "cnn", weights=five.state_dict(),
                            hparams=family_hparams("cnn", 2, (1, 8, 8), 5), stimulus_set="digits")
    assert info.accuracy is None and info.top5 is None and info.num_classes == 5


# --- layers ---

def test_layers_of_zoo_models():
    mlp = build_architecture("mlp", **family_hparams("mlp", 8, (1, 8, 8), 10))
    layers = L.list_layers(mlp)
    assert [l.name for l in layers if l.default] == ["act1", "act2", "act3"]
    assert [l.name for l in layers if l.penultimate] == ["act3"]
    assert {l.name: l.kind for l in layers}["fc1"] == "Linear"
    cnn = L.list_layers(small_cnn())
    assert [l.name for l in cnn if l.default] == ["bn1", "bn2", "bn3"]
    assert [l.name for l in cnn if l.penultimate] == ["bn3"]


def test_layers_of_torchvision_models():
    resnet = L.list_layers(torchvision.models.resnet18())
    assert [l.name for l in resnet if l.default] == ["layer1", "layer2", "layer3", "layer4", "avgpool"]
    assert [l.name for l in resnet if l.penultimate] == ["avgpool"]
    assert "layer1.0.conv1" in {l.name for l in resnet}  # any named module can be chosen
    squeeze = L.list_layers(torchvision.models.squeezenet1_0())
    assert [l.name for l in squeeze if l.penultimate] == ["features.12"]  # the Fire block, not a branch
    vgg = L.list_layers(torchvision.models.vgg11())
    assert [l.name for l in vgg if l.default][0] == "features.2"
    assert [l.name for l in vgg if l.penultimate] == ["classifier.4"]


# --- renaming, aliases and deleting registered models ---

def test_rename_alias_and_delete_under_the_registry_lock():
    """The same weights under two names are both listed (an alias, one file); a rename keeps the
    key; deleting one alias keeps the file, deleting the last removes it; the zoo's models and
    names not in the registry are refused with a message, and bad names too."""
    hparams = family_hparams("cnn", 2, (1, 8, 8), 10)
    first = M.register_model("first", "cnn", weights=small_cnn().state_dict(), hparams=hparams)
    second = M.register_model("second", "cnn", weights=small_cnn().state_dict(), hparams=hparams)
    assert first.key == second.key and first.weights == second.weights
    assert M.aliases(first.key) == ["first", "second"]
    renamed = M.rename_model("first", "renamed.v2")
    assert renamed.key == first.key and M.get_model_info("renamed.v2").weights == first.weights
    assert {"renamed.v2", "second"} <= {m.name for m in M.list_models(None)}
    assert "first" not in {m.name for m in M.list_models(None)}
    for bad, words in ((("second", "renamed.v2"), "exists already"), (("second", "mlp-w4-s0-e1"), "exists already"),
                       (("second", "../x"), "1 to 80"), (("second", "a" * 81), "1 to 80"), (("second", ""), "1 to 80"),
                       (("mlp-w4-s0-e1", "mine"), "zoo model"), (("nobody", "mine"), "no registered model")):
        with pytest.raises(ValueError, match=words):
            M.rename_model(*bad)
    for bad, words in (("mlp-w4-s0-e1", "cannot be deleted"), ("nobody", "no registered model")):
        with pytest.raises(ValueError, match=words):
            M.delete_model(bad)
    M.delete_model("renamed.v2")
    assert os.path.exists(second.weights) and M.aliases(second.key) == ["second"]
    assert M.load_model("second") is not None
    M.delete_model("second")
    assert not os.path.exists(second.weights)
    assert not any(m.key == first.key for m in M.list_models(None))
    assert M.get_model_info("mlp-w4-s0-e1").source == "zoo"  # the zoo is untouched


def test_concurrent_renames_and_deletes_lose_no_entry():
    """Read-modify-write of registry.json under the lock: 12 renames and deletes at once, in
    threads (flock holds between open files), leave exactly what they asked."""
    from concurrent.futures import ThreadPoolExecutor

    state, hparams = small_cnn().state_dict(), family_hparams("cnn", 2, (1, 8, 8), 10)
    for i in range(12):
        M.register_model(f"m{i}", "cnn", weights=state, hparams=hparams)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: M.rename_model(f"m{i}", f"n{i}") if i % 3 else M.delete_model(f"m{i}"), range(12)))
    assert sorted(m.name for m in M.list_models(None) if m.source == "upload") == \
        sorted(f"n{i}" for i in range(12) if i % 3)
