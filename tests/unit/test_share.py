"""The share bar's pure parts: the model-space code snippet and the data archive."""
import io
import json
import zipfile

import numpy as np

from dashboard import services, share
from dashboard.views import model_space


def test_model_space_snippet_is_valid_python_on_the_public_api(monkeypatch):
    monkeypatch.setattr(services, "models", lambda: [])
    context = {"view": {"rdm": "euclidean", "compare": "kendall_tau_a", "mds": "classical"},
               "models": ["cnn-w4-s0-e25", "mlp-w8-s1-e25"]}
    snippet = model_space.code(context)
    compile(snippet, "<model-space snippet>", "exec")
    for text in ("compute.rdm(", "compute.model_rdm(", "compute.mds(", "'euclidean'", "'kendall_tau_a'",
                 "'classical'", "'cnn-w4-s0-e25'", "'mlp-w8-s1-e25'"):
        assert text in snippet


def test_archive_holds_each_array_as_npy_and_the_view_state():
    arrays = {"matrix": np.arange(9, dtype=np.float32).reshape(3, 3), "mds": np.ones((3, 2))}
    job = {"context": {"view": {"compare": "pearson"}}, "targets": ["mds"]}
    with zipfile.ZipFile(io.BytesIO(share.archive(job, arrays))) as archive:
        assert sorted(archive.namelist()) == ["matrix.npy", "mds.npy", "view.json"]
        for name, array in arrays.items():
            loaded = np.load(io.BytesIO(archive.read(f"{name}.npy")), allow_pickle=False)
            np.testing.assert_array_equal(loaded, array)
            assert loaded.dtype == array.dtype
        state = json.loads(archive.read("view.json"))
    assert state["context"] == job["context"] and state["arrays"] == ["matrix", "mds"]


def test_a_click_on_a_model_point_links_to_its_input_rdm(monkeypatch):
    monkeypatch.setattr(model_space.dash, "get_relative_path", lambda path: "/app" + path)
    click = {"points": [{"curveNumber": 0, "pointNumber": 2, "customdata": "cnn-w4-s0-e25"}]}
    assert model_space.model_link(click) == ("/app/rdm", "?model=cnn-w4-s0-e25")
    assert model_space.model_link(None) == (model_space.no_update, model_space.no_update)
    assert model_space.model_link({"points": []}) == (model_space.no_update, model_space.no_update)
