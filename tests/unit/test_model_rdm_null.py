"""The model RDM's permutation null (issue 18): every entry's null from one gather and one GEMM a
permutation, equal to compute.permutation_test on each pair with the same permutations; the
bounded null artifact; the Model RDM page's rings and calibrated values and the layer curves'
chance bands; their show-code snippets reproduce the stored arrays."""
import numpy as np
import pytest
from scipy.spatial.distance import pdist

import compute
from compute.engine import artifacts
from compute.engine.kinds import KINDS
from compute.engine.recipes import MODEL_NULL_FIELDS
from compute.measures.registry import NULL_COMPARE_METHODS
from compute.measures.summaries import mean_dissimilarity
from tests.unit.test_kinds import STIMULI, A, B, C


def _rdms(n=11, seed=0):
    """Four RDMs over n stimuli: two noisy versions of one geometry, a stranger, and noise."""
    rng = np.random.default_rng(seed)
    base = pdist(rng.standard_normal((n, 4)))
    return np.stack([base + 0.2 * rng.random(len(base)), 2 * base + 0.1 * rng.random(len(base)),
                     pdist(rng.standard_normal((n, 3))), rng.random(len(base))])


@pytest.mark.parametrize("method", NULL_COMPARE_METHODS)
def test_each_entrys_null_is_permutation_test_of_its_pair(method):
    rdms = _rdms()
    result = compute.model_rdm_null(rdms, method, n_perm=40, seed=5, dtype=np.float64)
    np.testing.assert_allclose(result.values, compute.model_rdm(rdms, method, dtype=np.float64), atol=1e-12)
    for t, (i, j) in enumerate(zip(*np.triu_indices(4, 1))):
        single = compute.permutation_test(rdms[i], rdms[j], method, n_perm=40, seed=5)
        np.testing.assert_allclose(result.null[t], single.null, rtol=0, atol=1e-9)
        for name, value in (("p", single.p_value), ("z", single.z), ("calibrated", single.calibrated)):
            assert getattr(result, name)[i, j] == getattr(result, name)[j, i] == pytest.approx(value, abs=1e-9)
    assert np.isnan(result.p.diagonal()).all()
    dissimilar = result.null if method == "euclidean" else 1 - result.null
    square = np.zeros((40, 4, 4))
    rows, cols = np.triu_indices(4, 1)
    square[:, rows, cols] = square[:, cols, rows] = dissimilar.T
    np.testing.assert_allclose(result.mean_null, np.stack([mean_dissimilarity(s) for s in square], axis=1), atol=1e-12)


def test_an_rdm_with_its_own_copy_calibrates_to_one_and_unbatched_methods_are_refused():
    rdms = _rdms()
    result = compute.model_rdm_null(np.stack([rdms[0], rdms[0], rdms[2]]), "pearson", n_perm=30)
    assert result.calibrated[0, 1] == pytest.approx(1.0) and result.p[0, 1] == pytest.approx(1 / 31)
    for method in ("kendall_tau_a", "manhattan"):
        with pytest.raises(ValueError, match="batched only for spearman, pearson"):
            compute.model_rdm_null(rdms, method, n_perm=10)
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        compute.model_rdm_null(rdms, "spearman", n_perm=0)


# --- the null artifact --------------------------------------------------------------------------------

_MATRIX = artifacts.model_rdm_spec([A, B, C], STIMULI)


@pytest.mark.parametrize("null, method", [(10**9, "spearman"), (0, "spearman"), (50, "spearman"), ("100", "spearman"),
                                          (True, "spearman"), (100, "kendall_tau_a")])
def test_out_of_range_nulls_are_refused(null, method):
    matrix = artifacts.model_rdm_spec([A, B, C], STIMULI, compare_method=method)
    with pytest.raises(ValueError, match="null must be one of|needs 100 or 1000"):
        artifacts.model_rdm_null_spec(matrix, null)


