"""The srm_fit artifact: its spec, and its recipe against compute.fit_srm and the SRM analyses."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

import compute
from compute.engine import artifacts
from compute.engine.artifacts import Spec
from compute.engine.kinds import KINDS
from compute.engine.recipes import SRM_FIT_FIELDS
from compute.engine.store import ArtifactStore
from compute.measures.srm import shared_space_rsm_agreement, srm_variance_explained, stratified_split
from compute.sources.stimuli import get_stimulus_set

FIELD = {name: i for i, name in enumerate(SRM_FIT_FIELDS)}


@pytest.fixture(scope="module")
def digits():
    return get_stimulus_set("digits")


def _recipe(digits, Xs, k, **kwargs):
    spec = artifacts.srm_fit_spec([f"m{i}" for i in range(len(Xs))], digits, ["a"] * len(Xs), k=k, **kwargs)
    return KINDS["srm_fit"].recipe(spec, Xs, artifacts.Context())


@pytest.mark.parametrize("seed", [0, 1])
def test_rotated_copies_are_aligned_in_the_shared_space_only(digits, seed):
    rng = np.random.default_rng(seed)
    n, d = len(digits), 8
    H = rng.standard_normal((n, d)) @ np.diag(np.linspace(3, 1, d)) + 1.5
    Xs = [(H @ ortho_group.rvs(d, random_state=seed * 10 + i)).astype(np.float32) for i in range(4)]
    values, meta = _recipe(digits, Xs, k=d, seed=seed, n_iter=20)
    assert values.dtype == np.float64 and values.shape == (len(SRM_FIT_FIELDS),)
    assert values[FIELD["variance_explained"]] == pytest.approx(1.0, abs=1e-4)
    assert values[FIELD["train_variance_explained"]] == pytest.approx(1.0, abs=1e-4)
    assert values[FIELD["shared_agreement"]] == pytest.approx(1.0, abs=1e-4)
    assert values[FIELD["native_agreement"]] < 0.9  # rotations misalign the native spaces
    assert values[FIELD["k"]] == d
    assert meta["n_train"] + meta["n_test"] == n and meta["widths"] == [d] * 4


def test_recipe_matches_direct_computation_with_unequal_widths(digits):
    rng = np.random.default_rng(3)
    n = len(digits)
    shared = rng.standard_normal((n, 5))
    Xs = [(shared @ rng.standard_normal((5, d)) + 0.5 * rng.standard_normal((n, d))).astype(np.float32)
          for d in (6, 9, 12)]
    values, meta = _recipe(digits, Xs, k=50, seed=4, train_fraction=0.6)
    # k is capped at the smallest width.
    train, test = stratified_split(digits.labels, 0.6, 4)
    fit = compute.fit_srm([X[train] for X in Xs], 6, n_iter=10, seed=4)
    held_out = [X[test] for X in Xs]
    assert shared_space_rsm_agreement(fit, held_out).native is None
    expected = [srm_variance_explained(fit, held_out), np.nan, shared_space_rsm_agreement(fit, held_out).shared,
                fit.variance_explained, 6]
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-12)
    assert meta == {"fields": list(SRM_FIT_FIELDS), "n_train": train.size, "n_test": test.size, "widths": [6, 9, 12]}


def test_ensure_computes_from_zoo_activations(zoo_dir, tmp_path, digits):
    from compute.sources.activations import extract
    from compute.sources.models import load_model

    names, layers = ["mlp-w8-s0-e25", "mlp-w8-s1-e25", "mlp-w16-s2-e25"], ["act2", "act2", "act3"]
    spec = artifacts.srm_fit_spec(names, digits, layers, k=5)
    store = ArtifactStore(tmp_path / "artifacts")
    artifacts.ensure(spec, store)
    values = store.get("srm_fit", spec.key)[0]
    Xs = [extract(load_model(name), digits.images, [layer])[layer] for name, layer in zip(names, layers)]
    train, test = stratified_split(digits.labels, 0.5, 0)
    fit = compute.fit_srm([X[train] for X in Xs], 5)
    held_out = [X[test] for X in Xs]
    assert values[FIELD["variance_explained"]] == pytest.approx(srm_variance_explained(fit, held_out), abs=1e-6)
    assert values[FIELD["shared_agreement"]] == pytest.approx(shared_space_rsm_agreement(fit, held_out).shared,
                                                             abs=1e-6)
    assert np.isnan(values[FIELD["native_agreement"]])  # widths 8, 8 and 16


def test_spec_key_and_inputs(digits):
    spec = artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "b"], k=10)
    assert [s.kind for s in spec.inputs] == ["activations"] * 2
    assert spec.inputs[1].key == artifacts.activations_spec("m2", digits, "b").key
    assert Spec.from_json(spec.to_json()).key == spec.key
    for other in (artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "b"], k=5),
                  artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "b"], k=10, seed=1),
                  artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "b"], k=10, train_fraction=0.7),
                  artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "a"], k=10),
                  artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "b"], "avg", k=10)):
        assert other.key != spec.key


def test_spec_bad_input(digits):
    with pytest.raises(ValueError, match="at least two models"):
        artifacts.srm_fit_spec(["m1"], digits, ["a"])
    with pytest.raises(ValueError, match="one layer per model"):
        artifacts.srm_fit_spec(["m1", "m2"], digits, ["a"])
    with pytest.raises(ValueError, match="k must be"):
        artifacts.srm_fit_spec(["m1", "m2"], digits, ["a", "b"], k=0)
