"""Stimulus sets are chosen by name from the server's registry only (issue 15, item 1; item 10's
bad link values): every way a client could name a folder (a link, the selection store of a
callback, an upload's finish request, a job spec) is refused with one message and reads nothing
outside the operator's ``REPSCOPE_DATA_ROOTS``; a set under a root works by name end to end.

What the server reads is watched with an audit hook (``open`` and ``os.listdir`` events of this
process, where the app runs through its Flask test client, as the WSGI server would run it)."""
from __future__ import annotations

import json
import sys
from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image

from compute.engine import artifacts
from compute.engine.jobs import EmbeddedBackend
from compute.engine.recipes import Context, activations
from compute.sources.stimulus_names import UNKNOWN_MESSAGE

_WATCHED: list[str] = []  # folders no event may touch while a test watches them
_TOUCHED: list[str] = []


def _audit(event, args):
    if _WATCHED and event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
        path = args[0].decode(errors="replace") if isinstance(args[0], bytes) else args[0]
        if any(path.startswith(folder) for folder in _WATCHED):
            _TOUCHED.append(f"{event} {path}")


sys.addaudithook(_audit)


def _image_set(folder, classes=("circle", "square"), per_class=3):
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(folder / name / f"{i}.png")
    return folder


@pytest.fixture
def disk(tmp_path, monkeypatch, cache_dir, zoo_dir):
    """A data root ``lab`` with the set ``shapes``, and a folder of PNGs outside it (watched)."""
    from dashboard import services

    root = tmp_path / "lab"
    _image_set(root / "shapes")
    outside = _image_set(tmp_path / "private" / "secret-set", ("secret-class-a", "secret-class-b"))
    (root / "escape").symlink_to(outside, target_is_directory=True)  # a link out of the root
    monkeypatch.setenv("REPSCOPE_DATA_ROOTS", str(root))
    services.stimuli.cache_clear()
    _WATCHED[:] = [str(outside.parent)]
    _TOUCHED.clear()
    yield {"root": root, "outside": outside, "tmp": tmp_path}
    _WATCHED.clear()
    services.stimuli.cache_clear()


def attacks(disk) -> list[str]:
    """Names a client could try: paths (existing outside the roots, missing, inside the roots),
    traversal, a link out of a root, options naming a path, and made-up names."""
    outside, root = disk["outside"], disk["root"]
    return [f"folder:{outside}", "folder:/etc", f"folder:{disk['tmp'] / 'missing'}", f"folder:{root / 'shapes'}",
            "folder:lab/../private/secret-set", "folder:lab/escape", "folder:lab/missing", "folder:private/secret-set",
            f"mnist?root={outside}", "mnist?download=1", "digits?root=/etc", "folder:lab/shapes?root=/etc",
            f"upload:{'0' * 64}", "upload:../../private", str(outside), "../private", "no-such-set", "", 7, None]


@pytest.fixture(scope="module")
def app(zoo_dir):
    """The app once per process (Dash hands its callbacks to the first app made); it reads the
    settings, data roots included, at each request."""
    from dashboard.app import create_app

    return create_app()


@pytest.fixture
def client(app, disk):
    return app.server.test_client()


def update(client, outputs, inputs, state=(), changed=None):
    """POST a Dash callback body as the browser sends it; the response's JSON."""
    outs = [{"id": i, "property": p} for i, p in outputs]
    names = [f"{i}.{p}" for i, p in outputs]
    body = {"output": ".." + "...".join(names) + ".." if len(outs) > 1 else names[0],
            "outputs": outs if len(outs) > 1 else outs[0],
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
            "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
            "changedPropIds": changed or [f"{inputs[0][0]}.{inputs[0][1]}"]}
    answer = client.post("/_dash-update-component", json=body)
    text = answer.get_data(as_text=True)
    return answer.status_code, json.dumps(json.loads(text)) if answer.status_code == 200 else text  # "/" unescaped


def thumbnail(client, stimulus_set):
    selection = {"set": stimulus_set, "where": "", "models": "", "group": "family", "pooling": "none"}
    return update(client, [("input-rdm-thumbnail", "src"), ("input-rdm-thumbnail-caption", "children")],
                  [("input-rdm-mds", "hoverData", {"points": [{"customdata": 0}]})],
                  [("selection", "data", selection)])


def _secret_free(text: str, disk) -> None:
    assert "secret" not in text and str(disk["tmp"]) not in text, text[:2000]


