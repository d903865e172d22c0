"""Activation extraction: equals a manual forward, robust to in-place ops, pooling, cancel."""
import numpy as np
import pytest
import torch
import torchvision

from compute.sources.zoo_architectures import build_architecture, family_hparams
from compute.sources.activations import Cancelled, extract, predict, projection_matrix


def mlp(seed=0):
    torch.manual_seed(seed)
    return build_architecture("mlp", **family_hparams("mlp", 8, (1, 8, 8), 10))


def cnn(seed=0):
    torch.manual_seed(seed)
    return build_architecture("cnn", **family_hparams("cnn", 4, (1, 8, 8), 10)).eval()


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def images(n=10, shape=(1, 8, 8), seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_extract_equals_a_manual_forward():
    model, x = mlp(), images()
    acts = extract(model, x, ["act2", "fc1"], batch_size=3)
    assert list(acts) == ["act2", "fc1"] and all(a.dtype == np.float32 for a in acts.values())
    with torch.no_grad():
        h1 = model.fc1(x.flatten(1))
        manual = torch.sigmoid(model.fc2(torch.sigmoid(h1)))
    np.testing.assert_allclose(acts["act2"], manual.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(acts["fc1"], h1.numpy(), rtol=1e-6, atol=1e-6)


def test_conv_layers_flatten_in_channel_height_width_order():
    model, x = cnn(), images()
    acts = extract(model, x, ["conv1", "bn1"])  # channels_last inside, C x H x W order outside
    with torch.no_grad():
        conv = model.conv1(x)
        bn = model.bn1(model.relu1(model.pool1(conv)))
    np.testing.assert_allclose(acts["conv1"], conv.flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts["bn1"], bn.flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    assert next(model.parameters()).is_contiguous()  # the model is given back as it was


def test_hooks_copy_before_inplace_relu_and_residual_add(resnet):
    x = images(2, (3, 32, 32))
    acts = extract(resnet, x, ["bn1", "layer1.0.bn2", "layer1.0", "layer1.0.relu"])
    block = resnet.layer1[0]
    with torch.no_grad():
        stem = resnet.bn1(resnet.conv1(x))
        inp = resnet.maxpool(torch.relu(stem))
        bn2 = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(inp)))))
        out = torch.relu(bn2 + inp)
    assert acts["bn1"].min() < 0  # not overwritten by the in-place ReLU that follows
    np.testing.assert_allclose(acts["bn1"], stem.flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts["layer1.0.bn2"], bn2.flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts["layer1.0"], out.flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    # a module called twice per pass (the block's ReLU) keeps its last call: the block's output
    np.testing.assert_array_equal(acts["layer1.0.relu"], acts["layer1.0"])


def test_pooling_shapes(resnet):
    x = images(3, (3, 32, 32))
    layers = ["layer1", "layer4", "avgpool", "fc"]
    none = extract(resnet, x, layers)
    assert {k: v.shape for k, v in none.items()} == {
        "layer1": (3, 64 * 8 * 8), "layer4": (3, 512), "avgpool": (3, 512), "fc": (3, 10)}
    avg = extract(resnet, x, layers, pooling="avg")
    assert {k: v.shape[1] for k, v in avg.items()} == {"layer1": 64, "layer4": 512, "avgpool": 512, "fc": 10}
    np.testing.assert_allclose(avg["layer1"], none["layer1"].reshape(3, 64, 64).mean(2), rtol=1e-5, atol=1e-6)
    proj = extract(resnet, x, layers, pooling="proj:16")
    assert {k: v.shape[1] for k, v in proj.items()} == {"layer1": 16, "layer4": 16, "avgpool": 16, "fc": 10}
    np.testing.assert_array_equal(proj["fc"], none["fc"])  # already narrow: kept as it is


def test_projection_is_fixed_and_seeded():
    model, x = mlp(), images(20)
    a = extract(model, x, ["fc1"], pooling="proj:3", batch_size=7)["fc1"]
    b = extract(model, x, ["fc1"], pooling="proj:3", batch_size=20)["fc1"]
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # one matrix for every batch
    full = extract(model, x, ["fc1"])["fc1"]
    np.testing.assert_allclose(a, full @ projection_matrix(8, 3, seed=0).numpy(), rtol=1e-5, atol=1e-6)
    other = extract(model, x, ["fc1"], pooling="proj:3", seed=1)["fc1"]
    assert not np.allclose(a, other)
    assert torch.equal(projection_matrix(8, 3, 5), projection_matrix(8, 3, 5))


def test_batches_progress_cancel_and_cleanup():
    model, x = cnn(), images(10)
    model.train()
    seen = []
    one = extract(model, x, ["bn3"], batch_size=4, progress=seen.append)
    assert seen == [0.4, 0.8, 1.0] and model.training  # eval inside, training mode given back
    np.testing.assert_allclose(one["bn3"], extract(model, x, ["bn3"], batch_size=10)["bn3"], rtol=1e-5, atol=1e-6)
    calls = iter([False, True])
    with pytest.raises(Cancelled):
        extract(model, x, ["bn3"], batch_size=4, should_stop=lambda: next(calls))
    assert all(not m._forward_hooks for m in model.modules())


class ViewsItsMaps(torch.nn.Module):
    """Flattens with .view(), which a channels_last feature map refuses."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        maps = self.conv(x)
        return self.fc(maps.view(maps.shape[0], -1))


def test_models_that_view_their_maps_fall_back_to_the_plain_layout():
    torch.manual_seed(0)
    model, x = ViewsItsMaps().eval(), images(5)
    acts = extract(model, x, ["conv", "fc"], batch_size=2)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(acts["fc"], expected, atol=1e-6)
    assert model.conv.weight.is_contiguous()


def test_bad_arguments_are_refused():
    model = mlp()
    with pytest.raises(ValueError, match="unknown layers: fc9; valid names: flatten, fc1, act1"):
        extract(model, images(), ["fc9"])
    with pytest.raises(ValueError, match="pooling must be"):
        extract(model, images(), ["fc1"], pooling="max")
    with pytest.raises(ValueError, match="pooling must be"):
        extract(model, images(), ["fc1"], pooling="proj:0")


def test_predict_gives_logits_and_accepts_numpy():
    model, x = cnn(), images(7)
    scores = predict(model, x.numpy(), batch_size=3)
    assert scores.shape == (7, 10) and scores.dtype == np.float32
    with torch.no_grad():
        np.testing.assert_allclose(scores, model(x).numpy(), rtol=1e-5, atol=1e-6)
