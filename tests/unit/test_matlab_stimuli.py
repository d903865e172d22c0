"""A .mat struct array of images as a stimulus set: Kriegeskorte et al. (2008)'s 92 images in
their file's order (the order of the 92-image RDMs: checked on the brain RDM's category
blocks), their classes and flags; the same layout written as v7.3; bad files named."""
import numpy as np
import pytest
import scipy.io
from scipy.spatial.distance import squareform

from compute.sources import references as R
from compute.sources.matlab_stimuli import accept_stimulus_mat, import_stimulus_mat
from compute.sources.stimuli import get_stimulus_set, stimulus_set_named
from compute.sources.uploads import UploadError, check_filename
from tests.unit.test_matlab_rdms import DATA, needs_data, write_v73_structs

SUPPLEMENT = DATA / "Kriegeskorte_Neuron2008_supplementalData.mat"
CATEGORIES = ["human bodypart", "human face", "nonhuman bodypart", "nonhuman face", "natural inanimate",
              "artificial inanimate"]


@pytest.fixture(autouse=True)
def private_uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))


@needs_data
def test_the_92_images_keep_their_order_classes_flags_and_pixels(tmp_path):
    result = accept_stimulus_mat(SUPPLEMENT, "Kriegeskorte_Neuron2008_supplementalData.mat")
    assert result["stimulus_set"].startswith("upload:") and result["images"] == 92
    assert (result["num_classes"], result["tags"]) == (6, ["animal", "face", "human", "natural"])
    stimuli = stimulus_set_named(result["stimulus_set"])
    raw = scipy.io.loadmat(SUPPLEMENT)["stimuli_92objs"][0]
    assert stimuli.class_names == CATEGORIES  # in the order they first appear, not sorted
    assert [stimuli.class_names[c] for c in stimuli.labels] == [str(e["category"][0]) for e in raw]
    assert np.bincount(stimuli.labels).tolist() == [12, 12, 12, 12, 23, 21]
    for flag in ("human", "face", "animal", "natural"):
        assert stimuli.tags[flag] == [int(e[flag][0, 0]) for e in raw], flag
    assert sum(stimuli.tags["animal"]) == 48 and sum(stimuli.tags["face"]) == 24
    assert tuple(stimuli.images.shape) == (92, 3, 175, 175)  # kept at the file's size
    pixels = (stimuli.images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(pixels, np.stack([e["image"] for e in raw]))
    assert stimuli.ids[:2] == ["01.png", "02.png"]
    assert accept_stimulus_mat(SUPPLEMENT, "again.mat") == result  # the same content: the same set
    smaller = get_stimulus_set(result["stimulus_set"] + "?size=64&n_per_class=5")
    assert tuple(smaller.images.shape) == (30, 3, 64, 64)
    assert list(smaller.labels) == sorted(smaller.labels)  # still in the file's order
    assert len(smaller.tags["face"]) == 30


@needs_data
def test_the_brain_rdm_lines_up_with_the_images():
    """hIT separates animate from inanimate objects (Kriegeskorte et al. 2008, Fig. 1): in the
    images' order, pairs within the animate block are closer than animate-inanimate pairs; the
    monkey-IT RDM does too, and the animacy model RDM is exactly the set's animal flag."""
    stimuli = stimulus_set_named(accept_stimulus_mat(SUPPLEMENT, "s.mat")["stimulus_set"])
    animate = np.array(stimuli.tags["animal"], dtype=bool)
    within = np.outer(animate, animate)
    between = np.outer(animate, ~animate) | np.outer(~animate, animate)
    brain = squareform(R.read_reference(DATA / "92_brainRDMs.mat", ".mat", len(stimuli)).mean(axis=0))
    assert brain[within].mean() < brain[between].mean() - 0.05
    models, names = R.read_named_reference(DATA / "92_modelRDMs.mat", ".mat", len(stimuli))
    monkey = squareform(models[names.index("monkeyIT")])
    assert monkey[within].mean() < monkey[between].mean() - 0.1
    np.testing.assert_array_equal(squareform(models[names.index("animacy")]), between.astype(float))
    shuffled = np.random.default_rng(0).permutation(len(stimuli))
    assert brain[within].mean() - brain[between].mean() < brain[np.ix_(shuffled, shuffled)][within].mean() \
        - brain[np.ix_(shuffled, shuffled)][between].mean()


def tiny_images(n=4, side=5, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8) for _ in range(n)]


