"""Artifact specs: keys are content hashes of what defines an artifact, and nothing else."""
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from compute.engine import artifacts
from compute.engine.artifacts import Spec
from compute.engine.kinds import KINDS

DIGITS = SimpleNamespace(name="digits", key="s" * 64)


def test_key_ignores_how_inputs_are_located():
    a = artifacts.activations_spec("m1", DIGITS)
    b = artifacts.activations_spec("m1", SimpleNamespace(name="renamed", key=DIGITS.key))
    assert a.key == b.key


def test_key_changes_with_content_parameters_and_inputs():
    base = artifacts.model_rdm_spec(["m1", "m2", "m3"], DIGITS)
    assert base.key != artifacts.model_rdm_spec(["m1", "m2", "m4"], DIGITS).key
    assert base.key != artifacts.model_rdm_spec(["m1", "m2", "m3"], DIGITS, compare_method="euclidean").key
    other_pixels = SimpleNamespace(name="digits", key="t" * 64)
    assert base.key != artifacts.model_rdm_spec(["m1", "m2", "m3"], other_pixels).key


def test_key_changes_with_code_version(monkeypatch):
    spec = artifacts.rdm_spec("m1", DIGITS)
    before = Spec.from_json(spec.to_json()).key
    monkeypatch.setitem(KINDS, "rdm", replace(KINDS["rdm"], code_version=KINDS["rdm"].code_version + 1))
    assert Spec.from_json(spec.to_json()).key != before


def test_json_round_trip_keeps_key_and_locate():
    spec = artifacts.mds_spec(artifacts.model_rdm_spec(["m1", "m2", "m3"], DIGITS))
    again = Spec.from_json(spec.to_json())
    assert again.key == spec.key
    assert again.inputs[0].inputs[0].inputs[0].locate == {"stimuli": "digits"}


def test_walk_lists_inputs_before_their_consumers():
    spec = artifacts.mds_spec(artifacts.model_rdm_spec(["m1", "m2"], DIGITS))
    kinds = [s.kind for s in spec.walk()]
    assert kinds.index("activations") < kinds.index("rdm") < kinds.index("model_rdm") < kinds.index("mds")


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown artifact kind"):
        Spec("nonsense", {})


def test_layer_grid_spec_reuses_activation_artifacts():
    grid = artifacts.layer_grid_spec("m1", ["a", "b"], "m2", ["c"], DIGITS, "cka_linear")
    assert [s.kind for s in grid.inputs] == ["activations"] * 3
    assert grid.inputs[0].key == artifacts.activations_spec("m1", DIGITS, "a").key
    assert grid.key != artifacts.layer_grid_spec("m1", ["a", "b"], "m2", ["c"], DIGITS, "rv2").key
    assert grid.key != artifacts.layer_grid_spec("m2", ["c"], "m1", ["a", "b"], DIGITS, "cka_linear").key
    assert Spec.from_json(grid.to_json()).key == grid.key
    with pytest.raises(ValueError, match="at least one layer"):
        artifacts.layer_grid_spec("m1", [], "m2", ["c"], DIGITS)


def test_layer_grid_recipe_matches_compute():
    import compute

    rng = np.random.default_rng(0)
    acts = [rng.normal(size=(20, d)).astype(np.float32) for d in (5, 7, 3)]
    grid = artifacts.layer_grid_spec("m1", ["a", "b"], "m2", ["c"], DIGITS, "cka_linear")
    out, _ = KINDS["layer_grid"].recipe(grid, acts, artifacts.Context())
    expected = compute.layer_grid({"a": acts[0], "b": acts[1]}, {"c": acts[2]}, measure="cka_linear")
    np.testing.assert_allclose(out, expected)
    self_grid = artifacts.layer_grid_spec("m1", ["a", "b"], "m1", ["a", "b"], DIGITS, "cka_linear")
    out, _ = KINDS["layer_grid"].recipe(self_grid, acts[:2] * 2, artifacts.Context())
    assert out.shape == (2, 2) and np.allclose(np.diag(out), 1.0)


def test_mds_of_an_input_rdm_embeds_its_stimuli():
    import compute

    X = np.random.default_rng(1).normal(size=(12, 4))
    condensed = compute.rdm(X, method="euclidean", condensed=True)
    spec = artifacts.mds_spec(artifacts.rdm_spec("m1", DIGITS, method="euclidean"), method="classical")
    coords, _ = KINDS["mds"].recipe(spec, [condensed], artifacts.Context())
    square = compute.rdm(X, method="euclidean")
    np.testing.assert_allclose(coords, compute.mds(square, method="classical"), atol=1e-5)


def test_confusion_spec_depends_on_predictions_and_k():
    top1, top5 = artifacts.confusion_spec("m1", DIGITS, 1), artifacts.confusion_spec("m1", DIGITS, 5)
    assert top1.inputs[0].key == artifacts.predictions_spec("m1", DIGITS).key
    assert top1.key != top5.key and top1.locate == {"stimuli": "digits"}


def test_model_rdm_spec_takes_one_layer_per_model():
    same = artifacts.model_rdm_spec(["m1", "m2"], DIGITS, "fc1")
    assert artifacts.model_rdm_spec(["m1", "m2"], DIGITS, ["fc1", "fc1"]).key == same.key
    mixed = artifacts.model_rdm_spec(["m1", "m2"], DIGITS, ["fc1", "conv2"])
    assert [r.inputs[0].params["layer"] for r in mixed.inputs] == ["fc1", "conv2"]
    with pytest.raises(ValueError, match="one per model"):
        artifacts.model_rdm_spec(["m1", "m2"], DIGITS, ["fc1"])
