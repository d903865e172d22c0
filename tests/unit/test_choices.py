"""Every method list the UI offers comes from compute's registries: each offered name exists
there, and whether a number is a distance or a similarity is the registry's word."""
import numpy as np
import pytest

from compute.measures.registry import COMPARE_METHODS, MDS_METHODS, MEASURES, RDM_METHODS, REPEATED_RDM_METHODS
from compute.sources.models import ModelInfo
from dashboard.view_parts import choices
from dashboard.views import confusion, curves, input_rdm, layer_grid, model_space, reference, training

REGISTRIES = {"rdm": RDM_METHODS, "compare": COMPARE_METHODS, "measure": MEASURES, "mds": MDS_METHODS}
VIEWS = (confusion, curves, input_rdm, layer_grid, model_space, reference, training)


def test_the_choices_are_the_registries_names_in_their_order():
    assert choices.RDM_CHOICES == tuple(RDM_METHODS)
    assert choices.COMPARE_CHOICES == tuple(COMPARE_METHODS)
    assert choices.MEASURE_CHOICES == tuple(MEASURES)
    assert choices.MDS_CHOICES == tuple(MDS_METHODS)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__.rsplit(".", 1)[-1])
def test_a_view_offers_the_shared_lists_never_its_own(view):
    for name in ("RDM_CHOICES", "COMPARE_CHOICES", "MEASURE_CHOICES", "MDS_CHOICES"):
        if hasattr(view, name):
            assert getattr(view, name) is getattr(choices, name), f"{view.__name__}.{name} is re-typed"


@pytest.mark.parametrize("view", [curves, model_space, reference], ids=lambda v: v.__name__.rsplit(".", 1)[-1])
def test_a_views_url_choices_are_names_in_the_registries(view):
    """A view may offer a subset on purpose; never a name compute does not know."""
    for key, offered in view.CHOICES.items():
        if key in REGISTRIES:
            assert set(offered) <= set(REGISTRIES[key]), (view.__name__, key)
            assert view.DEFAULTS[key] in offered


@pytest.mark.parametrize("method", choices.COMPARE_CHOICES)
def test_the_model_rdm_says_distance_or_one_minus_similarity_as_the_registry_does(method):
    label = model_space.dissimilarity_label(method)
    title = COMPARE_METHODS[method].title
    assert label == (title if COMPARE_METHODS[method].kind == "distance" else f"1 − {title}")


@pytest.mark.parametrize("method", choices.COMPARE_CHOICES)
def test_the_reference_ranking_reads_lower_or_higher_as_the_registry_does(method):
    model = ModelInfo("m", "k" * 4, "mlp", "zoo", {}, 0.9, None, 10, {})
    view = {"compare": method, "rdm": "euclidean", "boot": "0", "show": "top 20", "score": "raw", "layers": "penultimate"}
    figure, _, _ = reference.figures([(model, "penultimate", "penultimate")], {"fit": np.zeros((1, 5))}, view,
                                     {"name": "brain", "subjects": 1})
    better = "lower" if COMPARE_METHODS[method].kind == "distance" else "higher"
    assert f"({better} = more similar)" in figure.layout.xaxis.title.text
    assert "<sup>input RDMs: Euclidean distance;" in figure.layout.title.text  # in words, not "euclidean"


def test_figures_name_a_method_by_its_registry_title():
    assert choices.method_words("measure", "cka_linear") == "Linear CKA"
    assert choices.method_words("compare", "spearman") == "Spearman ρ"
    assert choices.method_words("rdm", "crossnobis") == "Crossnobis distance"  # repeated measurements too
    assert choices.method_words("mds", "smacof") == MDS_METHODS["smacof"].title


@pytest.mark.parametrize("measure", choices.MEASURE_CHOICES)
def test_training_axes_read_lower_or_higher_as_the_registry_does(measure):
    better = "higher" if MEASURES[measure].kind == "similarity" else "lower"
    assert training._axis(measure) == f"{MEASURES[measure].title} ({better} = more alike)"  # in words, not the code name


@pytest.mark.parametrize("measure", choices.MEASURE_CHOICES)
def test_the_layer_grid_snippet_says_how_an_asymmetric_grid_reads(measure):
    said = layer_grid._direction(measure)
    assert bool(said) == (not MEASURES[measure].symmetric)


FAMILIES = {"rdm": RDM_METHODS, "repeated": REPEATED_RDM_METHODS, **REGISTRIES}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_method_has_a_name_in_words_a_definition_and_a_source(family):
    table = FAMILIES[family]
    for name, method in table.items():
        assert method.title and method.description and method.citation, (family, name)
    assert len({m.title for m in table.values()}) == len(table), f"two {family} methods share a name in words"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_options_show_the_names_in_words_with_the_definition_on_hover(family):
    table = FAMILIES[family]
    offered = choices.options(family)
    assert [o["value"] for o in offered] == list(table)
    assert [(o["label"], o["title"]) for o in offered] == [(m.title, m.description) for m in table.values()]


def test_the_info_line_says_name_direction_range_invariances_and_the_card_definition_and_source():
    said = choices.info_text("measure", "procrustes")
    for part in ("Procrustes shape distance (procrustes)", "distance: lower = more alike", "range [0, π/2]",
                 "unchanged by: orthogonal, isotropic scaling, translation"):
        assert part in said
    card = [text.children for text in choices.card("measure", "procrustes")]
    assert card == ["Procrustes shape distance (procrustes)", MEASURES["procrustes"].description,
                    "source: Williams et al. 2021"]
    assert [text.children for text in choices.card("measure", "none")] == ["No method chosen."]
    assert "higher = more different" in choices.info_text("rdm", "euclidean")
    assert "range [0, ∞)" in choices.info_text("rdm", "euclidean")
    assert "not symmetric" in choices.info_text("measure", "pwcca")
    assert choices.info_text("measure", "none") == choices.info_text("measure", ["a list"]) == ""


def test_the_measures_page_rows_are_the_registries():
    from dashboard.views import measures

    rows = measures.rows()
    assert [family for family, _, _ in rows] == list(choices.FAMILIES)
    for family, _, methods in rows:
        assert methods == [choices.facts(family, name) for name in FAMILIES[family]]
    table = str(measures.table())
    assert table.count("measures-row") == sum(len(t) for t in FAMILIES.values())
