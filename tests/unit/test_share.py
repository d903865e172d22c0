"""The share bar's pure parts: the model-space code snippet and the data archive."""
import io
import json
import zipfile

import numpy as np
import pytest

from dashboard import share
from dashboard.views import model_space


SNIPPET_MODELS = ("mlp-w8-s0-e25", "cnn-w4-s0-e25", "mlp-w16-s1-e5")
# view -> (control values, the snippet's variable for each array of the job)
SNIPPET_CASES = {
    "model_space": (("euclidean", "kendall_tau_a", "classical"), {"matrix": "matrix", "mds": "coords", "stress": "stress"}),
    "input_rdm": (("cnn-w4-s0-e25", "fc1", "cosine", "classical"), {"mds": "coords", "stress": "stress"}),
    # Layers chosen one by one, and a second measure beside the first: both grids reproduced.
    "layer_grid": (("mlp-w8-s0-e25", "cnn-w4-s0-e25", "rv2", "default", "off", "off", "raw", "participation_ratio",
                    "pwcca", ["out", "fc1"], ["conv1", "bn3"]), {"grid": "grid", "grid2": "grid2"}),
    "confusion": (("cnn-w4-s0-e25", "euclidean"), {"top1": "confusions[1]", "top5": "confusions[5]"}),
    "curves": (("euclidean", "spearman"), {"depth1": "curves['depth1']", "depth3": "curves['depth3']"}),
}


@pytest.mark.parametrize("name", sorted(SNIPPET_CASES))
def test_show_code_reproduces_the_view_s_numbers(name, zoo_dir, tmp_path):
    """Each view's "Show code" snippet, run as a user would, gives the arrays its job stored."""
    import importlib

    from compute.engine.artifacts import ensure
    from compute.engine.store import ArtifactStore
    from compute.measures.summaries import mean_dissimilarity
    from dashboard.selection import Selection

    view = importlib.import_module(f"dashboard.views.{name}")
    values, variables = SNIPPET_CASES[name]
    selection = Selection(names=SNIPPET_MODELS, pooling="avg")
    specs, targets, context, _ = view.plan(selection, *values)
    context = {**context, "selection": selection.url_params()}
    store = ArtifactStore(tmp_path / "artifacts")
    for target in targets:
        ensure(specs[target], store)
    namespace = {}
    exec(compile(view.code(context), f"<{name} snippet>", "exec"), namespace)
    for array_name, expression in variables.items():
        stored = np.asarray(store.get(specs[array_name].kind, specs[array_name].key)[0])
        if name == "curves":
            stored = mean_dissimilarity(stored)
        got = np.asarray(eval(expression, namespace))
        if array_name in ("mds", "coords"):  # an embedding: compare distances (sign conventions aside)
            from scipy.spatial.distance import pdist
            stored, got = pdist(stored), pdist(got)
        np.testing.assert_allclose(got, stored, rtol=1e-4, atol=1e-4, err_msg=f"{name}: {array_name}")


NEW_MEASURES = ("mutual_knn", "jaccard_knn", "cknna", "ridge_r", "pls_r", "shape_alpha", "permutation",
                "dcor", "linear_reg", "cca_rho_top")  # issue 17's


def test_the_layer_grid_snippet_reproduces_each_new_measure_s_grid(zoo_dir, tmp_path):
    """The layer grid's "Show code" for each of issue 17's measures gives its job's grid. The
    snippets differ only in their last line (the measure's): the activations are extracted once."""
    from compute.engine.artifacts import ensure
    from compute.engine.store import ArtifactStore
    from dashboard.selection import Selection
    from dashboard.views import layer_grid

    selection = Selection(names=SNIPPET_MODELS, pooling="avg")
    store = ArtifactStore(tmp_path / "artifacts")
    namespace, start = {}, None
    for measure in NEW_MEASURES:
        specs, _, context, _ = layer_grid.plan(selection, "mlp-w8-s0-e25", "cnn-w4-s0-e25", measure, "default")
        head, last = layer_grid.code({**context, "selection": selection.url_params()}).rstrip("\n").rsplit("\n", 1)
        assert f"measure={measure!r}" in last
        if start is None:
            start = head
            exec(compile(head, "<layer grid snippet>", "exec"), namespace)
        assert head == start
        exec(compile(last, f"<{measure} snippet>", "exec"), namespace)
        ensure(specs["grid"], store)
        stored = store.get(specs["grid"].kind, specs["grid"].key)[0]
        np.testing.assert_allclose(namespace["grid"], stored, rtol=1e-4, atol=1e-4, err_msg=measure)


def test_archive_holds_each_array_as_npy_and_the_view_state():
    arrays = {"matrix": np.arange(9, dtype=np.float32).reshape(3, 3), "mds": np.ones((3, 2))}
    job = {"context": {"view": {"compare": "pearson"}}, "targets": ["mds"]}
    with zipfile.ZipFile(io.BytesIO(share.archive(job, arrays))) as archive:
        assert sorted(archive.namelist()) == ["matrix.csv", "matrix.npy", "mds.csv", "mds.npy", "view.json"]
        for name, array in arrays.items():
            loaded = np.load(io.BytesIO(archive.read(f"{name}.npy")), allow_pickle=False)
            np.testing.assert_array_equal(loaded, array)
            assert loaded.dtype == array.dtype
            text = np.loadtxt(io.BytesIO(archive.read(f"{name}.csv")), delimiter=",", ndmin=2)
            np.testing.assert_array_equal(text, array)
        state = json.loads(archive.read("view.json"))
    assert state["context"] == job["context"] and state["arrays"] == ["matrix", "mds"]


def test_a_click_on_a_model_point_links_to_its_input_rdm(monkeypatch):
    monkeypatch.setattr(model_space.dash, "get_relative_path", lambda path: "/app" + path)
    click = {"points": [{"curveNumber": 0, "pointNumber": 2, "customdata": "cnn-w4-s0-e25"}]}
    assert model_space.model_link(click) == ("/app/rdm", "?model=cnn-w4-s0-e25")
    assert model_space.model_link(None) == (model_space.no_update, model_space.no_update)
    assert model_space.model_link({"points": []}) == (model_space.no_update, model_space.no_update)


def test_show_code_runs_on_uploaded_activations(zoo_dir, cache_dir, tmp_path):
    """The layer grid's snippet over a model registered from a file of activations (issue 16):
    the snippet, as a notebook runs it, gives the grid the job stored."""
    from compute.engine.artifacts import ensure
    from compute.engine.store import ArtifactStore
    from compute.sources.activation_models import register_activations
    from compute.sources.activations import extract
    from compute.sources.models import load_model
    from compute.sources.stimuli import get_stimulus_set
    from dashboard.selection import Selection
    from dashboard.views import layer_grid

    digits = get_stimulus_set("digits")
    layers = ["bn1", "bn2", "bn3"]
    acts = extract(load_model("cnn-w4-s0-e25"), digits.images, layers, pooling="avg")
    register_activations("from-a-file", acts, "digits")
    selection = Selection(names=("from-a-file", "mlp-w8-s0-e25"), pooling="avg")
    specs, targets, context, _ = layer_grid.plan(selection, "from-a-file", "mlp-w8-s0-e25", "cka_linear", "default")
    store = ArtifactStore(tmp_path / "artifacts")
    for target in targets:
        ensure(specs[target], store)
    namespace = {}
    exec(compile(layer_grid.code({**context, "selection": selection.url_params()}), "<snippet>", "exec"), namespace)
    np.testing.assert_allclose(namespace["grid"], store.get("layer_grid", specs["grid"].key)[0], atol=1e-5)
