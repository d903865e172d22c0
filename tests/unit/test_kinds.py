"""The Kind records: every artifact kind is complete in one place, keeps its cache key, and has
a memory and time estimate and a description; limits refuse every kind over the budget."""
import dataclasses
from types import SimpleNamespace

import pytest

from compute.engine import artifacts
from compute.engine.artifacts import Spec
from compute.engine.kinds import KINDS, Cost, Kind, describe
from compute.engine.limits import TooLarge, check_memory, job_steps
from compute.measures.condensed import condensed_size

STIMULI = SimpleNamespace(key="s" * 64, name="digits")
A, B, C = "a" * 64, "b" * 64, "c" * 64
NAMES = {A: "cnn-a", B: "mlp-b"}
_RDM = artifacts.rdm_spec(A, STIMULI, "fc1", method="euclidean")

# One realistic spec of each kind, from the spec builders.
SPECS = {
    "activations": artifacts.activations_spec(A, STIMULI, "conv1", "avg"),
    "predictions": artifacts.predictions_spec(B, STIMULI),
    "rdm": _RDM,
    "rdm_blocks": artifacts.rdm_blocks_spec(_RDM, STIMULI, 1000),
    "model_rdm": artifacts.model_rdm_spec([A, B, C], STIMULI),
    "model_rdm_null": artifacts.model_rdm_null_spec(artifacts.model_rdm_spec([A, B, C], STIMULI), 100),
    "mds": artifacts.mds_spec(artifacts.model_rdm_spec([A, B, C], STIMULI)),
    "mds_stress": artifacts.mds_stress_spec(artifacts.mds_spec(_RDM)),
    "layer_grid": artifacts.layer_grid_spec(A, ["l1", "l2"], B, ["m1"], STIMULI, "cka_linear"),
    "dimensionality": artifacts.dimensionality_spec(A, ["l1", "l2"], STIMULI, "effective_rank"),
    "similarities": artifacts.similarities_spec([((A, "fc1"), (B, "fc1")), ((A, "fc2"), (B, "fc2"))], STIMULI,
                                                "pwcca"),
    "confusion": artifacts.confusion_spec(A, STIMULI, 5),
    "confusion_rdm": artifacts.confusion_model_rdm_spec([A, B], STIMULI, 5).inputs[0],
    "srm_fit": artifacts.srm_fit_spec([A, B], STIMULI, ["fc1", "fc1"], k=5),
    "reference_fit": artifacts.reference_fit_spec("f" * 64, [_RDM], "kendall_tau_a", n_boot=100),
    "reference_eval": artifacts.reference_eval_spec("f" * 64, [_RDM, _RDM], "spearman", n_boot=100),
}

# The keys these specs had before the Kind records (cache keys must never change by a move);
# layer_grid and similarities at code version 4 (3: the CCA family's scale-free rank, issue 17;
# 4: the permutation metric lets units stay unmatched); a layer grid without a null keeps its key
# (its null parameters are added only when on); dimensionality new in issue 17; model_rdm_null in 18; mds_stress in 19.
KEYS = {
    "activations": "8c3b719ade7410d7ad6fc557efa3faf7aaf96575",
    "predictions": "abe1c1f61177c4a020a48d22ece62603f32a48f3",
    "rdm": "757ef1269718c744ca665d221e3631f517e82c6f",
    "rdm_blocks": "7c46cd05dfcc7d15807d75a3c47e445a47a2f66e",
    "model_rdm": "8e1384271eb22445ea89da993c8b9a2d074a3acf",
    "model_rdm_null": "d06baed1d096aea3e59ad277176fb7ebfa1c6c95",
    "mds": "90a22d446863f0730175e656c15a5b5c71161695",
    "mds_stress": "55a78d4ff6bc967e3a62e50892d1d591ce068ad8",
    "layer_grid": "dd31fa3b45ea798e7890afcf42250bce111b7401",
    "dimensionality": "ec400067cbef1ca883861bac99446dca9b0b7c3d",
    "similarities": "61658ce7fe72a6c54599ad4a834c4bf9c705cd8d",
    "confusion": "21465094ae33a748154c32d15172ba61f226146b",
    "confusion_rdm": "ab457e0de29620c57762baa24776a62c4b0034c9",
    "srm_fit": "69aa94349bdf07eef02818cff059f9c8708e617c",
    "reference_fit": "8f34a668c4200f6ce6c9804621d4e2bb6d5760e5",
    "reference_eval": "ff7c616ccad3bdba4dad2583e4585b3d82475515",
}

N, D, CLASSES = 2_000, 512, 10
# The shape of a stored artifact of each kind an input may be, for these specs.
STORED = {"activations": (N, D), "predictions": (N, CLASSES), "rdm": (condensed_size(N),),
          "confusion": (CLASSES, CLASSES), "confusion_rdm": (condensed_size(CLASSES),), "model_rdm": (3, 3),
          "mds": (N, 2)}


def stored_inputs(spec: Spec):
    """A ``shape_of`` that knows the spec's direct inputs (as if stored), or a source's own shape."""
    known = {s.key: STORED[s.kind] for s in (spec.inputs or (spec,))}
    return lambda s: known.get(s.key)