def test_the_recipe_refuses_a_crafted_spec_and_stores_the_null_of_compute():
    rdms = [r.astype(np.float32) for r in _rdms()]
    crafted = artifacts.Spec("model_rdm_null", {"method": "spearman", "null": 10**9, "seed": 0}, _MATRIX.inputs)
    with pytest.raises(ValueError, match="null must be one of"):
        KINDS["model_rdm_null"].recipe(crafted, rdms, artifacts.Context())
    spec = artifacts.model_rdm_null_spec(artifacts.model_rdm_spec([A, B, C, A + "x"], STIMULI), 100, seed=2)
    stack, meta = KINDS["model_rdm_null"].recipe(spec, rdms, artifacts.Context())
    assert stack.shape == (len(MODEL_NULL_FIELDS), 4, 4) and meta["fields"] == list(MODEL_NULL_FIELDS)
    result = compute.model_rdm_null(np.stack(rdms), "spearman", n_perm=100, seed=2)
    fields = dict(zip(MODEL_NULL_FIELDS, stack))
    np.testing.assert_array_equal(fields["p"], result.p)
    upper = np.triu_indices(4, 1)
    np.testing.assert_array_equal(fields["q"][upper], compute.fdr_bh(result.p[upper]))
    np.testing.assert_array_equal(np.diag(fields["chance_high"]), np.quantile(result.mean_null, 0.975, axis=1))
    shapes = [(len(rdms[0]),)] * 4
    plain = KINDS["model_rdm"].estimate(_MATRIX, shapes)
    hundred, thousand = (KINDS["model_rdm_null"].estimate(artifacts.model_rdm_null_spec(_MATRIX, n), shapes)
                         for n in (100, 1000))
    assert thousand.seconds > 5 * hundred.seconds > 5 * plain.seconds and "1,000 permutations" in thousand.what


# --- the pages -------------------------------------------------------------------------------------------

def _stack(values, q, calibrated, low=(0.1, 0.2), high=(0.5, 0.6)):
    values, q, calibrated = (np.asarray(x, float) for x in (values, q, calibrated))
    return np.stack([values, q, q, np.zeros_like(q), calibrated, np.diag(low), np.diag(high)])


MODELS = ("mlp-w4-s0-e25", "mlp-w8-s0-e25", "mlp-w8-s1-e25")


def test_the_plan_bounds_the_null_and_the_heatmap_rings_entries_above_chance(zoo_dir, cache_dir):
    from types import SimpleNamespace

    from dashboard.selection import Selection
    from dashboard.views import model_space as view

    selection = Selection(names=MODELS)
    specs, targets, _, search = view.plan(selection, "correlation", "spearman", "smacof", "accuracy", "100", "calibrated")
    assert targets == ["stress", "null"] and specs["null"].params == {"method": "spearman", "null": 100, "seed": 0}
    assert "null=100" in search and "show=calibrated" in search
    for crafted in ((str(10**9), "raw"), ("-1", "raw"), ("100", "z")):
        with pytest.raises(ValueError, match="must be one of"):
            view.plan(selection, "correlation", "spearman", "smacof", "accuracy", *crafted)
    with pytest.raises(ValueError, match="the null is offered for"):
        view.plan(selection, "correlation", "tau_b", "smacof", "accuracy", "100")
    models = [SimpleNamespace(name=n, accuracy=0.9, tags={}, architecture="x") for n in ("m", "n")]
    null = _stack([[0, 0.3], [0.3, 0]], [[np.nan, 0.01], [0.01, np.nan]], [[np.nan, 0.7], [0.7, np.nan]])
    state = {"compare": "spearman", "mds": "smacof", "null": "100", "show": "calibrated"}
    heatmap, _ = view.figures(models, null[0], np.zeros((2, 2)), state, null=null)
    np.testing.assert_array_equal(heatmap.data[0].z, null[4])
    assert heatmap.data[0].colorbar.title.text.startswith("calibrated Spearman ρ<br>(0 = chance")
    assert list(zip(heatmap.data[1].y, heatmap.data[1].x)) == [("m", "n"), ("n", "m")]
    assert "BH-FDR over the 1 entries" in heatmap.data[1].name
    raw, _ = view.figures(models, null[0], np.zeros((2, 2)), {**state, "show": "raw"}, null=null)
    assert raw.data[0].colorbar.title.text.startswith("1 − Spearman ρ<br>(dissimilarity")
    assert raw.layout.xaxis.title.text == "model (least to most accurate; hover for names)"  # the default sort


