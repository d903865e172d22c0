"""Upload checks: safetensors headers, architectures, stimulus zips, and the limited worker."""
import io
import json
import stat
import struct
import zipfile

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from compute.settings import get_settings
from compute.sources import uploads as U
from compute.sources.upload_worker import run_in_worker
from compute.sources.stimuli import get_stimulus_set


@pytest.fixture(autouse=True)
def private_dirs(cache_dir, zoo_dir, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(cache_dir.parent / "uploads"))


def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize("content, problem", [
    (b"abc", "too short"),
    (struct.pack("<Q", 2**62) + b"{}", "header length 4611686018427387904 is larger than the file"),
    (struct.pack("<Q", 4) + b"{no}", "not valid JSON"),
    (safetensors_bytes([1]), "not a JSON object"),
    (safetensors_bytes({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "unknown dtype"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)), "malformed shape"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}, bytes(4)),
     "'w' has data_offsets .* past the end"),
    (safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "needs 8"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)), "overlap"),
])
def test_bad_safetensors_headers_are_refused_naming_the_problem(tmp_path, content, problem):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(U.UploadError, match=problem):
        U.check_safetensors_header(path)


def test_a_real_safetensors_header_passes(tmp_path):
    save_file({"a": torch.zeros(3, 2), "b": torch.ones(4, dtype=torch.int64)}, str(tmp_path / "w.safetensors"))
    assert set(U.check_safetensors_header(tmp_path / "w.safetensors")) >= {"a", "b"}


def test_architectures_resolve_to_zoo_families_or_torchvision():
    arch, hparams = U.resolve_architecture("cnn-w16", 10, (1, 8, 8))
    assert arch == "cnn" and hparams["channels"] == 16 and hparams["num_classes"] == 10
    assert U.resolve_architecture("torchvision:resnet18", 7, (3, 32, 32)) == ("resnet18", {})
    assert "mlp-w4" in U.architecture_choices() and "resnet18" in U.architecture_choices()
    with pytest.raises(U.UploadError, match="unknown architecture 'lenet'"):
        U.resolve_architecture("lenet", 10, (1, 8, 8))
    with pytest.raises(U.UploadError, match="num_classes must be an integer"):
        U.resolve_architecture("cnn-w16", "10", (1, 8, 8))


@pytest.mark.parametrize("filename, name", [
    ("../../x.safetensors", "x"), ("..", "upload"), ("", "upload"), ("модель v2.pt", "модель-v2"),
    ("a\\..\\b.pth", "b"),
])
def test_model_names_from_hostile_file_names(filename, name):
    assert U.model_name(filename) == name


@pytest.mark.parametrize("filename", ["w.pkl", "w", "..", "", "w.safetensors.exe", "w.zip"])
def test_only_accepted_formats_pass(filename):
    with pytest.raises(U.UploadError, match="Accepted formats: .safetensors"):
        U.check_filename("checkpoint", filename)