def own_step(spec: Spec):
    """The spec's own step, the largest when its inputs are known (a source input has a step too;
    the stress of an MDS reads the MDS, a larger step)."""
    steps = job_steps(spec, stored_inputs(spec))
    assert steps[-1].key == spec.key
    assert spec.kind == "mds_stress" or steps[-1] == max(steps, key=lambda step: step.bytes)
    return steps[-1]


def test_every_kind_has_a_spec_here_and_a_complete_record():
    assert set(SPECS) == set(KINDS)
    for name, kind in KINDS.items():
        assert isinstance(kind, Kind) and kind.name == name
        for field in dataclasses.fields(Kind):
            assert getattr(kind, field.name) is not None, f"kind {name!r} lacks {field.name}"
        assert isinstance(kind.code_version, int) and kind.code_version >= 1
        assert kind.queue in ("gpu", "cpu")
        assert callable(kind.recipe) and callable(kind.estimate) and callable(kind.describe)


def test_a_kind_without_every_field_cannot_be_made():
    with pytest.raises(TypeError):
        Kind("new", 1, KINDS["rdm"].recipe, "cpu", KINDS["rdm"].estimate)  # no describe


@pytest.mark.parametrize("name", sorted(KINDS))
def test_keys_are_those_of_before_the_kind_records(name):
    assert SPECS[name].key == KEYS[name]
    assert Spec.from_json(SPECS[name].to_json()).key == KEYS[name]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_estimates_memory_and_time_and_describes_itself(name):
    spec = SPECS[name]
    step = own_step(spec)
    assert step.kind == name and step.bytes > 0 and step.seconds > 0
    assert step.what and step.fix
    cost = KINDS[name].estimate(spec, [STORED[s.kind] for s in spec.inputs] or [STORED[name]])
    assert isinstance(cost, Cost) and all(isinstance(x, int) and x > 0 for x in cost.shape)
    words = describe(spec.to_json(), NAMES)
    assert words and describe(spec, NAMES) == words  # a Spec or its JSON


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_is_refused_over_a_budget_below_its_step(name):
    spec = SPECS[name]
    step = max(job_steps(spec, stored_inputs(spec)), key=lambda step: step.bytes)  # own_step but for mds_stress
    check_memory(spec, step.bytes, stored_inputs(spec))
    with pytest.raises(TooLarge) as error:
        check_memory(spec, step.bytes - 1, stored_inputs(spec))
    assert step.what in str(error.value) and step.fix in str(error.value)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_step_is_estimated_from_the_sources_shapes_alone(name):
    """Each estimate gives its artifact's shape to the next, so knowing the activations' and
    predictions' shapes bounds every step of a job (limits once had no estimate for layer_grid,
    similarities, srm_fit, reference_fit and others: those jobs had no pre-flight at all)."""
    spec = SPECS[name]
    sources = {s.key: STORED[s.kind] for s in spec.walk() if s.kind in ("activations", "predictions")}
    steps = job_steps(spec, lambda s: sources.get(s.key))
    assert [step.key for step in steps] == list({s.key: s for s in spec.walk()})
    worst = max(steps, key=lambda step: step.bytes)
    with pytest.raises(TooLarge, match="over the budget"):
        check_memory(spec, worst.bytes - 1, lambda s: sources.get(s.key))


def test_layer_grid_holds_every_layer_and_rbf_kernels_grow_with_the_square_of_the_stimuli():
    linear = SPECS["layer_grid"]
    rbf = artifacts.layer_grid_spec(A, ["l1", "l2"], B, ["m1"], STIMULI, "cka_rbf")
    shapes = [(N, 64)] * 3
    assert KINDS["layer_grid"].estimate(linear, shapes).bytes >= 3 * N * 64 * 4
    assert KINDS["layer_grid"].estimate(rbf, shapes).bytes >= 3 * N * N * 8
    assert KINDS["layer_grid"].estimate(linear, shapes).bytes < 3 * N * N * 8  # D x D factors when D < N


def test_new_measures_estimate_their_own_costs():
    """dcor holds an N x N kernel per layer like cka_rbf; ridge_r factors every fold (more work
    than the linear-CKA grid, and more memory); the k-NN family needs more than its data."""
    shapes = [(N, 64)] * 3
    estimate = KINDS["layer_grid"].estimate
    grid = {m: artifacts.layer_grid_spec(A, ["l1", "l2"], B, ["m1"], STIMULI, m)
            for m in ("cka_linear", "dcor", "ridge_r", "mutual_knn")}
    assert estimate(grid["dcor"], shapes).bytes >= 3 * N * N * 8
    assert estimate(grid["ridge_r"], shapes).seconds > estimate(grid["cka_linear"], shapes).seconds
    assert estimate(grid["ridge_r"], shapes).bytes > estimate(grid["cka_linear"], shapes).bytes
    assert estimate(grid["mutual_knn"], shapes).bytes > 3 * N * 64 * 4


def test_reference_fit_grows_with_the_resamples():
    few = artifacts.reference_fit_spec("f" * 64, [_RDM], n_boot=10)
    many = artifacts.reference_fit_spec("f" * 64, [_RDM], n_boot=10_000)
    shapes = [STORED["rdm"]]
    estimate = KINDS["reference_fit"].estimate
    assert estimate(many, shapes).bytes > estimate(few, shapes).bytes
    assert estimate(many, shapes).seconds > 100 * estimate(few, shapes).seconds


def test_describe_names_a_kind_it_does_not_know():
    assert describe({"kind": "from_a_later_version", "params": {}}) == "from_a_later_version"
