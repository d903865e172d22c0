"""compute.evaluate_models against rsatoolbox's model evaluation on the Kriegeskorte 2008 RDMs
(the same bootstrap draws fed to rsatoolbox's own loops), closed forms, errors and properties."""

import numpy as np
import pytest
import rsatoolbox
import rsatoolbox.inference.evaluate as rsa_evaluate
import scipy.io
import scipy.stats
from rsatoolbox.util.inference_util import _dual_bootstrap, t_tests
from scipy.spatial.distance import squareform

import compute
from compute.measures.evaluation import Resamples, _bootstrap, _full_scores, resample_indices
from tests.support import external_data

RSA92 = external_data("rsa92")
RSA_NAMES = {"spearman": "spearman", "pearson": "corr", "cosine": "cosine", "rho_a": "rho-a"}
OVER = {"dual": ("subjects", "stimuli"), "rdm": ("subjects",), "pattern": ("stimuli",)}


@pytest.fixture(scope="module")
def rsa92():
    """The 4 human IT subjects (sessions averaged) and the 8 model RDMs, condensed, float64."""
    if not (RSA92 / "92_brainRDMs.mat").exists():
        pytest.skip(f"the Kriegeskorte 2008 RDMs are not at {RSA92}")
    brain = scipy.io.loadmat(RSA92 / "92_brainRDMs.mat")["RDMs"]
    subjects = np.stack([np.mean([squareform(brain[0, s, k]["RDM"], checks=False) for k in range(2)], axis=0)
                         for s in range(4)]).astype(np.float64)  # stored in single precision
    found = scipy.io.loadmat(RSA92 / "92_modelRDMs.mat")["Models"][0]
    models = {str(m["name"][0]): squareform(np.asarray(m["RDM"], dtype=np.float64), checks=False) for m in found}
    return subjects, models


@pytest.fixture(scope="module")
def four_models(rsa92):
    """A binary model (ties), monkey IT, a computational one and V1: rsatoolbox's loops are slow."""
    subjects, models = rsa92
    return subjects, {name: models[name] for name in ("animacy", "monkeyIT", "HMAX", "V1")}


def draws(n_boot, seed=3):
    """Seeded draws plus the edge cases: one subject drawn 4 times, a resample of 2 distinct
    stimuli (dropped), one of exactly 3."""
    base = resample_indices(4, 92, n_boot, seed)
    stimuli = base.stimuli.copy()
    stimuli[1] = np.r_[[7] * 46, [9] * 46]
    stimuli[2] = np.r_[[0] * 30, [5] * 30, [91] * 32]
    subjects = base.subjects.copy()
    subjects[0] = 2
    return Resamples(subjects, stimuli)


def rsatoolbox_evaluation(kind, subjects, models, method, indices, monkeypatch):
    """rsatoolbox's eval_dual_bootstrap / eval_bootstrap_rdm / eval_bootstrap_pattern, its own
    loop and functions, with its random sampler replaced by one that replays ``indices``."""
    rows = iter(range(len(indices.stimuli)))

    def both(rdms, rdm_descriptor="index", pattern_descriptor="index"):
        i = next(rows)
        return (rdms.subsample(rdm_descriptor, indices.subjects[i]).subsample_pattern(
            pattern_descriptor, indices.stimuli[i]), indices.subjects[i], indices.stimuli[i])

    def rdm_only(rdms, rdm_descriptor="index"):
        i = next(rows)
        return rdms.subsample(rdm_descriptor, indices.subjects[i]), indices.subjects[i]

    def pattern_only(rdms, pattern_descriptor="index"):
        i = next(rows)
        return rdms.subsample_pattern(pattern_descriptor, indices.stimuli[i]), indices.stimuli[i]

    monkeypatch.setattr(rsa_evaluate, "bootstrap_sample", both)
    monkeypatch.setattr(rsa_evaluate, "bootstrap_sample_rdm", rdm_only)
    monkeypatch.setattr(rsa_evaluate, "bootstrap_sample_pattern", pattern_only)
    data = rsatoolbox.rdm.RDMs(subjects)
    fixed = [rsatoolbox.model.ModelFixed(name, rsatoolbox.rdm.RDMs(rdm[None])) for name, rdm in models.items()]
    n, name = len(indices.stimuli), RSA_NAMES[method]
    if kind == "dual":
        return rsa_evaluate.eval_dual_bootstrap(fixed, data, method=name, N=n)
    if kind == "rdm":
        return rsa_evaluate.eval_bootstrap_rdm(fixed, data, method=name, N=n)
    return rsa_evaluate.eval_bootstrap_pattern(fixed, data, method=name, N=n)


