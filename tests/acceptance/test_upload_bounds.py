"""Uploads through the real routes of the WSGI app (``create_app().server``), sent in chunks as
assets/upload.js sends them: unfinished uploads are bounded per client and in total and expire
after an hour without progress; every folder the app makes for its data is 0700 (its files
0600) whatever the umask; refusals name the user's file and its problem in plain sizes."""
import io
import json
import os
import stat
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from compute.settings import get_settings

EXPIRY = "an upload without progress for 60 minutes is removed"
TOTAL = "(REPSCOPE_PARTIAL_UPLOAD_BYTES); try again when other uploads have finished, or within 60 minutes " \
        "when abandoned ones expire"


@pytest.fixture
def app(cache_dir, zoo_dir, monkeypatch):
    monkeypatch.delenv("REPSCOPE_UPLOAD_DIR", raising=False)
    from dashboard.app import create_app

    return create_app().server


class Browser:
    """One client (its remote address) speaking upload.js's protocol to the app."""

    def __init__(self, server, address="127.0.0.1"):
        self.client = server.test_client()
        self.environ = {"REMOTE_ADDR": address}

    def post(self, path, data=b"", content_type="application/octet-stream"):
        answer = self.client.post(f"/upload/{path}", data=data, content_type=content_type,
                                  environ_base=self.environ)
        return answer.status_code, answer.get_json()

    def start(self):
        return self.post("start")

    def started(self) -> str:
        status, answer = self.start()
        assert status == 200 and answer["ok"], answer
        return answer["upload_id"]

    def chunk(self, upload_id, index, data):
        return self.post(f"{upload_id}/{index}", data)

    def finish(self, upload_id, **fields):
        return self.post(f"{upload_id}/finish", json.dumps(fields).encode(), "application/json")

    def upload(self, content: bytes, filename: str, kind: str, **fields):
        """The whole file in chunks of the size the start answer gives; the finish answer."""
        status, start = self.start()
        assert status == 200, start
        size = start["chunk_bytes"]
        for index in range(0, max(len(content), 1), size):
            status, answer = self.chunk(start["upload_id"], index // size, content[index:index + size])
            assert status == 200, answer
        return self.finish(start["upload_id"], filename=filename, kind=kind, **fields)


def partial_files():
    return sorted(p.name for p in (get_settings().upload_dir / "tmp").iterdir())


def test_a_client_may_keep_only_so_many_unfinished_uploads(app, monkeypatch):
    monkeypatch.setenv("REPSCOPE_PARTIAL_UPLOADS_PER_CLIENT", "2")
    one, other = Browser(app), Browser(app, "127.0.0.2")
    first, second = one.started(), one.started()
    assert one.chunk(first, 0, bytes(100))[0] == 200
    status, answer = one.start()
    assert status == 429 and answer == {"ok": False, "error": (
        "you have 2 unfinished uploads, the most one client may have (REPSCOPE_PARTIAL_UPLOADS_PER_CLIENT=2); "
        f"finish one, or wait: {EXPIRY}")}
    assert len(partial_files()) == 4  # the refused start kept nothing
    other.started()  # another client is not held back
    assert one.finish(second, filename="w.txt", kind="checkpoint")[0] == 422  # finished (refused): gone
    one.started()


def test_unfinished_uploads_together_are_bounded_in_bytes(app, monkeypatch):
    monkeypatch.setenv("REPSCOPE_PARTIAL_UPLOAD_BYTES", "1000")
    one, two, three = Browser(app), Browser(app, "127.0.0.2"), Browser(app, "127.0.0.3")
    first = one.started()
    assert one.chunk(first, 0, bytes(600)) == (200, {"ok": True, "received": 600})
    second = two.started()
    status, answer = two.chunk(second, 0, bytes(600))
    assert status == 507 and answer["error"] == (
        f"the server holds 600 bytes of unfinished uploads, and takes at most 1000 bytes {TOTAL}; "
        "this upload was removed")
    assert two.chunk(second, 0, bytes(1))[0] == 404
    assert one.chunk(first, 1, bytes(400)) == (200, {"ok": True, "received": 1000})
    status, answer = three.start()
    assert status == 507 and answer["error"] == (
        f"the server holds 1000 bytes of unfinished uploads, and takes at most 1000 bytes {TOTAL}")


def test_an_upload_without_progress_for_an_hour_is_swept_by_the_next_start(app, monkeypatch):
    monkeypatch.setenv("REPSCOPE_PARTIAL_UPLOADS_PER_CLIENT", "2")
    browser = Browser(app)
    stale, recent = browser.started(), browser.started()
    for upload_id in (stale, recent):
        assert browser.chunk(upload_id, 0, bytes(10))[0] == 200
    tmp = get_settings().upload_dir / "tmp"
    for upload_id, age in ((stale, 3601), (recent, 3500)):
        for suffix in (".part", ".json"):
            then = time.time() - age
            os.utime(tmp / f"{upload_id}{suffix}", (then, then))
    browser.started()  # the stale one no longer counts against the client's two
    assert not (tmp / f"{stale}.part").exists() and not (tmp / f"{stale}.json").exists()
    assert browser.chunk(stale, 1, bytes(10))[0] == 404
    assert browser.chunk(recent, 1, bytes(10)) == (200, {"ok": True, "received": 20})


def png(color=0) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_every_folder_the_app_makes_is_private_whatever_the_umask(app, cache_dir, zoo_dir):
    from compute.engine import artifacts
    from compute.sources.models import list_models
    from compute.sources.stimuli import get_stimulus_set
    from dashboard import services

    previous = os.umask(0o022)
    try:
        browser = Browser(app)
        weights = (zoo_dir / "digits" / "mlp-w4-s0-e25.safetensors").read_bytes()
        status, answer = browser.upload(weights, "mine.safetensors", "checkpoint", architecture="mlp-w4",
                                        num_classes=10)
        assert status == 200, answer
        stimuli = zipped({f"{c}/{i}.png": png(60 * i) for c in ("cat", "dog") for i in range(3)})
        assert browser.upload(stimuli, "set.zip", "stimuli")[0] == 200
        n = len(get_stimulus_set("digits"))
        reference = npy(np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float))
        assert browser.upload(reference, "brain.npy", "reference", stimulus_set="digits")[0] == 200
        browser.started()  # a partial upload stays
        services.backend.cache_clear()
        assert app.test_client().get("/health").status_code == 200
        backend = services.backend()
        try:
            model = next(m for m in list_models("digits") if m.name == "mine")
            backend.compute(artifacts.rdm_spec(model.key, get_stimulus_set("digits")), timeout=300)
        finally:
            backend.close()
            services.backend.cache_clear()
    finally:
        os.umask(previous)
    folders = [cache_dir, *(p for p in cache_dir.rglob("*") if p.is_dir())]
    names = {str(p.relative_to(cache_dir)) for p in folders}
    assert {".", "artifacts", "jobs", "models", "models/weights", "uploads", "uploads/tmp", "uploads/checkpoints",
            "uploads/stimuli", "uploads/references"} <= names, names
    assert any(name.startswith("artifacts/rdm/") for name in names), names
    loose = {str(p.relative_to(cache_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders
             if stat.S_IMODE(p.stat().st_mode) != 0o700}
    assert loose == {}
    user_files = [p for top in ("uploads", "models", "artifacts") for p in (cache_dir / top).rglob("*") if p.is_file()]
    assert len(user_files) > 10
    readable = {str(p.relative_to(cache_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in user_files
                if stat.S_IMODE(p.stat().st_mode) != 0o600}
    assert readable == {}


def test_a_truncated_npy_is_called_truncated(app):
    whole = npy(np.zeros((4, 4)))
    assert len(whole) == 256
    status, answer = Browser(app).upload(whole[:200], "brain.npy", "reference", stimulus_set="digits")
    assert status == 422 and answer["error"] == (
        "the .npy file is truncated: its header announces a (4, 4) float64 array, which needs 256 bytes, but "
        "the file has 200 bytes; upload the whole file")
    status, answer = Browser(app).upload(whole[:40], "brain.npy", "reference", stimulus_set="digits")
    assert status == 422 and answer["error"] == (
        "not a valid .npy file: its header is missing, truncated or not numpy's; save the array with np.save")


def test_checkpoint_refusals_name_the_users_file(app):
    browser = Browser(app)
    status, answer = browser.upload(b"abc", "my weights.safetensors", "checkpoint", architecture="mlp-w4",
                                    num_classes=10)
    assert status == 422 and answer["error"] == "my weights.safetensors: too short to be a safetensors file (3 bytes)"
    status, answer = browser.upload(b"not a pickle", "dir/mine.pt", "checkpoint", architecture="mlp-w4",
                                    num_classes=10)
    assert status == 422 and answer["error"] == (
        "mine.pt: is not a readable torch checkpoint (not a pickle of tensors). Accepted formats: .safetensors, "
        "or .pt/.pth holding a state_dict saved with torch.save(model.state_dict(), path)")


def test_a_huge_num_classes_is_refused_before_anything_is_built(app, zoo_dir):
    weights = (zoo_dir / "digits" / "mlp-w4-s0-e25.safetensors").read_bytes()
    status, answer = Browser(app).upload(weights, "w.safetensors", "checkpoint", architecture="mlp-w4",
                                         num_classes=10**9)
    assert status == 422 and answer["error"] == (
        "num_classes must be at most 100,000 (the width of the model's last layer), got 1,000,000,000")


def test_an_undecodable_image_is_named_as_in_the_users_zip(app):
    members = {"set/cat/1.png": png(), "set/cat/2.png": png(9), "set/dog/1.png": png(), "set/dog/2.png": b"GIF89a"}
    status, answer = Browser(app).upload(zipped(members), "set.zip", "stimuli")
    assert status == 422 and answer["error"] == (
        "the zip holds 1 unreadable image file: 'set/dog/2.png' (UnidentifiedImageError); every file in a class "
        "folder must be an image")
    status, answer = Browser(app).upload(zipped({"set/cat/1.png": png(), "set/cat/2.png": png(9)}), "set.zip",
                                         "stimuli")
    assert status == 422 and answer["error"] == "the zip holds one class folder ('cat'); a stimulus set needs at least two"


def test_a_memory_budget_under_a_mebibyte_is_shown_in_kibibytes(cache_dir, zoo_dir, monkeypatch):
    from compute.engine.artifacts import Spec
    from compute.engine.jobs import make_backend
    from compute.engine.limits import TooLarge

    monkeypatch.setenv("REPSCOPE_MEMORY_BUDGET_BYTES", "300000")
    backend = make_backend()
    try:
        stored = Spec("activations", {"model": "m", "stimuli": "s", "layer": "l", "pooling": "none"})
        backend.store.put(stored.kind, stored.key, np.zeros((500, 4), dtype=np.float32))
        with pytest.raises(TooLarge) as refused:
            backend.submit(Spec("rdm", {"method": "euclidean"}, (stored,)))
    finally:
        backend.close()
    assert "over the budget of 293 KiB (REPSCOPE_MEMORY_BUDGET_BYTES)" in str(refused.value), refused.value
