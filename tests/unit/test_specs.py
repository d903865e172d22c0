"""Artifact specs: keys are content hashes of what defines an artifact, and nothing else."""
from types import SimpleNamespace

import pytest

from compute.engine import artifacts
from compute.engine.artifacts import Spec

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
    monkeypatch.setitem(artifacts.CODE_VERSION, "rdm", artifacts.CODE_VERSION["rdm"] + 1)
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