def test_the_thumbnail_callback_refuses_every_set_outside_the_registry_with_one_message(client, disk):
    for name in attacks(disk):
        status, text = thumbnail(client, name)
        assert status == 200, (name, text[:500])
        caption = json.loads(text)["response"]["input-rdm-thumbnail-caption"]["children"]
        assert caption == UNKNOWN_MESSAGE, (name, caption)
        _secret_free(text, disk)
    status, text = thumbnail(client, "folder:lab/shapes")  # a set under a data root, by name
    response = json.loads(text)["response"]
    assert response["input-rdm-thumbnail"]["src"].startswith("data:image/png;base64,")
    assert response["input-rdm-thumbnail-caption"]["children"] == "circle/0.png (class circle)"
    assert _TOUCHED == []


def test_the_selection_lists_the_roots_sets_and_ignores_any_other_from_a_link_or_the_panel(client, disk):
    layout = json.dumps(client.get("/_dash-layout").get_json())  # "/" unescaped
    assert '"folder:lab/shapes"' in layout and "escape" not in layout
    _secret_free(layout, disk)
    for name in attacks(disk):
        if not isinstance(name, str):
            continue
        controls = [(f"selection-{c}", "value", v) for c, v in
                    (("set", name), ("where", []), ("models", []), ("group", "family"), ("pooling", "none"))]
        status, text = update(client, [("selection", "data"), ("selection-models", "options"),
                                       ("selection-where", "options"), ("selection-summary", "children"),
                                       ("selection-set", "options")],
                              [*controls, ("registry-changed", "data", None)], [("selection", "data", None)],
                              ["selection-set.value"])
        assert status == 200 and json.loads(text)["response"]["selection"]["data"]["set"] == "digits", (name, text[:300])
        _secret_free(text, disk)
        if not name:  # "?set=" is no value at all
            continue
        status, text = update(client, [("page", "children"), ("link-note", "children")],
                              [("url", "pathname", "/rdm"), ("selection", "data", None)],
                              [("url", "search", "?" + urlencode({"set": name}))])
        assert status == 200, (name, text[:500])
        assert "no such stimulus set" in text and "input-rdm-heatmap" in text, (name, text[:500])
        assert "secret-class" not in text
    assert _TOUCHED == []


def test_an_upload_naming_a_set_outside_the_registry_is_refused_before_any_file_is_read(client, disk):
    messages = set()
    for name in filter(None, attacks(disk)):  # (none given: the default, digits)
        for kind, fields in (("reference", {"filename": "r.npy"}),
                             ("checkpoint", {"filename": "m.safetensors", "architecture": "mlp", "num_classes": 2})):
            upload = client.post("/upload/start").get_json()["upload_id"]
            assert client.post(f"/upload/{upload}/0", data=b"\x93NUMPY").status_code == 200
            answer = client.post(f"/upload/{upload}/finish", json={"kind": kind, "stimulus_set": name, **fields})
            assert answer.status_code == 422, (name, answer.get_data(as_text=True))
            messages.add(answer.get_json()["error"])
    assert messages == {UNKNOWN_MESSAGE}
    assert _TOUCHED == []


def test_a_job_naming_a_path_fails_before_reading_and_a_root_s_set_computes_by_name(disk, cache_dir, zoo_dir):
    from compute.sources.models import list_models
    from compute.sources.stimuli import get_stimulus_set, stimulus_set_named

    model = list_models("digits")[0]
    stimuli = stimulus_set_named("folder:lab/shapes")
    assert stimuli.name == "folder:lab/shapes" and len(stimuli) == 6
    for name in attacks(disk):
        crafted = artifacts.Spec("activations", {"model": model.key, "stimuli": stimuli.key,
                                                 "layer": "penultimate", "pooling": "none"}, locate={"stimuli": name})
        with pytest.raises(ValueError) as refused:
            activations([crafted], Context())
        assert str(refused.value) == UNKNOWN_MESSAGE
        with pytest.raises(ValueError) as refused:  # the Python API refuses a path in a name too
            get_stimulus_set(name)
        assert str(refused.value) == UNKNOWN_MESSAGE
    assert _TOUCHED == []
    backend = EmbeddedBackend(cache_dir, workers=1)
    try:
        acts = backend.compute(artifacts.activations_spec(model.key, stimuli), timeout=300)
        assert acts.shape[0] == 6
        crafted = artifacts.Spec("activations", {"model": model.key, "stimuli": stimuli.key, "layer": "penultimate",
                                                 "pooling": "avg"}, locate={"stimuli": f"folder:{disk['outside']}"})
        with pytest.raises((ValueError, RuntimeError), match="unknown stimulus set"):
            backend.compute(crafted, timeout=300)
    finally:
        backend.close()
