"""Model RDMs against a multi-subject reference: scores, bootstrap intervals and noise ceilings
checked against scipy and hand computations; the reference_fit artifact's spec and recipe."""
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist, squareform

import compute
from compute.engine import artifacts
from compute.engine.kinds import KINDS
from compute.errors import Cancelled
from compute.measures.reference import FIT_COLUMNS, fit_reference
from compute.measures.stats import bootstrap, noise_ceiling

N = 12


def problem(seed, s=3, r=2, noise=0.5):
    """R candidate RDMs and S subjects' RDMs, all noisy views of one true geometry (condensed)."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(N, 5))
    view = lambda: pdist(truth + noise * rng.normal(size=truth.shape))  # noqa: E731
    return np.stack([view() for _ in range(r)]), np.stack([view() for _ in range(s)])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method, reference", [
    ("spearman", lambda a, b: scipy.stats.spearmanr(a, b)[0]),
    ("pearson", lambda a, b: scipy.stats.pearsonr(a, b)[0]),
    ("kendall_tau_a", None),
    ("euclidean", lambda a, b: np.linalg.norm(a - b)),
])
def test_the_score_is_the_mean_comparison_with_each_subject(seed, method, reference):
    rdms, subjects = problem(seed)
    fit = fit_reference(rdms, subjects, method, n_boot=0)
    assert fit.shape == (2, len(FIT_COLUMNS))
    if reference is None:  # tau-a without ties (continuous values) is scipy's tau-b
        reference = lambda a, b: scipy.stats.kendalltau(a, b)[0]  # noqa: E731
    expected = [np.mean([reference(rdm, subject) for subject in subjects]) for rdm in rdms]
    np.testing.assert_allclose(fit[:, 0], expected, rtol=1e-10)
    assert np.isnan(fit[:, 1:3]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_the_interval_is_the_percentile_of_the_subject_mean_over_explicit_resamples(seed):
    rdms, subjects = problem(seed, s=2, r=1)
    n_boot = 40
    fit = fit_reference(rdms, subjects, "spearman", n_boot=n_boot, seed=seed)
    # The resampled data written out: stimuli drawn with replacement (default_rng(seed)), every
    # pair of drawn positions kept unless both are copies of one stimulus.
    draws = np.random.default_rng(seed).integers(0, N, size=(n_boot, N))
    means = []
    for idx in draws:
        a, b = np.triu_indices(N, 1)
        keep = idx[a] != idx[b]
        i, j = idx[a][keep], idx[b][keep]
        pick = lambda rdm: squareform(rdm)[i, j]  # noqa: E731
        means.append(np.mean([scipy.stats.spearmanr(pick(rdms[0]), pick(s))[0] for s in subjects]))
    np.testing.assert_allclose(fit[0, 1:3], np.quantile(means, [0.025, 0.975]), rtol=1e-9)
    assert fit[0, 1] <= fit[0, 0] <= fit[0, 2]


def test_one_subject_matches_compute_bootstrap_and_has_no_ceiling():
    rdms, subjects = problem(5, s=1)
    fit = fit_reference(rdms, squareform(subjects[0])[None], "pearson", n_boot=200, seed=7)
    for rdm, row in zip(rdms, fit):
        result = bootstrap(rdm, subjects[0], "pearson", n_boot=200, seed=7)
        np.testing.assert_allclose(row[:3], [result.estimate, result.low, result.high], rtol=1e-12)
    assert np.isnan(fit[:, 3:]).all()


def _average_ranks(subjects):
    return np.stack([scipy.stats.rankdata(s) for s in subjects])


@pytest.mark.parametrize("seed", [0, 3])
def test_noise_ceiling_by_hand(seed):
    rdms, subjects = problem(seed, s=4)
    fit = fit_reference(rdms, subjects, "spearman", n_boot=0)
    ranks = _average_ranks(subjects)
    upper = np.mean([scipy.stats.spearmanr(s, ranks.mean(axis=0))[0] for s in subjects])
    lower = np.mean([scipy.stats.spearmanr(s, np.delete(ranks, k, axis=0).mean(axis=0))[0]
                     for k, s in enumerate(subjects)])
    np.testing.assert_allclose(fit[:, 3], lower, rtol=1e-10)
    np.testing.assert_allclose(fit[:, 4], upper, rtol=1e-10)
    assert lower < upper
    assert tuple(fit[0, 3:]) == tuple(noise_ceiling(subjects, "spearman"))


def test_bad_arguments_are_refused():
    rdms, subjects = problem(0)
    with pytest.raises(ValueError, match="unknown RDM comparison method 'corr'"):
        fit_reference(rdms, subjects, "corr")
    with pytest.raises(ValueError, match="n_boot must be a non-negative integer"):
        fit_reference(rdms, subjects, n_boot=-1)
    with pytest.raises(ValueError, match=r"subjects must be \(S, K\) condensed"):
        fit_reference(rdms, subjects[0])
    with pytest.raises(ValueError, match="over 12 stimuli but rdm_b is over 4"):
        fit_reference(rdms, np.ones((2, 6)) - np.eye(1, 6), n_boot=5)


def test_cancelling_stops_between_comparisons():
    rdms, subjects = problem(0)
    with pytest.raises(Cancelled):
        fit_reference(rdms, subjects, n_boot=5, should_stop=lambda: True)
    seen = []
    fit_reference(rdms, subjects, n_boot=5, progress=seen.append)
    assert seen == pytest.approx([k / 6 for k in range(1, 7)])
    with pytest.raises(Cancelled):  # the batched point estimates check it per chunk of candidates
        fit_reference(rdms, subjects, n_boot=0, should_stop=lambda: True)
    seen = []
    fit_reference(rdms, subjects, n_boot=0, progress=seen.append)
    assert seen == [1.0]


@pytest.mark.parametrize("method", ["spearman", "rho_a", "pearson", "cosine", "euclidean", "manhattan"])
def test_batched_point_estimates_are_the_loop_s(method):
    """Without a bootstrap the candidates are ranked once and meet all subjects in one product;
    the scores are the per-pair comparisons' (tied and float32 candidates included)."""
    rdms, subjects = problem(3, s=3, r=4)
    rdms = [rdms[0], np.round(rdms[1], 1), rdms[2].astype(np.float32), rdms[3]]
    loop = np.array([[compute.compare_rdms(rdm, s, method, dtype=np.float64, device="cpu") for s in subjects]
                     for rdm in rdms]).mean(axis=1)
    np.testing.assert_allclose(fit_reference(rdms, subjects, method, n_boot=0)[:, 0], loop, rtol=1e-12, atol=1e-12)


