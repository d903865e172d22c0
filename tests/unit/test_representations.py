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


def test_the_zoo_s_flop_count_from_hooks_is_torch_s_counter(zoo_dir, cache_dir):
    """Each zoo architecture's count (hooks on its convolutions and linear layers, no torch._dynamo
    import) equals torch's FlopCounterMode; torchvision CNNs too, though they keep the counter."""
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    from compute.sources.representations import _layer_flops

    def counted(module, image):
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            module.eval()(image)
        return counter.get_total_flops()

    stimuli = get_stimulus_set("digits")
    image = torch.as_tensor(stimuli.images[:1]).float()
    one_per_architecture = {(m.architecture, str(m.hparams)): m for m in list_models("digits") if m.source == "zoo"}
    assert {architecture for architecture, _ in one_per_architecture} == {"mlp", "cnn"}
    for info in one_per_architecture.values():
        model = open_model(info.name)
        assert model.flops(stimuli) == counted(model.module, image) > 0, info.name
    grouped = torchvision.models.resnet18(num_classes=10), torchvision.models.mobilenet_v2(num_classes=10)
    for module in grouped:  # strided, grouped and depthwise convolutions
        image = torch.randn(1, 3, 40, 40)
        assert _layer_flops(module.eval(), image) == counted(module, image)
