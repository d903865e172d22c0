"""Activations files through the real chunked upload route of a running app: registered under
their content hash with the form's fields checked by the server, bad files and crafted fields
refused with their reason, nothing unpickled, no server path sent back."""
import json

import h5py
import numpy as np
import pytest

from compute.sources.stimuli import get_stimulus_set
from tests.acceptance.test_uploads import upload


@pytest.fixture(scope="module")
def server(upload_server):
    return upload_server


def npz_bytes(tmp_path, **arrays) -> bytes:
    np.savez(tmp_path / "a.npz", **arrays)
    return (tmp_path / "a.npz").read_bytes()


def registered(server) -> dict:
    path = server.directory / "cache" / "models" / "registry.json"
    return {m["name"]: m for m in json.loads(path.read_text())["models"]} if path.exists() else {}


def test_an_npz_in_any_order_is_registered_with_its_tags(server, tmp_path):
    digits = get_stimulus_set("digits")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(digits))
    content = npz_bytes(tmp_path, V1=rng.normal(size=(3, 500, 4, 2, 2))[:, perm], IT=rng.normal(size=(500, 6))[perm],
                        repeated=np.array(["V1"]), stimulus_ids=np.array(digits.ids)[perm],
                        logits=np.eye(10)[digits.labels][perm])
    status, answer = upload(server, content, "../monkey.npz", kind="activations", stimulus_set="digits",
                            brain=True, series="monkey", step="0")
    assert status == 200 and answer["ok"], answer
    assert (answer["model"], answer["architecture"], answer["accuracy"], answer["layers"]) == (
        "monkey", "activations", 1.0, ["V1", "IT"])
    assert "stored" not in answer and str(server.directory) not in json.dumps(answer)
    info = registered(server)["monkey"]
    assert info["source"] == "activations" and info["stimulus_set"] == "digits"
    assert {k: info["tags"][k] for k in ("kind", "series", "step")} == {"kind": "brain", "series": "monkey", "step": 0}
    assert info["hparams"]["layers"]["V1"] == {"shape": [500, 4, 2, 2], "repeats": 3}
    stored = server.directory / "cache" / "models" / "activations" / f"{info['key']}.safetensors"
    assert stored.is_file() and oct(stored.stat().st_mode & 0o777) == "0o600"
    assert not list((server.directory / "uploads" / "tmp").glob("*.part"))  # the received file is gone


def test_bad_files_and_crafted_fields_are_refused_with_the_reason(server, tmp_path):
    good = npz_bytes(tmp_path, IT=np.random.default_rng(1).normal(size=(500, 6)))
    before = set(registered(server))
    cases = [
        (npz_bytes(tmp_path, IT=np.zeros((90, 3))), "x.npz", {},
         "layer 'IT' has 90 rows, stimulus set 'digits' has 500 stimuli"),
        (npz_bytes(tmp_path, IT=np.zeros((500, 3)), stimulus_ids=np.array(["a"] * 500, dtype=object)), "x.npz", {},
         "holds Python objects"),
        (good, "x.npz", {"brain": "yes"}, "brain must be true or false"),
        (good, "x.npz", {"stimulus_set": "folder:/etc"}, "unknown stimulus set"),
        (good, "x.pkl", {}, "Accepted formats: an .npz, .h5/.hdf5 or .safetensors"),
    ]
    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["IT"] = np.zeros((500, 3))
        f["elsewhere"] = h5py.ExternalLink("/etc/passwd", "/x")
    cases.append(((tmp_path / "link.h5").read_bytes(), "link.h5", {}, "'elsewhere' is an external link"))
    for content, filename, fields, reason in cases:
        status, answer = upload(server, content, filename, kind="activations", **fields)
        assert status == 422 and answer["ok"] is False and reason in answer["error"], (reason, answer)
    assert set(registered(server)) == before