DIGITS = SimpleNamespace(name="digits", key="s" * 64)


def test_spec_keys_follow_reference_method_and_resamples():
    rdms = [artifacts.rdm_spec(m, DIGITS, "penultimate", "none", "euclidean") for m in ("m1", "m2")]
    base = artifacts.reference_fit_spec("a" * 64, rdms)
    assert base.params == {"reference": "a" * 64, "method": "spearman", "n_boot": 1000, "seed": 0}
    assert base.inputs == tuple(rdms)
    assert base.key == artifacts.Spec.from_json(base.to_json()).key
    for args, kwargs in [(("b" * 64, rdms), {}), (("a" * 64, rdms, "pearson"), {}), (("a" * 64, rdms), {"n_boot": 100}),
                         (("a" * 64, rdms[:1]), {})]:
        assert artifacts.reference_fit_spec(*args, **kwargs).key != base.key
    with pytest.raises(ValueError, match="at least one RDM"):
        artifacts.reference_fit_spec("a" * 64, [])
    with pytest.raises(ValueError, match="n_boot must be a non-negative integer"):
        artifacts.reference_fit_spec("a" * 64, rdms, n_boot=1.5)


def test_recipe_reads_the_stored_reference(tmp_path, monkeypatch):
    from compute.sources.references import save_reference

    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))
    rdms, subjects = problem(4)
    stimuli = type("Tiny", (), {"name": "tiny", "key": "t" * 64, "__len__": lambda self: N})()
    info = save_reference(subjects, "brain", stimuli)
    inputs = [artifacts.rdm_spec(m, DIGITS) for m in ("m1", "m2")]
    spec = artifacts.reference_fit_spec(info.key, inputs, "spearman", n_boot=30, seed=2)
    reports = []
    ctx = artifacts.Context(report=lambda f, message: reports.append((f, message)))
    out, meta = KINDS["reference_fit"].recipe(spec, list(rdms.astype(np.float32)), ctx)
    np.testing.assert_array_equal(out, fit_reference(rdms.astype(np.float32), subjects, "spearman", n_boot=30, seed=2))
    assert meta == {"columns": list(FIT_COLUMNS)} and out.dtype == np.float64
    assert reports[-1] == (1.0, "comparing with the reference")


