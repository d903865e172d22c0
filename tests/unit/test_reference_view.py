"""The Reference RDM view's pure parts on the built-in zoo: plan, draw, code and messages."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from compute.engine import artifacts
from compute.engine.store import ArtifactStore
from compute.sources.references import save_reference
from dashboard.selection import Selection

PAIR = ("cnn-w8-s0-e25", "mlp-w16-s0-e25")


@pytest.fixture
def view(zoo_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(cache_dir.parent / "uploads"))
    from dashboard.views import reference

    return reference


@pytest.fixture
def digits(zoo_dir):
    from dashboard import services

    return services.stimuli("digits")


def _store(stimuli, subjects=2, name="brain"):
    rng = np.random.default_rng(subjects)
    return save_reference(np.stack([pdist(rng.normal(size=(len(stimuli), 3))) for _ in range(subjects)]), name, stimuli)


def test_without_a_reference_nothing_is_computed_and_the_figure_asks_for_one(view):
    specs, targets, context, search = view.plan(Selection(), None, "euclidean", "spearman", "penultimate", "100")
    assert (specs, targets, search) == ({}, [], "")
    figures = view.draw({**context, "selection": Selection().url_params()}, {})
    assert len(figures) == 3
    for figure in figures:
        assert figure["data"] == [] and "upload one" in figure["layout"]["annotations"][0]["text"]


def test_plan_compares_each_models_default_layers_in_one_artifact(view, digits):
    info = _store(digits)
    selection = Selection(names=PAIR)
    specs, targets, context, search = view.plan(selection, info.key, "cosine", "pearson", "default", "100")
    fit, evaluation = specs["fit"], specs["eval"]
    assert targets == ["fit", "eval"] and fit.kind == "reference_fit" and evaluation.kind == "reference_eval"
    assert fit.params == {"reference": info.key, "method": "pearson", "n_boot": 0, "seed": 0}  # point estimates
    assert evaluation.params == {"reference": info.key, "method": "pearson", "n_boot": 100, "seed": 0}
    assert evaluation.inputs == fit.inputs
    models = {m.key: m.name for m in selection.models}
    rows = [(models[key], layer, group) for key, layer, group in context["rows"]]
    assert [group for *_, group in rows] == ["depth 1", "depth 2", "depth 3"] * 2
    assert {layer for _, layer, _ in rows} >= {"penultimate"}
    assert [(s.params["method"], s.inputs[0].params["layer"]) for s in fit.inputs] == \
        [("cosine", layer) for _, layer, _ in rows]
    assert search == f"?compare=pearson&layers=default&rdm=cosine&ref={info.key}"
    assert context["reference"] == {"name": "brain", "subjects": 2}
    specs, targets, context, _ = view.plan(selection, info.key, "euclidean", "spearman", "penultimate", "0")
    assert sorted(row[1:] for row in context["rows"]) == [["penultimate", "cnn"], ["penultimate", "mlp"]]
    assert targets == ["fit"] and specs["fit"].params["n_boot"] == 0
    # a comparison without a batched bootstrap keeps each candidate's own interval over stimuli
    specs, targets, _, _ = view.plan(selection, info.key, "euclidean", "kendall_tau_a", "penultimate", "100")
    assert targets == ["fit", "boot"] and specs["boot"].params["n_boot"] == 100
    assert view.reference_options(digits) == [{"label": f"brain (2 subjects, {info.key[:8]})", "value": info.key}]


def test_plan_refuses_unknown_and_mismatched_references(view, digits):
    with pytest.raises(ValueError, match="no reference RDM 000000000000… is stored"):
        view.plan(Selection(), "0" * 64, "euclidean", "spearman", "default", "0")
    with pytest.raises(ValueError, match="not a reference key"):
        view.plan(Selection(), "../secret", "euclidean", "spearman", "default", "0")
    other = type("Other", (), {"name": "other", "key": "o" * 64, "__len__": lambda self: len(digits)})()
    info = _store(other, name="elsewhere")
    with pytest.raises(ValueError, match=r"'elsewhere' is over stimulus set 'other' \(500 stimuli\), not the "
                                         r"selected 'digits' \(500 stimuli\)"):
        view.plan(Selection(), info.key, "euclidean", "spearman", "default", "0")
    assert view.reference_options(digits) == []


def test_draw_ranks_the_bars_and_says_which_way_is_better(view, digits):
    info = _store(digits)
    selection = Selection(names=PAIR)
    _, _, context, _ = view.plan(selection, info.key, "euclidean", "euclidean", "penultimate", "100")
    context = {**context, "selection": selection.url_params()}
    fit = np.array([[2.0, np.nan, np.nan, 1.0, 0.5], [1.0, np.nan, np.nan, 1.0, 0.5]])
    boot = np.array([[2.0, 1.5, 2.5, 1.0, 0.5], [1.0, 0.8, 1.1, 1.0, 0.5]])
    early, pairs, _ = view.draw(context, {"fit": fit})  # the point estimates, before the bootstrap
    assert view.PENDING in early.layout.title.text
    assert "pending" in pairs["layout"]["annotations"][0]["text"]
    figure, pairs, scatter = view.draw(context, {"fit": fit, "boot": boot})
    names = {m.key: m.name for m in selection.models}
    labels = [f"{names[key]} · penultimate" for key, *_ in context["rows"]]
    assert list(figure.layout.yaxis.categoryarray) == labels[::-1]  # a distance: the smaller first
    assert "lower = more similar" in figure.layout.xaxis.title.text
    assert figure.layout.yaxis.title.text == "model · layer (best at the top)"
    assert (figure.layout.shapes[0].x0, figure.layout.shapes[0].x1) == (0.5, 1.0)
    assert "2 subjects" in figure.layout.title.text and "100 resamples" in figure.layout.title.text
    plus = {trace.y[0]: trace.error_x.array[0] for trace in figure.data}
    assert [plus[label] for label in labels] == [pytest.approx(0.5), pytest.approx(0.1)]
    assert "Pairwise tests need" in pairs["layout"]["annotations"][0]["text"]  # no evaluation given here
    assert scatter.layout.xaxis.title.text == "top-1 accuracy on the stimulus set (%)"
    assert sorted(y for trace in scatter.data for y in trace.y) == [1.0, 2.0]
    # A distance is never divided by its ceiling: asked for, the bars stay raw and say so.
    ceiling = fit.copy()
    ceiling[:, 3] = 2.0  # a positive lower bound it could be divided by
    raw = view.draw({**context, "view": {**context["view"], "score": "ceiling-normalised"}},
                    {"fit": ceiling, "boot": boot})[0]
    assert sorted(x for trace in raw.data for x in trace.x) == [1.0, 2.0]
    assert "mean over subjects (lower = more similar)" in raw.layout.xaxis.title.text


def test_the_evaluation_adds_intervals_pairwise_tests_and_normalised_scores(view, digits):
    info = _store(digits)
    selection = Selection(names=PAIR)
    _, _, context, _ = view.plan(selection, info.key, "euclidean", "spearman", "penultimate", "100", None, "top 20",
                                 "ceiling-normalised")
    context = {**context, "selection": selection.url_params()}
    fit = np.array([[0.2, np.nan, np.nan, 0.4, 0.5], [0.3, np.nan, np.nan, 0.4, 0.5]])
    evaluation = np.array([[0.2, 0.1, 0.3, 0.5, 1.0, 0.01], [0.3, 0.25, 0.35, 0.75, 0.01, 1.0]])
    bars, pairs, _ = view.draw(context, {"fit": fit, "eval": evaluation})
    shown = {trace.name: list(trace.x) for trace in bars.data}
    first, second = (row[2] for row in context["rows"])
    assert shown == {first: [pytest.approx(0.5)], second: [pytest.approx(0.75)]}  # divided by the ceiling's lower
    assert (bars.layout.shapes[0].x0, bars.layout.shapes[0].x1) == (1.0, 1.25)
    assert "noise ceiling's lower bound" in bars.layout.xaxis.title.text
    assert "resamples of subjects and stimuli" in bars.layout.title.text
    (heat,) = pairs.data
    assert np.isnan(heat.z[0][0]) and heat.z[0][1] == 1.0 and heat.z[1][0] == -1.0  # the best (0.3) beats the other
    assert "Benjamini-Hochberg corrected over all 1 pairs" in pairs.layout.title.text
    assert heat.colorbar.title.text == "difference (p < 0.05)"


def test_code_reproduces_the_artifact(view, digits, tmp_path):
    info = _store(digits)
    selection = Selection(names=PAIR)
    # 100: the fewest bootstrap resamples the view offers
    specs, _, context, _ = view.plan(selection, info.key, "euclidean", "spearman", "penultimate", "100")
    store = ArtifactStore(tmp_path / "artifacts")
    for name in ("fit", "eval"):
        artifacts.ensure(specs[name], store)
    namespace = {}
    exec(view.code({**context, "selection": selection.url_params()}), namespace)  # noqa: S102 - our own snippet
    np.testing.assert_allclose(namespace["fit"], store.get("reference_fit", specs["fit"].key)[0], rtol=1e-6)
    evaluation, stored = namespace["evaluation"], store.get("reference_eval", specs["eval"].key)[0]
    np.testing.assert_allclose(np.column_stack([evaluation.scores, evaluation.ci, evaluation.normalised,
                                                evaluation.pairwise_p]), stored, rtol=1e-5)


def test_upload_messages(view):
    done = view.upload_message({"ok": True, "reference": "k", "name": "brain", "subjects": 3, "stimuli": 500,
                                "stimulus_set": "digits"})
    assert done.children == "Reference ready: brain (3 subject(s) over 500 stimuli of digits)"
    assert "status-done" in done.className and type(done).__name__ == "Alert"  # a notice (Mantine Alert, role alert)
    refused = view.upload_message({"ok": False, "error": "the reference has shape (4, 4)"})
    assert refused.children == "Refused: the reference has shape (4, 4)" and "alert-error" in refused.className
    assert view.upload_message(None) == ""


def test_rows_of_other_references_join_the_ranking_as_bars(view, digits, tmp_path):
    brain = _store(digits, subjects=2, name="brain")
    rng = np.random.default_rng(9)
    models = save_reference(np.stack([pdist(rng.normal(size=(len(digits), 3))) for _ in range(2)]), "models", digits,
                            ["monkeyIT", "V1"])
    assert view.candidate_options(digits, brain.key) == [
        {"label": "models · monkeyIT", "value": f"{models.key}:0"}, {"label": "models · V1", "value": f"{models.key}:1"}]
    assert [o["label"] for o in view.candidate_options(digits, models.key)] == ["brain · subject 1", "brain · subject 2"]
    selection = Selection(names=PAIR[:1])
    specs, _, context, search = view.plan(selection, brain.key, "euclidean", "spearman", "penultimate", "100",
                                          [f"{models.key}:1"])
    assert specs["fit"].params["candidates"] == [[models.key, 1]] and len(specs["fit"].inputs) == 1
    assert context["candidates"] == [[models.key, 1, "models · V1"]]
    assert f"cand={models.key}%3A1" in search
    store = ArtifactStore(tmp_path / "artifacts")
    artifacts.ensure(specs["fit"], store)
    fit = store.get("reference_fit", specs["fit"].key)[0]
    context = {**context, "selection": selection.url_params()}
    figure, _, _ = view.draw(context, {"fit": fit})
    traces = {trace.name: trace for trace in figure.data}
    assert sorted(traces) == ["cnn", "reference RDM"]
    assert list(traces["reference RDM"].y) == ["models · V1"] and traces["reference RDM"].x[0] == pytest.approx(fit[1, 0])
    namespace = {}
    exec(view.code(context), namespace)  # noqa: S102 - our own snippet
    np.testing.assert_allclose(namespace["fit"], fit, rtol=1e-6)
    _, _, twice, _ = view.plan(selection, brain.key, "euclidean", "spearman", "penultimate", "100",
                               [f"{models.key}:1", f"{models.key}:1"])
    assert [c[2] for c in twice["candidates"]] == ["models · V1", "models · V1 (row 2)"]
    for chosen, problem in [([f"{brain.key}:0"], "cannot be ranked against this reference"),
                            ([f"{models.key}:2"], "cannot be ranked against this reference"),
                            (["../etc:1"], "is not a reference RDM row"),
                            ([{"key": models.key}], "is not a reference RDM row"),
                            (["0" * 64 + ":0"], "no reference RDM 000000000000… is stored"),
                            ([f"{models.key}:0"] * 101, "at most 100 reference RDM rows")]:
        with pytest.raises(ValueError, match=problem):
            view.plan(selection, brain.key, "euclidean", "spearman", "penultimate", "100", chosen)


def test_upload_message_lists_the_subjects_names(view):
    done = view.upload_message({"ok": True, "reference": "k", "name": "92_brainRDMs", "subjects": 4, "stimuli": 92,
                                "stimulus_set": "upload:x", "subject_names": ["hIT | BE", "hIT | KO"]})
    assert done.children == "Reference ready: 92_brainRDMs (4 subject(s) over 92 stimuli of upload:x): hIT | BE, hIT | KO"
