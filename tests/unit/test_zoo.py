"""The built-in zoo: architectures, the recipe's plan, determinism, manifest, atomic build, spread."""
import json
from collections import Counter

import pytest
import torch

from compute import zoo as command
from compute.sources import zoo_architectures, zoo_cache, zoo_manifest, zoo_training
from compute.sources.weights import load_state_dict_file, weights_key
from tests.unit.test_stimuli import write_fake_mnist

TINY = "mlp-w4-s0-"  # one MLP run: its untrained twin and three snapshots, ~0.5 s


def tiny(name: str) -> bool:
    return name.startswith(TINY)


def test_architectures_have_readable_layer_names():
    mlp = zoo_architectures.build_architecture("mlp", hidden=[8, 8, 8], in_features=64, num_classes=10)
    assert [n for n, _ in mlp.named_children()] == ["flatten", "fc1", "act1", "fc2", "act2", "fc3", "act3", "out"]
    assert isinstance(mlp.act1, torch.nn.Sigmoid) and mlp(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    cnn = zoo_architectures.build_architecture("cnn", **zoo_architectures.family_hparams("cnn", 4, (1, 8, 8), 10))
    kinds = [type(m).__name__ for m in cnn.children()]
    assert kinds[:5] == ["Conv2d", "MaxPool2d", "ReLU", "BatchNorm2d", "Dropout"]
    assert cnn.eval()(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown zoo architecture"):
        zoo_architectures.build_architecture("transformer")
    with pytest.raises(ValueError, match="bad hyper-parameters"):
        zoo_architectures.build_architecture("mlp", depth=3)


def test_plan_has_every_group_and_unique_names():
    runs = zoo_training.plan()
    models = [snap for run in runs for snap in run.snapshots.values()]
    names = [name for name, _, _ in models]
    assert len(names) == len(set(names)) >= 60
    groups = Counter(group for _, group, _ in models)
    assert set(groups) == {"trained", "untrained", "checkpoint", "shuffled-labels", "true-labels"}
    series = Counter(tags["series"] for _, group, tags in models if group == "checkpoint")
    assert len(series) >= 2 and min(series.values()) >= 10
    for name, group, tags in models:
        assert {"family", "width", "seed", "epochs", "labels"} <= set(tags)
        if group == "shuffled-labels":
            assert tags["twin"] in names and tags["labels"] == "shuffled"
    trained = {(t["family"], t["width"]) for _, g, t in models if g == "trained"}
    assert trained == {(t["family"], t["width"]) for _, g, t in models if g == "untrained"}
    assert len({t["seed"] for _, g, t in models if g == "trained"}) >= 3
    assert len({t["epochs"] for _, g, t in models if g == "trained"}) >= 3


def test_subset_build_is_deterministic_with_a_full_manifest(tmp_path):
    first = zoo_training.build_zoo("digits", tmp_path / "a", select=tiny)
    second = zoo_training.build_zoo("digits", tmp_path / "b", select=tiny)
    assert [e.name for e in first] == [TINY + s for s in ("untrained", "e1", "e5", "e25")]
    assert [e.key for e in first] == [e.key for e in second] and len({e.key for e in first}) == 4
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["version"] == zoo_manifest.ZOO_VERSION and manifest["dataset"] == "digits"
    entry = manifest["models"][-1]
    assert set(entry) >= {"name", "architecture", "hparams", "tags", "key", "accuracy", "top5",
                          "train_accuracy", "num_classes", "file"}
    assert entry["architecture"] == "mlp" and entry["hparams"]["hidden"] == [4, 4, 4]
    assert entry["tags"] | {"group": "trained", "family": "mlp", "width": 4, "seed": 0, "epochs": 25} == entry["tags"]
    assert 0 <= entry["accuracy"] <= entry["top5"] <= 1
    state = load_state_dict_file(tmp_path / "a" / entry["file"])
    assert weights_key(state) == entry["key"]
    model = zoo_architectures.build_architecture(entry["architecture"], **entry["hparams"])
    model.load_state_dict(state)  # the recorded architecture rebuilds the module


def _fake_build(calls):
    real = zoo_training.build_zoo

    def build(dataset, out_dir, select=None, progress=False):
        calls.append(dataset)
        return real(dataset, out_dir, select=tiny, progress=progress)
    return build


def test_ensure_zoo_builds_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_ZOO_DIR", str(tmp_path / "zoo"))
    calls = []
    monkeypatch.setattr(zoo_training, "build_zoo", _fake_build(calls))
    built = zoo_cache.ensure_zoo("digits", progress=False)
    again = zoo_cache.ensure_zoo("digits", progress=False)
    assert calls == ["digits"] and [e.key for e in built] == [e.key for e in again]
    assert all(e.path.exists() for e in again)
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == [".digits.lock", "digits"]
    zoo_cache.ensure_zoo("digits", progress=False, force=True)
    assert calls == ["digits", "digits"]
    # an outdated recipe version is rebuilt
    manifest = tmp_path / "zoo" / "digits" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"version": {zoo_manifest.ZOO_VERSION}', '"version": -1'))
    zoo_cache.ensure_zoo("digits", progress=False)
    assert len(calls) == 3


def test_a_failed_build_leaves_nothing_taken_as_built(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_ZOO_DIR", str(tmp_path / "zoo"))

    def crash(dataset, out_dir, select=None, progress=False):
        (out_dir / "half.safetensors").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo_training, "build_zoo", crash)
    with pytest.raises(KeyboardInterrupt):
        zoo_cache.ensure_zoo("digits", progress=False)
    assert not (tmp_path / "zoo" / "digits").exists()
    assert [p.name for p in (tmp_path / "zoo").iterdir()] == [".digits.lock"]
    # a folder without a manifest (e.g. copied half-way) is not a zoo
    (tmp_path / "zoo" / "digits").mkdir()
    assert zoo_manifest.load_manifest(tmp_path / "zoo" / "digits") is None


def test_cli_builds_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPSCOPE_ZOO_DIR", str(tmp_path / "zoo"))
    monkeypatch.setenv("REPSCOPE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setattr(zoo_training, "build_zoo", _fake_build([]))
    assert command.main(["build", "--dataset", "digits", "--quiet"]) == 0
    assert "4 models" in capsys.readouterr().out
    assert command.main(["build", "--dataset", "fashionmnist", "--quiet"]) == 2
    assert "not on disk" in capsys.readouterr().err


def test_same_recipe_on_a_torchvision_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_DATA_ROOT", str(write_fake_mnist(tmp_path / "data", "FashionMNIST")))
    entries = zoo_training.build_zoo("fashionmnist", tmp_path / "fm", select=lambda n: n == "fashionmnist-cnn-w2-s0-e1")
    assert [e.name for e in entries] == ["fashionmnist-cnn-w2-s0-e1"]
    assert entries[0].hparams["image_size"] == 28 and entries[0].dataset == "fashionmnist"


@pytest.mark.slow
def test_full_zoo_spread_groups_and_twins(zoo_dir):
    entries = zoo_cache.ensure_zoo("digits", progress=False)
    assert len(entries) >= 60 and len({e.key for e in entries}) == len(entries)
    by_name = {e.name: e for e in entries}
    accuracy = [e.accuracy for e in entries if e.tags["group"] == "trained"]
    assert min(accuracy) < 0.30 and max(accuracy) > 0.95
    groups = Counter(e.tags["group"] for e in entries)
    assert groups["checkpoint"] >= 20 and groups["untrained"] >= 8 and groups["shuffled-labels"] >= 3
    for e in entries:
        if e.tags["group"] == "shuffled-labels":
            twin = by_name[e.tags["twin"]]
            assert e.accuracy < 0.2 and e.train_accuracy > 0.7  # memorised
            assert twin.accuracy > 0.9 and twin.hparams == e.hparams  # generalised
        if e.tags["group"] == "untrained":
            assert e.accuracy < 0.2
    series = [e for e in entries if e.tags.get("series") == "cnn-w4-s10"]
    assert [e.tags["step"] for e in series] == sorted(e.tags["step"] for e in series)
    assert series[-1].accuracy > series[0].accuracy + 0.5
