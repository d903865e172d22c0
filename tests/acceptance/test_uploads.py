"""Hostile uploads against a real app process: nothing runs, nothing escapes, everything is named."""
import hashlib
import json
import os
import pickle
import struct
import urllib.error
import urllib.request
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from compute.sources.zoo_architectures import build_architecture, family_hparams
from tests.browser.support import AppServer

CAP = 2 * 2**20


@pytest.fixture(scope="module")
def server(zoo_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("app")
    app = AppServer(directory / "cache", zoo_dir, directory,
                    env={"REPSCOPE_MAX_UPLOAD_BYTES": str(CAP), "REPSCOPE_UPLOAD_DIR": str(directory / "uploads")})
    app.start()
    app.directory = directory
    yield app
    app.stop()


def post(url, data=b"", content_type="application/octet-stream"):
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def upload(server, content: bytes, filename: str, kind="checkpoint", **fields):
    """Send ``content`` through the chunked route as upload.js does; the finish answer."""
    status, start = post(server.url + "/upload/start")
    assert status == 200, start
    base = f"{server.url}/upload/{start['upload_id']}"
    for index in range(0, max(len(content), 1), start["chunk_bytes"]):
        status, answer = post(f"{base}/{index // start['chunk_bytes']}", content[index:index + start["chunk_bytes"]])
        assert status == 200, answer
    fields = {"architecture": "mlp-w4", "num_classes": 10, **fields, "filename": filename, "kind": kind}
    return post(base + "/finish", json.dumps(fields).encode(), "application/json")


def refused(server, content, filename, *expected, **fields):
    status, answer = upload(server, content, filename, **fields)
    assert status == 422 and answer["ok"] is False, answer
    for text in expected:
        assert text in answer["error"], answer["error"]
    return answer["error"]


def mlp_state():
    torch.manual_seed(0)
    return build_architecture("mlp", **family_hparams("mlp", 4, (1, 8, 8), 10)).state_dict()


def safetensors_bytes(state, tmp_path) -> bytes:
    save_file(state, str(tmp_path / "w.safetensors"))
    return (tmp_path / "w.safetensors").read_bytes()


def leftovers(server):
    """Files the server kept, relative to its directory (test logs aside)."""
    return sorted(str(p.relative_to(server.directory)) for p in server.directory.rglob("*")
                  if p.is_file() and p.suffix != ".log")


class Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_that_runs_code_is_refused_and_never_runs(server, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"fc1.weight": torch.zeros(1), "payload": Marker(marker)}, tmp_path / "evil.pt")
    refused(server, (tmp_path / "evil.pt").read_bytes(), "evil.pt", "other than tensors", "Accepted formats")
    refused(server, pickle.dumps(Marker(marker)), "evil.pth", "Accepted formats")
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still loadable
def test_code_formats_are_refused_with_the_accepted_formats(server, tmp_path):
    model = build_architecture("mlp", **family_hparams("mlp", 4, (1, 8, 8), 10))
    torch.jit.save(torch.jit.script(model), str(tmp_path / "script.pt"))
    torch.save(model, tmp_path / "module.pt")
    cases = {"script.pt": "TorchScript", "module.pt": "whole pickled module",
             "weights.pkl": "format '.pkl' of 'weights.pkl' is not accepted"}
    for name, reason in cases.items():
        content = (tmp_path / name).read_bytes() if (tmp_path / name).exists() else pickle.dumps(mlp_state())
        refused(server, content, name, reason, "Accepted formats: .safetensors, or .pt/.pth")


def test_malformed_safetensors_are_refused_before_anything_is_allocated(server, tmp_path):
    good = safetensors_bytes(mlp_state(), tmp_path)
    (length,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + length])
    header["fc1.weight"]["data_offsets"][1] += 2**40
    header["fc1.weight"]["shape"] = [2**38, 1]
    raw = json.dumps(header).encode()
    past_end = struct.pack("<Q", len(raw)) + raw + good[8 + length:]
    cases = [
        (struct.pack("<Q", 2**63) + good[8:], "header length 9223372036854775808 is larger than the file"),
        (struct.pack("<Q", length) + b"{" * length + good[8 + length:], "header is not valid JSON"),
        (past_end, "'fc1.weight' has data_offsets"),
    ]
    for content, reason in cases:
        refused(server, content, "w.safetensors", reason)
    assert urllib.request.urlopen(server.url + "/health").status == 200


def test_broken_weights_are_refused_naming_the_tensor(server, tmp_path):
    nan = mlp_state()
    nan["fc2.weight"][0, 0] = float("nan")
    nan["out.bias"][1] = float("inf")
    refused(server, safetensors_bytes(nan, tmp_path), "nan.safetensors", "NaN or inf values in:", "fc2.weight",
            "out.bias")
    torch.save(mlp_state(), tmp_path / "w.pt")
    refused(server, (tmp_path / "w.pt").read_bytes(), "w.pt", "fc1.weight (expected (8, 64), got (4, 64))",
            architecture="mlp-w8")
    refused(server, (tmp_path / "w.pt").read_bytes(), "w.pt", "out.weight (expected (7, 4), got (10, 4))",
            num_classes=7)


def test_an_upload_over_the_cap_gets_413_and_leaves_nothing(server):
    before = leftovers(server)
    status, start = post(server.url + "/upload/start")
    base = f"{server.url}/upload/{start['upload_id']}"
    assert post(base + "/0", bytes(CAP - 10))[0] == 200
    status, answer = post(base + "/1", bytes(20))
    assert status == 413 and "limit" in answer["error"]
    assert leftovers(server) == before
    assert post(base + "/2", bytes(1))[0] == 404
    assert post(base + "/finish", b"{}", "application/json")[0] == 404


@pytest.mark.parametrize("filename, name", [
    ("../../x.safetensors", "x"), ("..", None), ("", None), ("модель.safetensors", "модель"),
    ("/tmp/abs.safetensors", "abs"),
])
def test_hostile_file_names_are_stored_under_content_hashes(server, tmp_path, filename, name):
    content = safetensors_bytes(mlp_state(), tmp_path)
    status, answer = upload(server, content, filename)
    if name is None:
        assert status == 422 and "Accepted formats" in answer["error"]
    else:
        assert status == 200 and answer["model"].startswith(name), answer
        assert "stored" not in answer  # no server path goes back to the client
        digest = hashlib.sha256(content).hexdigest()
        assert (server.directory / "uploads" / "checkpoints" / f"{digest}.safetensors").is_file()
    for path in leftovers(server):
        assert path.startswith(("cache/", "uploads/checkpoints/")), path
        assert not path.startswith("uploads/") or len(os.path.basename(path).split(".")[0]) == 64, path
    assert not (server.directory.parent / "x.safetensors").exists() and not (tmp_path / "abs.safetensors").exists()


def test_a_stimulus_zip_with_an_escaping_member_is_refused(server, tmp_path):
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        archive.writestr("cats/1.png", b"")
        archive.writestr("../../escaped.png", b"")
    refused(server, (tmp_path / "set.zip").read_bytes(), "set.zip", "outside the archive", kind="stimuli")
    assert not any(server.directory.parent.rglob("escaped.png"))