def test_rows_of_another_reference_are_fitted_after_the_inputs(tmp_path, monkeypatch):
    from compute.engine.kinds import describe
    from compute.sources.references import save_reference

    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))
    rdms, subjects = problem(5)
    stimuli = type("Tiny", (), {"name": "tiny", "key": "t" * 64, "__len__": lambda self: N})()
    brain = save_reference(subjects, "brain", stimuli)
    others = save_reference(rdms.astype(np.float64), "models", stimuli, [f"model {i}" for i in range(len(rdms))])
    inputs = [artifacts.rdm_spec("m1", DIGITS)]
    spec = artifacts.reference_fit_spec(brain.key, inputs, "spearman", n_boot=20, candidates=[(others.key, 1)])
    assert spec.params["candidates"] == [[others.key, 1]]
    assert spec.key != artifacts.reference_fit_spec(brain.key, inputs, "spearman", n_boot=20).key
    assert artifacts.Spec.from_json(spec.to_json()).key == spec.key
    out, _ = KINDS["reference_fit"].recipe(spec, [rdms[0].astype(np.float32)], artifacts.Context())
    expected = fit_reference([rdms[0].astype(np.float32), rdms[1]], subjects, "spearman", n_boot=20, seed=0)
    np.testing.assert_array_equal(out, expected)
    assert "fit of 1 RDM (layer penultimate) and 1 reference RDM against reference 'brain'" in describe(spec)
    assert KINDS["reference_fit"].estimate(spec, [(N * (N - 1) // 2,)]).shape == (2, 5)
    alone = artifacts.reference_fit_spec(brain.key, [], candidates=[(others.key, 0)])
    assert alone.inputs == () and alone.params["candidates"] == [[others.key, 0]]


def test_a_reference_evaluation_is_evaluate_models_on_the_same_rdms(tmp_path, monkeypatch):
    """The reference_eval artifact: compute.evaluate_models over the inputs and the rows of
    other references, both factors resampled for several subjects, as one (M, 4 + M) table."""
    from compute.engine.kinds import describe
    from compute.sources.references import save_reference

    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))
    rdms, subjects = problem(6, r=3)
    stimuli = type("Tiny", (), {"name": "tiny", "key": "t" * 64, "__len__": lambda self: N})()
    brain = save_reference(subjects, "brain", stimuli)
    others = save_reference(rdms.astype(np.float64), "models", stimuli, [f"model {i}" for i in range(len(rdms))])
    inputs = [artifacts.rdm_spec("m1", DIGITS), artifacts.rdm_spec("m2", DIGITS)]
    spec = artifacts.reference_eval_spec(brain.key, inputs, "spearman", n_boot=30, candidates=[(others.key, 2)])
    assert spec.kind == "reference_eval" and spec.key != artifacts.reference_fit_spec(
        brain.key, inputs, "spearman", n_boot=30, candidates=[(others.key, 2)]).key
    out, meta = KINDS["reference_eval"].recipe(spec, [rdms[0].astype(np.float32), rdms[1]], artifacts.Context())
    expected = compute.evaluate_models(subjects, {"a": rdms[0].astype(np.float32), "b": rdms[1], "c": rdms[2]},
                                       "spearman", n_boot=30, seed=0)
    assert out.shape == (3, 7) and meta["over"] == ["subjects", "stimuli"] and meta["n_boot"] == 30
    np.testing.assert_allclose(out[:, 0], expected.scores, rtol=1e-12)
    np.testing.assert_allclose(out[:, 1:3], expected.ci, rtol=1e-12)
    np.testing.assert_allclose(out[:, 3], expected.normalised, rtol=1e-12)
    np.testing.assert_allclose(out[:, 4:], expected.pairwise_p, rtol=1e-12)
    assert meta["ceiling"] == pytest.approx(list(expected.noise_ceiling), rel=1e-12)
    assert "evaluation of 2 RDMs" in describe(spec) and "'brain' (spearman, 30 resamples)" in describe(spec)
    assert KINDS["reference_eval"].estimate(spec, [(N * (N - 1) // 2,)] * 2).shape == (3, 7)
    with pytest.raises(ValueError, match="at least 2 resamples"):
        artifacts.reference_eval_spec(brain.key, inputs, "spearman", n_boot=0)
