"""The ``similarities`` artifact: one measure over listed (model, layer) pairs, as a vector."""
from types import SimpleNamespace

import numpy as np
import pytest

import compute
from compute.engine import artifacts
from compute.engine.artifacts import Spec
from compute.engine.kinds import KINDS
from compute.errors import Cancelled

DIGITS = SimpleNamespace(name="digits", key="s" * 64)


def test_spec_lists_each_model_and_layer_once_as_shared_activations():
    pairs = [(("m1", "a"), ("m2", "a")), (("m3", "a"), ("m2", "a")), (("m1", "b"), ("m1", "a"))]
    spec = artifacts.similarities_spec(pairs, DIGITS, "pwcca")
    assert [s.key for s in spec.inputs] == [artifacts.activations_spec(m, DIGITS, layer).key
                                            for m, layer in (("m1", "a"), ("m2", "a"), ("m3", "a"), ("m1", "b"))]
    assert spec.params == {"measure": "pwcca", "pairs": [[0, 1], [2, 1], [3, 0]]}
    assert Spec.from_json(spec.to_json()).key == spec.key


def test_key_changes_with_measure_pooling_and_the_order_within_a_pair():
    pair = (("m1", "a"), ("m2", "a"))
    base = artifacts.similarities_spec([pair], DIGITS, "pwcca")
    assert base.key != artifacts.similarities_spec([pair], DIGITS, "cka_linear").key
    assert base.key != artifacts.similarities_spec([pair], DIGITS, "pwcca", pooling="avg").key
    assert base.key != artifacts.similarities_spec([pair[::-1]], DIGITS, "pwcca").key  # pwcca is not symmetric


def test_spec_refuses_no_pairs():
    with pytest.raises(ValueError, match="at least one pair"):
        artifacts.similarities_spec([], DIGITS)


@pytest.mark.parametrize("measure", ["pwcca", "cka_linear", "procrustes", "svcca"])
@pytest.mark.parametrize("seed", [0, 1])
def test_recipe_matches_compute_similarity_pair_by_pair(measure, seed):
    rng = np.random.default_rng(seed)
    # Different widths, so that pwcca's asymmetry shows if a pair were turned round.
    sides = {("m1", "a"): 6, ("m2", "a"): 9, ("m3", "a"): 4, ("m1", "b"): 7}
    acts = {side: rng.normal(size=(40, width)).astype(np.float32) for side, width in sides.items()}
    acts[("m2", "a")][:, :4] += 2 * acts[("m3", "a")]  # some shared signal
    pairs = [(("m1", "a"), ("m2", "a")), (("m3", "a"), ("m2", "a")), (("m2", "a"), ("m3", "a")),
             (("m1", "b"), ("m1", "a")), (("m1", "a"), ("m1", "a"))]
    spec = artifacts.similarities_spec(pairs, DIGITS, measure)
    inputs = [acts[(s.params["model"], s.params["layer"])] for s in spec.inputs]
    out, meta = KINDS["similarities"].recipe(spec, inputs, artifacts.Context())
    expected = [compute.similarity(acts[a], acts[b], measure=measure) for a, b in pairs]
    assert out.shape == (len(pairs),) and meta == {}
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    # Closed form: a layer against itself is identical (distance 0 for procrustes).
    assert out[-1] == pytest.approx(0.0 if measure == "procrustes" else 1.0, abs=1e-6)


def test_recipe_stops_when_cancelled():
    X = np.random.default_rng(0).normal(size=(10, 3))
    spec = artifacts.similarities_spec([(("m1", "a"), ("m2", "a"))], DIGITS)
    with pytest.raises(Cancelled):
        KINDS["similarities"].recipe(spec, [X, X], artifacts.Context(should_stop=lambda: True))