def png(color=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path, members: dict, links=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_a_zip_of_class_folders_becomes_a_stimulus_set(tmp_path):
    members = {f"set/{c}/{i}.png": png(40 * i) for c in ("cat", "dog") for i in range(3)}
    members["__MACOSX/set/._cat"] = b"junk"
    path = make_zip(tmp_path / "received", members)
    result = U.accept_stimulus_zip(path, "my set.zip")
    assert result["num_classes"] == 2 and result["images"] == 6
    stimuli = get_stimulus_set(result["stimulus_set"])
    assert stimuli.class_names == ["cat", "dog"] and stimuli.images.shape == (6, 1, 4, 4)
    assert result["stimulus_set"] == f"upload:{U.file_sha256(path)}"  # a name, not the server's path
    assert stat.S_IMODE(get_settings().upload_dir.stat().st_mode) == 0o700
    assert U.uploaded_stimulus_sets() == [result["stimulus_set"]]


@pytest.mark.parametrize("members, links, problem", [
    ({"../evil/a.png": png(), "b/c.png": png()}, (), "outside the archive"),
    ({"/abs/a.png": png(), "b/c.png": png()}, (), "absolute"),
    ({"a\\b.png": png()}, (), "non-portable"),
    ({"a/1.png": png(), "b/1.png": png()}, ("a/link.png",), "symbolic link"),
    ({"a/1.png": png(), "b/run.sh": b"#!/bin/sh"}, (), "'b/run.sh' is not an image"),
    ({"a/1.png": png(), "b/bomb.png": bytes(10**6)}, (), "compressed more than 100:1"),
    ({"1.png": png(), "2.png": png()}, (), "one folder per class"),
    ({"a/1.png": png(), "b/1.png": b"not a png"}, (), "unreadable image"),
    ({}, (), "no images"),
])
def test_dangerous_or_malformed_zips_are_refused(tmp_path, members, links, problem):
    path = make_zip(tmp_path / "received", members, links)
    with pytest.raises(U.UploadError if problem != "unreadable image" else ValueError, match=problem):
        U.accept_stimulus_zip(path, "set.zip")
    assert not (get_settings().upload_dir / "stimuli").exists() or not any(
        p for p in (get_settings().upload_dir / "stimuli").iterdir() if not p.name.startswith("."))
    assert not (tmp_path / "evil").exists()


def test_zip_member_and_size_caps(tmp_path, monkeypatch):
    path = make_zip(tmp_path / "received", {f"{c}/{i}.png": png() for c in "ab" for i in range(3)})
    monkeypatch.setattr(U, "MAX_ZIP_MEMBERS", 5)
    with pytest.raises(U.UploadError, match="6 members; at most 5"):
        U.accept_stimulus_zip(path, "set.zip")
    monkeypatch.setattr(U, "MAX_ZIP_MEMBERS", 50)
    monkeypatch.setattr(U, "MAX_UNZIPPED_BYTES", 100)
    with pytest.raises(U.UploadError, match="at most 100 bytes are accepted"):
        U.accept_stimulus_zip(path, "set.zip")


def test_the_worker_registers_a_checkpoint_and_keeps_it_under_its_hash(tmp_path, zoo_dir):
    from compute.sources.models import list_models

    received = tmp_path / "received"
    received.write_bytes((zoo_dir / "digits" / "mlp-w4-s0-e25.safetensors").read_bytes())
    digest = U.file_sha256(received)
    result = run_in_worker("checkpoint", path=str(received), filename="../mine.safetensors",
                             architecture="mlp-w4", num_classes=10)
    assert result["model"] == "mine" and 0 <= result["accuracy"] <= 1
    stored = get_settings().upload_dir / "checkpoints" / f"{digest}.safetensors"
    assert result["stored"] == str(stored) and stored.exists() and not received.exists()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "mine" in [m.name for m in list_models("digits")]


def test_the_worker_stays_within_its_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_MEMORY_BYTES", str(64 * 2**20))
    big = tmp_path / "received"
    save_file({"w": torch.zeros(64 * 2**20)}, str(big))  # 256 MiB of float32
    with pytest.raises(U.UploadError, match="memory"):
        run_in_worker("checkpoint", path=str(big), filename="big.safetensors",
                        architecture="mlp-w4", num_classes=10)


def test_aliases_twins_and_expected_keys_of_checkpoint_uploads(tmp_path, zoo_dir):
    """The same content under a new name keeps both names; initial weights become the upload's
    own untrained twin (refused for a zoo model or another architecture); the expected keys and
    shapes are exactly what the architecture's state_dict holds."""
    from safetensors.torch import load_file

    from compute.sources.models import get_model_info

    def received(name):
        path = tmp_path / f"received-{name}"
        path.write_bytes((zoo_dir / "digits" / f"{name}.safetensors").read_bytes())
        return path

    first = U.accept_checkpoint(received("mlp-w4-s0-e25"), "a.safetensors", "mlp-w4", 10, name="trained")
    again = U.accept_checkpoint(received("mlp-w4-s0-e25"), "a.safetensors", "mlp-w4", 10, name="again")
    assert again["model"] == "again" and again["key"] == first["key"]
    assert again["aliases"] == ["mlp-w4-s0-e25", "trained"]  # the zoo's name, then the first upload's
    twin = U.accept_checkpoint(received("mlp-w4-s0-untrained"), "init.pt.safetensors", "mlp-w4", 10,
                               name="trained-init", twin_of="trained")
    assert get_model_info(twin["model"]).tags["twin_of"] == first["key"]
    assert get_model_info(twin["model"]).tags["epochs"] == 0
    from compute.sources.models import list_models
    from dashboard.views.layer_grid import _twin_button, random_init_twin

    trained = get_model_info("again")  # the alias: the same weights key
    assert random_init_twin(trained, list_models(None)).name == "trained-init"  # before the zoo's untrained ones
    assert "its own uploaded initial weights" in _twin_button(trained, list_models(None))[1]
    for twin_of, words in (("mlp-w4-s0-e25", "there is none named"), ("trained", "architecture")):
        with pytest.raises(U.UploadError, match=words):
            U.accept_checkpoint(received("mlp-w4-s0-untrained"), "x.safetensors", "mlp-w8", 10, twin_of=twin_of)
    expected = U.expected_state("mlp-w4", 10, (1, 8, 8))
    state = load_file(received("mlp-w4-s0-e25"))
    assert sorted(expected) == sorted((k, list(v.shape)) for k, v in state.items())
    assert ("fc1.weight", [4, 64]) in expected
    with pytest.raises(U.UploadError, match="num_classes"):
        U.expected_state("mlp-w4", 1, (1, 8, 8))