def test_a_v73_struct_array_of_images_is_imported_in_order(tmp_path):
    images = tiny_images()
    elements = [{"image": image, "category": category, "animal": np.array([[float(i % 2)]])}
                for i, (image, category) in enumerate(zip(images, ["dog", "cup", "dog", "car"]))]
    write_v73_structs(tmp_path / "stim73.mat", {"stimuli": ((1, 4), elements)})
    target = tmp_path / "set"
    target.mkdir()
    manifest = import_stimulus_mat(tmp_path / "stim73.mat", target)
    assert (manifest.classes, manifest.labels) == (["dog", "cup", "car"], [0, 1, 0, 2])
    assert manifest.tags == {"animal": [0, 1, 0, 1]}
    from compute.sources.stimuli import image_folder

    stimuli = image_folder(target)
    np.testing.assert_array_equal((stimuli.images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8),
                                  np.stack(images))
    assert stimuli.tags == {"animal": [0, 1, 0, 1]} and stimuli.ids == ["1.png", "2.png", "3.png", "4.png"]


def save_stimuli(path, elements):
    fields = list(elements[0])
    record = np.empty((1, len(elements)), dtype=[(f, "O") for f in fields])
    for i, element in enumerate(elements):
        record[0, i] = tuple(element[f] for f in fields)
    scipy.io.savemat(path, {"stimuli": record})


@pytest.mark.parametrize("elements, problem", [
    ([{"picture": im, "category": "a"} for im in tiny_images()], "no struct array of images: it needs"),
    ([{"image": im, "category": "same"} for im in tiny_images()], "every image is of the class 'same'"),
    ([{"image": im, "n": np.array([[i]])} for i, im in enumerate(tiny_images())], "no text field naming each image"),
    ([{"image": im[:, :, :2], "category": c} for im, c in zip(tiny_images(), "abab")],
     r"stimuli\(1,1\): the image has shape \(5, 5, 2\)"),
    ([{"image": im * 3.0, "category": c} for im, c in zip(tiny_images(), "abab")], "pixel values run from"),
    ([{"image": "a picture", "category": c} for c in "abab"], r"stimuli\(1,1\): the image holds text"),
    ([{"image": im if i else im[:, :, 0], "category": c} for i, (im, c) in enumerate(zip(tiny_images(), "abab"))],
     "mixes RGB and gray images"),
])
def test_bad_image_structs_are_refused_with_the_reason(tmp_path, elements, problem):
    save_stimuli(tmp_path / "bad.mat", elements)
    with pytest.raises(UploadError, match=problem):
        accept_stimulus_mat(tmp_path / "bad.mat", "bad.mat")
    assert not list((tmp_path / "uploads" / "stimuli").glob("[0-9a-f]*"))  # nothing kept


def test_float_and_gray_images_are_accepted(tmp_path):
    gray = [im[:, :, 0].astype(np.float64) / 255 for im in tiny_images()]
    save_stimuli(tmp_path / "gray.mat", [{"image": im, "category": c} for im, c in zip(gray, "abab")])
    stimuli = stimulus_set_named(accept_stimulus_mat(tmp_path / "gray.mat", "gray.mat")["stimulus_set"])
    assert tuple(stimuli.images.shape) == (4, 1, 5, 5) and stimuli.tags is None
    np.testing.assert_allclose(stimuli.images[:, 0].numpy(), np.stack(gray), atol=0.5 / 255)
    assert check_filename("stimuli", "images.MAT") == ".mat"
