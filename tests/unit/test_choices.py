"""Every method list the UI offers comes from compute's registries: each offered name exists
there, and whether a number is a distance or a similarity is the registry's word."""
import numpy as np
import pytest

from compute.measures.registry import COMPARE_METHODS, MDS_METHODS, MEASURES, RDM_METHODS
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
    assert (label == "distance") == (COMPARE_METHODS[method].kind == "distance")
    assert label in ("distance", f"1 − {method}")


@pytest.mark.parametrize("method", choices.COMPARE_CHOICES)
def test_the_reference_ranking_reads_lower_or_higher_as_the_registry_does(method):
    model = ModelInfo("m", "k" * 4, "mlp", "zoo", {}, 0.9, None, 10, {})
    view = {"compare": method, "rdm": "euclidean", "boot": "0", "show": "top 20", "score": "raw", "layers": "penultimate"}
    figure, _, _ = reference.figures([(model, "penultimate", "penultimate")], {"fit": np.zeros((1, 5))}, view,
                                     {"name": "brain", "subjects": 1})
    better = "lower" if COMPARE_METHODS[method].kind == "distance" else "higher"
    assert f"({better} = more similar)" in figure.layout.xaxis.title.text


@pytest.mark.parametrize("measure", choices.MEASURE_CHOICES)
def test_training_axes_read_lower_or_higher_as_the_registry_does(measure):
    better = "higher" if MEASURES[measure].kind == "similarity" else "lower"
    assert training._axis(measure) == f"{measure} ({better} = more alike)"


@pytest.mark.parametrize("measure", choices.MEASURE_CHOICES)
def test_the_layer_grid_snippet_says_how_an_asymmetric_grid_reads(measure):
    said = layer_grid._direction(measure)
    assert bool(said) == (not MEASURES[measure].symmetric)