@pytest.mark.parametrize("kind, method", [("dual", "spearman"), ("rdm", "spearman"), ("dual", "pearson"),
                                          ("pattern", "cosine"), ("pattern", "rho_a")])
def test_evaluate_models_is_rsatoolbox_s_on_the_same_draws(four_models, kind, method, monkeypatch):
    subjects, models = four_models
    indices = draws(8)
    theirs = rsatoolbox_evaluation(kind, subjects, models, method, indices, monkeypatch)
    ours = compute.evaluate_models(subjects, models, method, over=OVER[kind], indices=indices)
    m = len(models)
    # Each resample's mean score of every model and its noise ceiling, per kind of resample.
    samples, valid = _bootstrap(*_arrays(subjects, models, method), indices, OVER[kind], method, None)
    evaluations, ceilings = np.asarray(theirs.evaluations), np.asarray(theirs.noise_ceiling)
    for k, name in enumerate(("both", "subjects", "stimuli") if kind == "dual" else OVER[kind]):
        expected = evaluations[..., 0, 0, k] if kind == "dual" else evaluations
        expected_ceiling = ceilings[:, :, 0, k] if kind == "dual" else ceilings
        np.testing.assert_allclose(samples[name][0][valid], expected[valid], rtol=0, atol=1e-9)
        np.testing.assert_allclose(samples[name][1][valid], expected_ceiling.T[valid], rtol=0, atol=1e-9)
        assert np.isnan(expected[~valid]).all()
    assert ours.n_boot == valid.sum() == (8 if kind == "rdm" else 7)
    # The corrected variances (dual bootstrap: rsatoolbox's _dual_bootstrap), the dof, the tests.
    assert ours.dof == theirs.dof
    np.testing.assert_allclose(ours.sem ** 2, theirs.model_var, rtol=1e-9, atol=1e-15)
    p = t_tests(ours.scores[None, :], theirs.diff_var, theirs.dof)
    off = ~np.eye(m, dtype=bool)
    np.testing.assert_allclose(ours.pairwise_p_raw[off], p[off], rtol=0, atol=1e-9)
    variances = np.asarray(theirs.variances)
    if kind == "dual":
        var_lower = _dual_bootstrap(variances[:, m, m], len(subjects), 92)
    elif kind == "pattern":
        var_lower = variances[m, m] * 92 / 91
    else:  # eval_bootstrap_rdm keeps only the models' covariance: the ceiling's from its samples
        var_lower = np.var(ceilings[0], ddof=1) * 4 / 3
    assert ours.ceiling_p == pytest.approx(scipy.stats.t.sf(ours.noise_ceiling.lower / np.sqrt(var_lower),
                                                            theirs.dof), abs=1e-9)
    # Point estimates on all data: rsatoolbox's eval_fixed and boot_noise_ceiling.
    data = rsatoolbox.rdm.RDMs(subjects)
    fixed = [rsatoolbox.model.ModelFixed(n, rsatoolbox.rdm.RDMs(r[None])) for n, r in models.items()]
    np.testing.assert_allclose(ours.scores, rsa_evaluate.eval_fixed(fixed, data, method=RSA_NAMES[method])
                               .evaluations[0].mean(axis=1), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.noise_ceiling, rsatoolbox.inference.boot_noise_ceiling(
        data, method=RSA_NAMES[method]), rtol=0, atol=1e-9)


def _arrays(subjects, models, method):
    A = np.stack(list(models.values()))
    return subjects, A, _full_scores(A, subjects, method)


def synthetic(seed, s=5, n=12, m=3):
    """S subjects' RDMs sharing a structure, and M models: noisy copies of it."""
    rng = np.random.default_rng(seed)
    k = n * (n - 1) // 2
    shared = rng.random(k)
    subjects = shared + 0.5 * rng.random((s, k))
    models = {f"model {i}": shared + (0.3 + i) * rng.random(k) for i in range(m)}
    return subjects, models