def test_layer_curves_draw_each_depths_chance_band_under_its_curve():
    from types import SimpleNamespace

    from dashboard.views import curves as view

    models = [SimpleNamespace(name=n, accuracy=a) for n, a in (("m", 0.9), ("n", 0.5))]
    null = _stack(np.zeros((2, 2)), np.ones((2, 2)), np.zeros((2, 2)), low=(0.1, 0.2), high=(0.5, 0.6))
    figure = view.figure({"depth1": models}, {"depth1": np.array([[0, 0.3], [0.3, 0]]), "null1": null},
                         {"rdm": "euclidean", "compare": "spearman"})
    band, points, _ = figure.data
    assert band.name == f"depth 1: {view.BAND_NAME}" and points.name == "depth 1"
    # A bar per model at its accuracy, from its low to its high (by accuracy: n, then m).
    assert list(band.x) == [0.5, 0.5, None, 0.9, 0.9, None] and list(band.y) == [0.2, 0.6, None, 0.1, 0.5, None]
    assert band.legendgroup == points.legendgroup == "depth 1"


def test_show_code_reproduces_the_null_and_the_chance_bands(zoo_dir, tmp_path):
    from compute.engine.artifacts import ensure
    from compute.engine.store import ArtifactStore
    from dashboard.selection import Selection
    from dashboard.view_parts import model_null
    from dashboard.views import curves, model_space

    selection = Selection(names=MODELS)
    store = ArtifactStore(tmp_path / "artifacts")
    specs, _, context, _ = model_space.plan(selection, "correlation", "spearman", "smacof", "accuracy", "100",
                                            "calibrated")
    ensure(specs["null"], store)
    namespace = {}
    exec(compile(model_space.code({**context, "selection": selection.url_params()}), "<snippet>", "exec"), namespace)
    stored = store.get("model_rdm_null", specs["null"].key)[0]
    np.testing.assert_allclose(namespace["shown"], model_null.fields(stored)["calibrated"], atol=1e-6)
    np.testing.assert_array_equal(namespace["ringed"], model_null.ringed(stored))
    specs, _, context, _ = curves.plan(selection, "euclidean", "spearman", "100")
    exec(compile(curves.code({**context, "selection": selection.url_params()}), "<snippet>", "exec"), namespace)
    for depth, band in namespace["bands"].items():
        null = specs[depth.replace("depth", "null")]
        ensure(null, store)
        np.testing.assert_allclose(band, model_null.chance_band(store.get("model_rdm_null", null.key)[0]), atol=1e-6)
    # The figure's points and trend lines are the snippet's curves and fitted trends.
    for spec in specs.values():
        ensure(spec, store)
    (figure,) = curves.draw({**context, "selection": selection.url_params()},
                            {name: store.get(spec.kind, spec.key)[0] for name, spec in specs.items()})
    for depth, values in namespace["curves"].items():
        label = f"depth {depth.removeprefix('depth')}"
        points = next(t for t in figure.data if t.name == label)
        line = next(t for t in figure.data if t.name.startswith(f"{label}: linear fit"))  # 3 models
        names = [name for name, _ in namespace["depths"][depth]]
        np.testing.assert_allclose(points.y, [dict(zip(names, values))[name] for name in points.text], atol=1e-6)
        np.testing.assert_allclose(line.y, np.polyval(namespace["trends"][depth], line.x), atol=1e-6)
