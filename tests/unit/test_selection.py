"""The left panel's selection: URL state, tag filters, ordering; the estimate behind the
Compute button; the lasso and hover helpers of the views that use it."""
from types import SimpleNamespace

import pytest
from dash import no_update

from compute.engine import artifacts
from compute.engine.limits import missing_work
from dashboard import url_codec
from dashboard.selection import DEFAULTS, Selection, filter_options, matches, need_models, ordered, parse_where
from dashboard.views.input_rdm import hovered_stimulus
from dashboard.views.model_space import lassoed_models


def _model(name, accuracy, **tags):
    return SimpleNamespace(name=name, accuracy=accuracy, tags=tags, architecture=tags.get("arch", "mlp"),
                           source="zoo", key=name + "-key")


def test_the_selection_round_trips_through_the_url_and_ignores_unknown_values():
    selection = Selection("digits", "family:cnn;group:trained", ("a", "b"), "width", "avg")
    assert Selection.from_search(selection.search()) == selection
    assert Selection().search() == ""
    odd = Selection.from_search("?pooling=weird&group=nope&models=,a,,b")
    assert (odd.pooling, odd.group, odd.names) == (DEFAULTS["pooling"], DEFAULTS["group"], ("a", "b"))


def test_tag_filters_are_alternatives_within_a_tag_and_all_required_across_tags():
    filters = parse_where("family:cnn;family:mlp;group:trained")
    assert filters == {"family": {"cnn", "mlp"}, "group": {"trained"}}
    assert matches(_model("x", 0.5, family="mlp", group="trained"), filters)
    assert not matches(_model("y", 0.5, family="mlp", group="untrained"), filters)
    assert parse_where("") == {} and parse_where("nonsense") == {}


def test_models_are_ordered_by_accuracy_unknown_last_and_filter_options_are_counted():
    models = [_model("b", 0.9, family="cnn"), _model("a", None, family="cnn"), _model("c", 0.1, family="mlp", width=8)]
    assert [m.name for m in ordered(models)] == ["c", "b", "a"]
    options = filter_options(models)
    assert {"label": "family: cnn (2)", "value": "family:cnn"} in options
    assert [o["value"] for o in options][-2:] == ["width:8", "source:zoo"]  # in FILTER_TAGS order


def test_too_few_models_is_a_clear_error(zoo_dir):
    selection = Selection(names=("mlp-w8-s0-e25",))
    with pytest.raises(ValueError, match="at least 3 models and the selection has 1"):
        need_models(selection, 3)
    assert [m.name for m in selection.models] == ["mlp-w8-s0-e25"]
    assert selection.choices == selection.models


def test_url_queries_join_with_the_later_value_winning():
    assert url_codec.join("?a=1&b=2", "?b=3", "") == "?a=1&b=3"
    assert url_codec.join("", None) == ""


def test_missing_work_counts_uncached_artifacts_forward_passes_and_bytes(zoo_dir):
    from compute.sources.stimuli import get_stimulus_set

    stimuli = get_stimulus_set("digits")
    names = ["mlp-w8-s0-e25", "mlp-w8-s1-e25", "cnn-w4-s0-e25"]
    from compute.sources.models import get_model_info

    keys = [get_model_info(n).key for n in names]
    spec = artifacts.mds_spec(artifacts.model_rdm_spec(keys, stimuli))
    cached = set()
    n = len(stimuli)
    shapes = {s.key: (n, 8) for s in spec.walk() if s.kind == "activations"}
    work = missing_work([spec], lambda s: s.key in cached, lambda s: shapes.get(s.key))
    assert (work.artifacts, work.forward_passes) == (3 + 3 + 1 + 1, 3)
    assert work.bytes > 3 * n * n * 4  # three RDMs' N x N working matrices at least
    cached.update(s.key for s in spec.walk())
    assert missing_work([spec], lambda s: s.key in cached, lambda s: shapes.get(s.key)).artifacts == 0
    assert "3 forward passes" in work.describe()


def test_a_lasso_gives_the_names_of_its_points_and_an_empty_one_changes_nothing():
    assert lassoed_models({"points": [{"customdata": "a"}, {"customdata": "b"}, {"customdata": "a"}]}) == ["a", "b"]
    assert lassoed_models({"points": []}) is no_update and lassoed_models(None) is no_update


def test_hovering_a_stimulus_gives_its_thumbnail_and_name(zoo_dir):
    selection = Selection()
    src, caption = hovered_stimulus({"points": [{"customdata": 3}]}, selection)
    stimuli = selection.stimuli
    assert src.startswith("data:image/png;base64,") and src == stimuli.thumbnails(64)[3]
    assert caption == f"{stimuli.ids[3]} (class {stimuli.class_names[stimuli.labels[3]]})"
    assert hovered_stimulus({"points": [{"customdata": 10**6}]}, selection) == (no_update, no_update)


def test_the_panel_shows_only_the_parts_a_page_reads():
    from dashboard.selection import EVERY_PART, hidden_parts

    assert EVERY_PART == tuple(DEFAULTS)
    assert hidden_parts(()) == (True, True, True, True, True, True)  # no panel at all
    assert hidden_parts(("set", "pooling")) == (False, False, True, True, True, False)
    with pytest.raises(ValueError, match="no selection parts"):
        hidden_parts(("set", "colour"))


def _page(view, selection) -> str:
    import json

    from plotly.utils import PlotlyJSONEncoder

    return json.dumps(view.layout(None, selection), cls=PlotlyJSONEncoder, sort_keys=True)


def test_every_view_declares_what_it_reads_of_the_selection_and_its_page_ignores_the_rest(zoo_dir):
    """A part a view does not declare (so the panel hides it) leaves its page as it is."""
    from dashboard.app import VIEWS
    from dashboard.selection import EVERY_PART

    other = {"where": "family:cnn", "models": "cnn-w4-s0-e25,cnn-w2-s0-e25,mlp-w8-s0-e25", "group": "seed",
             "pooling": "avg"}  # "set": the zoo has one stimulus set
    for view in VIEWS:
        assert set(view.SELECTION) <= set(EVERY_PART), view.__name__
        unread = [part for part in other if part not in view.SELECTION]
        if unread:
            changed = Selection.from_url_params({part: other[part] for part in unread})
            assert _page(view, changed) == _page(view, Selection()), view.__name__
