"""The one interface over every kind of model: a torch model through it gives what the
extraction itself gives; an unknown source is refused by name."""
import dataclasses

import numpy as np
import pytest

from compute.sources.activations import extract, predict
from compute.sources.layers import list_layers
from compute.sources.models import list_models, load_model
from compute.sources.representations import model_activations, model_scores, open_model, resolve
from compute.sources.stimuli import get_stimulus_set


@pytest.fixture
def zoo_model(zoo_dir, cache_dir):
    return list_models("digits")[0]


def test_a_torch_model_through_the_interface_is_the_extraction_itself(zoo_model):
    stimuli = get_stimulus_set("digits")
    module = load_model(zoo_model)
    model = open_model(zoo_model.name)
    assert [layer.name for layer in model.layers()] == [layer.name for layer in list_layers(module)]
    penultimate = resolve(model, "penultimate")
    assert penultimate == next(layer.name for layer in list_layers(module) if layer.penultimate)
    direct = extract(module, stimuli.images, [penultimate], pooling="avg")[penultimate]
    (through,) = model_activations(zoo_model.name, stimuli, ["penultimate"], pooling="avg")
    np.testing.assert_array_equal(through, direct)
    assert model.width(stimuli, penultimate, "avg") == direct.shape[1]
    np.testing.assert_array_equal(model_scores(zoo_model.key, stimuli), predict(module, stimuli.images))


def test_an_unknown_source_is_named(zoo_model):
    with pytest.raises(ValueError, match="unknown source 'telepathy'"):
        open_model(dataclasses.replace(zoo_model, source="telepathy"))
