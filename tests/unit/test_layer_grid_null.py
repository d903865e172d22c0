"""The layer grid's permutation null and dimensionality curves (issues 18 and 17): Benjamini-
Hochberg q-values against scipy; the null grid artifact (bounded parameters, unchanged keys of
grids without a null, its numbers those of compute.layer_grid); the page's pure plan and draw
functions; its show-code snippets reproduce the stored arrays."""
import numpy as np
import pytest
from scipy.stats import false_discovery_control

import compute
from compute.engine import artifacts
from compute.engine.kinds import KINDS
from compute.engine.recipes import GRID_NULL_FIELDS
from compute.measures.stats import fdr_bh
from tests.unit.test_kinds import KEYS, STIMULI, A, B

# --- fdr_bh --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_fdr_bh_is_scipys_benjamini_hochberg_and_keeps_the_shape(seed):
    rng = np.random.default_rng(seed)
    p = rng.random((5, 7)) ** 3
    p[0, :3] = p[1, 1]  # ties
    q = fdr_bh(p)
    assert q.shape == p.shape
    np.testing.assert_allclose(q, false_discovery_control(p.ravel(), method="bh").reshape(p.shape), rtol=1e-14)
    assert np.all(q >= p) and np.all(q <= 1)


def test_fdr_bh_follows_its_definition_and_skips_nan():
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4): p m / rank = 0.04, 0.06, 0.0533, 0.2, then the running min from the top.
    np.testing.assert_allclose(fdr_bh([0.01, 0.04, 0.03, 0.2]), [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    q = fdr_bh([0.01, np.nan, 0.04, 0.03, 0.2])
    assert np.isnan(q[1]) and np.allclose(q[[0, 2, 3, 4]], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fdr_bh([0.5, 1.5])


# --- the null grid artifact ------------------------------------------------------------------------

def _grid(**null):
    return artifacts.layer_grid_spec(A, ["l1", "l2"], B, ["m1"], STIMULI, "cka_linear", **null)


def test_a_grid_without_a_null_keeps_its_key_and_a_null_grid_has_its_own():
    assert _grid().key == _grid(null=0, seed=0).key == KEYS["layer_grid"]
    keys = {_grid(null=100).key, _grid(null=1000).key, _grid(null=100, seed=1).key, KEYS["layer_grid"]}
    assert len(keys) == 4
    assert _grid(null=100).params == {**_grid().params, "null": 100, "seed": 0}


@pytest.mark.parametrize("null", [{"null": 10**9}, {"null": -100}, {"null": 50}, {"null": True}, {"null": "100"},
                                  {"null": 100.0}, {"null": 100, "seed": -1}, {"null": 100, "seed": 2**32},
                                  {"null": 100, "seed": 1.5}, {"seed": -1}])
def test_out_of_range_null_parameters_are_refused(null):
    with pytest.raises(ValueError, match="null must be one of 0, 100, 1000|seed must be an integer"):
        _grid(**null)


def test_the_recipe_refuses_a_crafted_spec_before_computing():
    """A spec that did not come from the builder (say, edited on its way to a worker) runs nothing."""
    crafted = artifacts.Spec("layer_grid", {**_grid().params, "null": 10**9, "seed": 0}, _grid().inputs)
    acts = [np.random.default_rng(i).standard_normal((12, 3)).astype(np.float32) for i in range(3)]
    with pytest.raises(ValueError, match="null must be one of"):
        KINDS["layer_grid"].recipe(crafted, acts, artifacts.Context())


def test_the_null_grid_recipe_stores_compute_s_scores_p_q_z_and_calibrated():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    acts = [X, rng.standard_normal((40, 4)), np.tanh(X[:, :5]) + 0.3 * rng.standard_normal((40, 5))]
    acts = [a.astype(np.float32) for a in acts]
    stack, meta = KINDS["layer_grid"].recipe(_grid(null=100, seed=3), acts, artifacts.Context())
    assert stack.shape == (len(GRID_NULL_FIELDS), 2, 1) and meta["fields"] == list(GRID_NULL_FIELDS)
    result = compute.layer_grid({"l1": acts[0], "l2": acts[1]}, {"m1": acts[2]}, "cka_linear", null=100, null_seed=3)
    fields = dict(zip(GRID_NULL_FIELDS, stack))
    for name in ("values", "p", "z", "calibrated"):
        np.testing.assert_array_equal(fields[name], getattr(result, name))
    np.testing.assert_array_equal(fields["q"], fdr_bh(result.p))
    assert fields["p"][0, 0] == pytest.approx(1 / 101)  # X and a noisy tanh of X: above every permutation


@pytest.mark.parametrize("measure", ["cka_linear", "procrustes"])
def test_the_estimate_counts_the_permutations(measure):
    shapes = [(2_000, 64)] * 3
    estimate = KINDS["layer_grid"].estimate
    spec = {n: artifacts.layer_grid_spec(A, ["l1", "l2"], B, ["m1"], STIMULI, measure, null=n) for n in (0, 100, 1000)}
    plain, hundred, thousand = (estimate(spec[n], shapes) for n in (0, 100, 1000))
    assert plain.shape == (2, 1) and thousand.shape == (5, 2, 1)
    assert thousand.seconds > 5 * hundred.seconds > 5 * plain.seconds
    assert thousand.bytes > hundred.bytes > plain.bytes
    assert "1,000 permutations" in thousand.what and "fewer permutations" in thousand.fix


def test_every_measure_s_null_is_costed_by_its_route():
    """A measure new to the nulls' batching is costed as it runs, not as a refit per permutation."""
    from compute.engine.null_costs import _ROUTES
    from compute.measures.registry import KERNEL_NULL_MEASURES, MEASURES

    assert set(MEASURES) == set(_ROUTES) | set(KERNEL_NULL_MEASURES) | {"pls_r"}


def test_the_dimensionality_recipe_is_compute_s_per_layer():
    rng = np.random.default_rng(1)
    acts = [rng.standard_normal((30, 8)) * np.linspace(0.1, 2, 8), rng.standard_normal((30, 3))]
    spec = artifacts.dimensionality_spec(A, ["l1", "l2"], STIMULI, "participation_ratio")
    values, _ = KINDS["dimensionality"].recipe(spec, acts, artifacts.Context())
    np.testing.assert_allclose(values, [compute.dimensionality(a, "participation_ratio") for a in acts])
    with pytest.raises(ValueError, match="unknown dimensionality method"):
        artifacts.dimensionality_spec(A, ["l1"], STIMULI, "rank")


# --- the page's plan and draw ------------------------------------------------------------------------

PAIR = ("mlp-w8-s0-e25", "mlp-w8-s1-e25")


def _stack(values, q):
    """A null grid's stack with the given scores and q (p = q, z = 0, calibrated = scores / 2)."""
    values, q = np.asarray(values, float), np.asarray(q, float)
    return np.stack([values, q, q, np.zeros_like(values), values / 2])


def test_the_plan_bounds_the_null_and_writes_it_in_the_url(zoo_dir, cache_dir):
    from dashboard.selection import Selection
    from dashboard.views import layer_grid as view

    selection = Selection(names=PAIR)
    specs, _, context, search = view.plan(selection, *PAIR, "cka_linear", "default", "off", "100", "calibrated")
    assert specs["grid"].params["null"] == 100 and specs["grid"].params["seed"] == view.NULL_SEED
    assert "null=100" in search and "show=calibrated" in search
    assert view.read_state(search, selection)["null"] == "100"
    plain, _, _, search = view.plan(selection, *PAIR, "cka_linear", "default")
    assert "null" not in plain["grid"].params and "null" not in search
    for crafted in ({"null": str(10**9)}, {"null": "-1"}, {"show": "z"}):
        values = {"multiples": "off", "null": "100", "show": "raw", **crafted}
        with pytest.raises(ValueError, match="must be one of"):
            view.plan(selection, *PAIR, "cka_linear", "default", *values.values())
    with pytest.raises(ValueError, match="must be one of"):
        view.plan_multiples(selection, PAIR[0], "cka_linear", "default", "selected", "5000", "raw")


def test_a_null_grid_rings_the_cells_above_chance_and_says_which_score_it_shows():
    from dashboard.views import layer_grid as view

    stack = _stack([[0.9, 0.2], [0.4, 0.1]], [[0.01, 0.5], [0.049, 0.05]])
    state = {"a": "m", "b": "n", "measure": "cka_linear", "null": "100", "show": "raw"}
    raw = view.figure(stack, ["x", "y"], ["u", "v"], state)
    np.testing.assert_array_equal(raw.data[0].z, stack[0])
    rings = raw.data[1]
    assert list(zip(rings.y, rings.x)) == [("A: x", "B: u"), ("A: y", "B: u")]  # q < 0.05
    assert "BH-FDR" in rings.name and "100 permutations" in rings.name
    assert raw.data[0].colorbar.title.text == "Linear CKA<br>(similarity: higher = more alike)"
    calibrated = view.figure(stack, ["x", "y"], ["u", "v"], {**state, "show": "calibrated"})
    np.testing.assert_array_equal(calibrated.data[0].z, stack[4])
    assert calibrated.data[0].colorbar.title.text.startswith("calibrated Linear CKA<br>(0 = chance, 1 = best")
    plain = view.figure(stack[0], ["x", "y"], ["u", "v"], {**state, "null": "off", "show": "calibrated"})
    assert len(plain.data) == 1 and "calibrated" not in plain.data[0].colorbar.title.text


def test_small_multiples_share_the_null_setting():
    from dashboard.views import layer_grid as view

    context = {"view": {"a": "m", "measure": "procrustes", "null": "1000", "show": "calibrated"},
               "pairs": [["m", "n"], ["m", "o"]], "layers": [[["x"], ["u", "v"]], [["x"], ["u", "v"]]]}
    arrays = {"grid0": _stack([[0.3, 0.8]], [[0.001, 0.9]]), "grid1": _stack([[0.5, 0.6]], [[0.2, 0.01]])}
    (figure,) = view.draw_multiples(context, arrays)
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    rings = [t for t in figure.data if t.type == "scatter"]
    np.testing.assert_array_equal(heatmaps[1].z, arrays["grid1"][4])
    assert [list(r.x) for r in rings] == [["B: u"], ["B: v"]] and [r.showlegend for r in rings] == [True, False]
    assert figure.layout.coloraxis.colorbar.title.text.startswith("calibrated Procrustes shape distance<br>")


def test_the_dimensionality_curves_have_one_line_per_model_in_depth_order():
    from dashboard.views import layer_grid as view

    context = {"view": {"dim": "participation_ratio"}, "models": ["m", "n"], "layers": [["a", "b", "c"], ["d", "e"]]}
    (figure,) = view.draw_dims(context, {"model0": np.array([3.0, 2.0, 1.5]), "model1": np.array([4.0, 1.0])})
    assert [t.name for t in figure.data] == ["m", "n"]
    assert list(figure.data[0].x) == [1, 2, 3] and list(figure.data[0].text) == ["a", "b", "c"]
    assert figure.layout.yaxis.title.text == "participation ratio (effective number of dimensions)"
    assert figure.layout.xaxis.title.text.startswith("layer")


def test_show_code_reproduces_the_null_grid_and_the_dimensionality_curves(zoo_dir, tmp_path):
    from compute.engine.artifacts import ensure
    from compute.engine.store import ArtifactStore
    from dashboard.selection import Selection
    from dashboard.views import layer_grid as view

    selection = Selection(names=PAIR, pooling="avg")
    store = ArtifactStore(tmp_path / "artifacts")
    specs, _, context, _ = view.plan(selection, *PAIR, "cka_linear", "default", "off", "100", "calibrated")
    dims, targets, dims_context, _ = view.plan_dims(selection, *PAIR, "default", "effective_rank")
    for spec in [specs["grid"], *(dims[t] for t in targets)]:
        ensure(spec, store)
    namespace = {}
    exec(compile(view.code({**context, "selection": selection.url_params()}), "<grid snippet>", "exec"), namespace)
    fields = dict(zip(GRID_NULL_FIELDS, store.get("layer_grid", specs["grid"].key)[0]))
    np.testing.assert_allclose(namespace["grid"], fields["calibrated"], atol=1e-6)
    np.testing.assert_array_equal(namespace["ringed"], fields["q"] < view.ALPHA)
    exec(compile(view.code_dims({**dims_context, "selection": selection.url_params()}), "<dims snippet>", "exec"),
         namespace)
    for i, name in enumerate(dims_context["models"]):
        np.testing.assert_allclose(namespace["dims"][name], store.get("dimensionality", dims[f"model{i}"].key)[0],
                                   rtol=1e-6)