@pytest.mark.parametrize("method, pooled", [
    ("spearman", lambda V: scipy.stats.rankdata(V, axis=1).mean(axis=0)),
    ("pearson", lambda V: scipy.stats.zscore(V, axis=1).mean(axis=0)),
])
def test_the_pooled_reference_scores_the_upper_ceiling(method, pooled):
    """Closed forms: the pool of all subjects scores the upper bound; a model and its copy do not
    differ (p = 1); the interval is the score +- t sem; normalised = score / lower bound."""
    subjects, models = synthetic(0)
    models = {"pool": pooled(subjects), "copy of the pool": pooled(subjects), **models}
    ev = compute.evaluate_models(subjects, models, method, n_boot=50)
    assert ev.scores[0] == pytest.approx(ev.noise_ceiling.upper, abs=1e-12)
    assert ev.pairwise_p_raw[0, 1] == ev.pairwise_p[0, 1] == 1.0
    half = scipy.stats.t.ppf(0.975, ev.dof) * ev.sem
    np.testing.assert_allclose(ev.ci, np.stack([ev.scores - half, ev.scores + half], axis=1))
    np.testing.assert_allclose(ev.normalised, ev.scores / ev.noise_ceiling.lower)
    assert ev.names == tuple(models) and ev.dof == 4 and ev.over == ("subjects", "stimuli")


@pytest.mark.parametrize("seed", range(4))
def test_pairwise_p_are_symmetric_and_the_correction_only_raises_them(seed):
    subjects, models = synthetic(seed, s=4, n=10, m=5)
    ev = compute.evaluate_models(subjects, models, n_boot=40, seed=seed)
    for p in (ev.pairwise_p, ev.pairwise_p_raw):
        np.testing.assert_array_equal(p, p.T)
        np.testing.assert_array_equal(np.diag(p), 1.0)
        assert ((p > 0) & (p <= 1)).all()
    assert (ev.pairwise_p >= ev.pairwise_p_raw).all()
    assert (ev.ci[:, 0] <= ev.scores).all() and (ev.scores <= ev.ci[:, 1]).all()
    assert 0 < ev.ceiling_p < 1


def test_seeds_reproduce_and_name_the_draws():
    subjects, models = synthetic(1)
    first = compute.evaluate_models(subjects, models, n_boot=30, seed=7)
    again = compute.evaluate_models(subjects, models, n_boot=30, seed=7)
    given = compute.evaluate_models(subjects, models, indices=resample_indices(5, 12, 30, 7))
    other = compute.evaluate_models(subjects, models, n_boot=30, seed=8)
    for a, b in ((first, again), (first, given)):
        np.testing.assert_array_equal(a.ci, b.ci)
        np.testing.assert_array_equal(a.pairwise_p, b.pairwise_p)
    assert not np.array_equal(first.ci, other.ci)


def test_one_subject_resamples_stimuli_only_and_square_rdms_are_accepted():
    subjects, models = synthetic(2, s=1)
    square = np.stack([squareform(v) for v in subjects])
    ev = compute.evaluate_models(square, models, "cosine", n_boot=20, over=("stimuli",))
    assert np.isnan(ev.noise_ceiling.lower) and np.isnan(ev.ceiling_p) and np.isnan(ev.normalised).all()
    assert ev.dof == 11 and np.isfinite(ev.ci).all()
    none = compute.evaluate_models(subjects, models, "euclidean", n_boot=0, over=("stimuli",))
    assert np.isnan(none.ci).all() and np.isnan(none.pairwise_p[0, 1]) and none.n_boot == 0


def test_bad_input_is_refused_with_the_reason():
    subjects, models = synthetic(3)
    refusals = [
        (dict(reference=subjects[:1]), "resampling subjects needs at least 2"),
        (dict(reference=subjects[:, :3], models={"a": np.arange(3.0)}), "resampling stimuli needs at least 4"),
        (dict(models={"a": np.arange(15.0)}), r"models\['a'\] is an RDM over 6 stimuli but the reference is over 12"),
        (dict(method="procrustes"), "unknown RDM comparison method"),
        (dict(method="tau_b"), "evaluate_models supports the methods"),
        (dict(n_boot=1), "n_boot must be 0"),
        (dict(over=("runs",)), "over must name what is resampled"),
        (dict(models={}), "non-empty dict"),
        (dict(indices=Resamples(np.zeros((4, 5), int), np.zeros((4, 11), int))), r"indices.stimuli must be \(n_boot, 12\)"),
        (dict(indices=Resamples(np.zeros((4, 5), int), np.zeros((4, 12), int))), "only 0 of 4 resamples drew 3"),
    ]
    bad = subjects.copy()
    bad[2, 5] = np.nan
    refusals.append((dict(reference=bad), r"reference\[2\] has NaN"))
    nan_model = dict(models)
    nan_model["model 1"] = np.where(np.arange(66) == 3, np.inf, models["model 1"])
    refusals.append((dict(models=nan_model), r"models\['model 1'\] has NaN or inf"))
    for change, message in refusals:
        kwargs = dict(reference=subjects, models=models, n_boot=20) | change
        with pytest.raises(ValueError, match=message):
            compute.evaluate_models(**kwargs)
