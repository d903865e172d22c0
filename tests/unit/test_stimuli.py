"""Stimulus sets: the digits split, content keys, thumbnails, image folders, torchvision on disk."""
import base64
import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from compute.sources import stimuli as S


def test_digits_split_is_fixed_and_sorted_by_class():
    train_x, train_y, test = S.digits_split()
    assert test.name == "digits" and len(test) == 500 and test.images.shape == (500, 1, 8, 8)
    assert train_x.shape == (1297, 1, 8, 8) and train_y.shape == (1297,)
    assert np.array_equal(np.bincount(test.labels), [50] * 10)
    assert np.all(np.diff(test.labels) >= 0)  # sorted by class
    for c in range(10):  # then by original index
        idx = [int(i.split("-")[1]) for i, l in zip(test.ids, test.labels) if l == c]
        assert idx == sorted(idx)
    assert float(test.images.min()) >= 0 and float(test.images.max()) <= 1
    assert test.images.dtype == torch.float32 and test.labels.dtype == np.int64
    assert test.class_names == [str(c) for c in range(10)]
    # train and test are disjoint and together the whole dataset
    everything = torch.cat([train_x.flatten(1), test.images.flatten(1)])
    assert torch.unique(everything, dim=0).shape[0] >= 1790  # load_digits has a few duplicates


def test_key_is_stable_and_follows_content_not_name():
    a, b = S.get_stimulus_set("digits"), S.get_stimulus_set()
    assert a.key == b.key and len(a.key) == 64
    renamed = S.make_stimulus_set("other", a.images, a.labels, a.class_names)
    assert renamed.key == a.key
    pixels = a.images.clone()
    pixels[3, 0, 4, 4] += 1e-3
    assert S.make_stimulus_set("digits", pixels, a.labels, a.class_names).key != a.key
    labels = a.labels.copy()
    labels[[0, -1]] = labels[[-1, 0]]
    assert S.make_stimulus_set("digits", a.images, labels, a.class_names).key != a.key
    reordered = S.make_stimulus_set("digits", a.images.flip(0), a.labels[::-1], a.class_names)
    assert reordered.key != a.key


def test_make_stimulus_set_validates():
    with pytest.raises(ValueError, match="N x C x H x W"):
        S.make_stimulus_set("x", torch.zeros(3, 8, 8), [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match="labels must lie"):
        S.make_stimulus_set("x", torch.zeros(3, 1, 8, 8), [0, 1, 2], ["a", "b"])


def test_thumbnails_are_png_data_uris():
    digits = S.get_stimulus_set("digits")
    arrays = digits.thumbnail_array(16)
    assert arrays.shape == (500, 16, 16, 1) and arrays.dtype == np.uint8
    uris = digits.thumbnails(16)
    assert len(uris) == 500 and uris[0].startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uris[0].split(",", 1)[1])))
    assert image.size == (16, 16)


def test_unknown_names_and_options_are_refused():
    with pytest.raises(ValueError, match="unknown stimulus set"):
        S.get_stimulus_set("imagenet")
    with pytest.raises(ValueError, match="no options"):
        S.get_stimulus_set("digits", n_per_class=3)


# --- image folders ---

def _folder(root, classes, per_class=3, size=(10, 12), mode="RGB"):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
    return root


def test_image_folder_reads_classes_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_DATA_ROOTS", str(tmp_path))
    root = _folder(tmp_path / "imgs", ["zebra", "ant"])
    s = S.image_folder(root)
    assert s.images.shape == (6, 3, 12, 10) and s.class_names == ["ant", "zebra"]
    assert list(s.labels) == [0, 0, 0, 1, 1, 1] and s.ids[0] == "ant/0.png"
    assert s.name == f"folder:{tmp_path.name}/imgs"  # its registry name, under the data root
    assert S.get_stimulus_set(s.name).key == s.key  # the name rebuilds the set
    few = S.image_folder(root, n_per_class=2, seed=1)
    assert len(few) == 4 and few.key == S.get_stimulus_set(few.name).key
    assert few.name.endswith("?n_per_class=2&seed=1")


def test_image_folder_grayscale_and_mixed_sizes(tmp_path):
    root = _folder(tmp_path / "g", ["a", "b"], mode="L")
    Image.fromarray(np.zeros((20, 30), np.uint8), "L").save(root / "a" / "big.png")
    s = S.image_folder(root, size=16)
    assert s.images.shape == (7, 1, 16, 16)
    assert S.image_folder(root).images.shape[-2:] == (S.DEFAULT_FOLDER_SIZE, S.DEFAULT_FOLDER_SIZE)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        S.image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        S.image_folder(tmp_path / "empty")
    one = _folder(tmp_path / "one", ["only"])
    with pytest.raises(ValueError, match="only one class"):
        S.image_folder(one)
    hollow = _folder(tmp_path / "hollow", ["a", "b"])
    (hollow / "c").mkdir()
    with pytest.raises(ValueError, match="empty class folders: c"):
        S.image_folder(hollow)
    broken = _folder(tmp_path / "broken", ["a", "b"])
    (broken / "b" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"unreadable image files: b/bad.png"):
        S.image_folder(broken)


# --- torchvision datasets on disk ---

def _idx(path, array):
    code = {1: 0x0801, 3: 0x0803}[array.ndim]
    path.write_bytes(struct.pack(">I", code) + b"".join(struct.pack(">I", d) for d in array.shape)
                     + array.astype(np.uint8).tobytes())


def write_fake_mnist(root, folder="MNIST", per_class=(8, 5)):
    """A tiny dataset in MNIST's raw idx format (what torchvision reads from disk)."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", per_class[0]), ("t10k", per_class[1])):
        labels = np.repeat(np.arange(10), n)
        images = rng.integers(0, 255, (len(labels), 28, 28))
        images[:, 0, 0] = labels * 20  # class-dependent pixel so a model can learn something
        _idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def test_torchvision_dataset_from_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_DATA_ROOT", str(write_fake_mnist(tmp_path)))
    s = S.get_stimulus_set("mnist", n_per_class=3)
    assert s.name == "mnist?n_per_class=3" and s.images.shape == (30, 1, 28, 28)
    assert np.array_equal(np.bincount(s.labels), [3] * 10) and np.all(np.diff(s.labels) >= 0)
    assert S.get_stimulus_set(s.name).key == s.key
    assert S.get_stimulus_set("mnist", n_per_class=3, seed=1).key != s.key
    assert "mnist" in S.list_stimulus_sets() and "cifar10" not in S.list_stimulus_sets()
    train_x, train_y, stim = S.dataset_split("mnist", n_per_class=2, train_per_class=4)
    assert train_x.shape == (40, 1, 28, 28) and len(stim) == 20


def test_missing_torchvision_dataset_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_DATA_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        S.get_stimulus_set("fashionmnist")
    message = str(error.value)
    assert str(tmp_path) in message and "download=True" in message and "REPSCOPE_DATA_ROOT" in message
