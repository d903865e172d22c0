"""Precomputed activations (and brain data) as a model: every format read, rows put in the set's
order, repeats kept, logits scored, every bad file refused naming the layer and rows; and a zoo
model's own activations, saved and registered as a file, give the model's RDMs and layer grids."""
import hashlib
import json
import struct
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from compute.engine import artifacts
from compute.engine.limits import default_shape
from compute.engine.store import ArtifactStore
from compute.sources.activation_models import (accept_activations, open_activations, register_activations,
                                               repeated_activations)
from compute.sources.activations import extract, predict
from compute.sources.models import get_model_info, list_models, load_model
from compute.sources.representations import NoScores, model_activations, open_model
from compute.sources.stimuli import get_stimulus_set

N = 500  # the digits set


@pytest.fixture(autouse=True)
def private_cache(cache_dir, zoo_dir, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(cache_dir.parent / "uploads"))


@pytest.fixture(scope="module")
def digits():
    return get_stimulus_set("digits")


def layers(seed=0):
    rng = np.random.default_rng(seed)
    return {"V1": rng.normal(size=(N, 4, 3, 3)), "V4": rng.normal(size=(N, 6)).astype(np.float32),
            "IT": rng.normal(size=(N, 5))}


def refused(tmp_path, problem, name="bad", stimulus_set="digits", suffix=".npz", **arrays):
    path = tmp_path / f"{name}{suffix}"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=problem):
        register_activations(name, path, stimulus_set)
    assert name not in {m.name for m in list_models(None)}


# --- good files ----------------------------------------------------------------------------------

def test_an_npz_in_shuffled_order_with_ids_is_put_back_in_the_sets_order(tmp_path, digits):
    acts, logits = layers(), np.random.default_rng(1).normal(size=(N, 10))
    logits[np.arange(N), digits.labels] += 3.0  # mostly right
    perm = np.random.default_rng(2).permutation(N)
    np.savez(tmp_path / "shuffled.npz", **{k: v[perm] for k, v in acts.items()},
             stimulus_ids=np.array(digits.ids)[perm], labels=digits.labels[perm], logits=logits[perm])
    info = register_activations("shuffled", tmp_path / "shuffled.npz", "digits", tags={"series": "s", "step": 3})
    assert (info.source, info.architecture, info.stimulus_set, info.num_classes) == ("activations",) * 2 + ("digits", 10)
    assert info.tags == {"series": "s", "step": 3} and get_model_info("shuffled").key == info.key
    assert info.hparams["layers"] == {"V1": {"shape": [N, 4, 3, 3], "repeats": 1},
                                      "V4": {"shape": [N, 6], "repeats": 1}, "IT": {"shape": [N, 5], "repeats": 1}}
    model = open_model("shuffled")
    assert [(i.name, i.default, i.penultimate) for i in model.layers()] == [
        ("V1", True, False), ("V4", True, False), ("IT", True, True)]
    out = model.extract(digits, ["V1", "IT", "V4"], "none")
    np.testing.assert_array_equal(out["V1"], acts["V1"].reshape(N, -1).astype(np.float32))
    np.testing.assert_array_equal(out["IT"], acts["IT"].astype(np.float32))
    np.testing.assert_allclose(model.extract(digits, ["V1"], "avg")["V1"], acts["V1"].mean(axis=(2, 3)), atol=1e-6)
    assert [model.width(digits, "V1", p) for p in ("none", "avg", "proj:8", "proj:99")] == [36, 4, 8, 36]
    np.testing.assert_array_equal(model.scores(digits), logits.astype(np.float32))
    top1 = float((logits.argmax(1) == digits.labels).mean())
    assert info.accuracy == pytest.approx(top1) and info.top5 >= info.accuracy
    (penultimate,) = model_activations("shuffled", digits, ["penultimate"])
    np.testing.assert_array_equal(penultimate, out["IT"])


def test_repeats_are_kept_and_views_see_their_mean(tmp_path, digits):
    runs = np.random.default_rng(3).normal(size=(4, N, 7))
    np.savez(tmp_path / "runs.npz", V1=runs, IT=runs[0, :, :3], repeated=np.array(["V1"]))
    info = register_activations("runs", tmp_path / "runs.npz", "digits", brain=True)
    assert info.tags == {"kind": "brain"} and info.accuracy is None and info.num_classes is None
    assert info.hparams["layers"]["V1"] == {"shape": [N, 7], "repeats": 4}
    np.testing.assert_array_equal(repeated_activations("runs", "V1"), runs.astype(np.float32))
    assert repeated_activations("runs", "penultimate").shape == (1, N, 3)
    mean = open_model("runs").extract(digits, ["V1"])["V1"]
    np.testing.assert_allclose(mean, runs.astype(np.float32).mean(axis=0), atol=1e-6)
    with pytest.raises(NoScores, match="no 'logits'"):
        open_model("runs").scores(digits)
    everything = tmp_path / "all.npz"  # the uploader's "every array has a leading repeats axis"
    np.savez(everything, V1=runs, V2=runs[:2])
    assert register_activations("all", everything, "digits", repeated=True).hparams["layers"]["V2"]["repeats"] == 2
    with pytest.raises(ValueError, match="not precomputed activations"):
        repeated_activations(list_models("digits")[0].name, "penultimate")


def test_hdf5_datasets_at_any_depth_are_layers_named_by_their_path(tmp_path, digits):
    acts = layers(4)
    perm = np.random.default_rng(5).permutation(N)
    with h5py.File(tmp_path / "brain.h5", "w", track_order=True) as f:
        f["subject1/V1"] = acts["V1"][perm]
        f["subject1/deep/IT"] = np.stack([acts["IT"][perm]] * 2)
        f["stimulus_ids"] = perm  # integers: positions in the set's order
        f.create_dataset("repeated", data=["subject1/deep/IT"], dtype=h5py.string_dtype())
    info = register_activations("brain", tmp_path / "brain.h5", "digits")
    assert list(info.hparams["layers"]) == ["subject1/V1", "subject1/deep/IT"]
    out = open_model("brain").extract(digits, ["subject1/V1", "subject1/deep/IT"])
    np.testing.assert_array_equal(out["subject1/V1"], acts["V1"].reshape(N, -1).astype(np.float32))
    np.testing.assert_allclose(out["subject1/deep/IT"], acts["IT"], atol=1e-6)


def test_safetensors_layers_in_the_order_their_metadata_gives(tmp_path, digits):
    acts = {k: v.astype(np.float32) for k, v in layers(6).items()}
    save_file({**acts, "logits": np.eye(10, dtype=np.float32)[digits.labels]}, str(tmp_path / "net.safetensors"),
              metadata={"layers": "V1,V4,IT", "repeated": ""})
    info = register_activations("net", tmp_path / "net.safetensors", "digits")
    assert list(info.hparams["layers"]) == ["V1", "V4", "IT"] and info.accuracy == 1.0 and info.top5 == 1.0
    assert open_model("net").layers()[-1].penultimate
    save_file({"a": np.zeros((N, 2), np.float16)}, str(tmp_path / "x.safetensors"), metadata={"layers": "b"})
    with pytest.raises(ValueError, match="'layers' names tensors the file lacks: b"):
        register_activations("x", tmp_path / "x.safetensors", "digits")


def test_a_dict_of_arrays_and_labels_alone_in_the_sets_order(digits):
    acts = layers(7)
    info = register_activations("dict", {**acts, "labels": digits.labels}, "digits")
    np.testing.assert_array_equal(open_model(info).extract(digits, ["V4"])["V4"], acts["V4"])
    many = {f"L{i}": acts["V4"] for i in range(10)}
    names = [(i.name, i.default, i.penultimate) for i in open_model(register_activations("deep", many, "digits")).layers()]
    assert [n for n, default, _ in names if default] == [f"L{i}" for i in range(8)] + ["L9"]
    assert [n for n, _, last in names if last] == ["L9"]


def test_labels_reorder_rows_only_when_each_class_has_one_stimulus(tmp_path, data_root):
    root = data_root / "three"
    for index, name in enumerate(("a", "b", "c")):
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), 60 * index, np.uint8)).save(root / name / "1.png")
    name = f"folder:{data_root.name}/three"
    stimuli = get_stimulus_set(name)
    rows = np.array([[0.0, 1, 2], [5, 1, 0], [1, 1, 9]])
    info = register_activations("by-labels", {"L": rows[[2, 0, 1]], "labels": np.array([2, 0, 1])}, name)
    np.testing.assert_array_equal(open_model(info).extract(stimuli, ["L"])["L"], rows.astype(np.float32))
    digits = get_stimulus_set("digits")
    with pytest.raises(ValueError, match="cannot reorder the rows .class 0 has 50 stimuli.; add stimulus_ids"):
        register_activations("x", {"L": layers()["V4"], "labels": digits.labels[::-1]}, "digits")
    with pytest.raises(ValueError, match=r"counts of classes 0, 9 differ"):
        register_activations("x", {"L": layers()["V4"], "labels": np.r_[digits.labels[1:], 9]}, "digits")
    with pytest.raises(ValueError, match="not for 'digits'"):  # another stimulus set than the registered one
        open_model(info).extract(digits, ["L"])


# --- bad files -------------------------------------------------------------------------------------

def test_wrong_numbers_of_rows_are_named(tmp_path):
    acts = layers()
    refused(tmp_path, "layer 'IT' has 90 rows, stimulus set 'digits' has 500 stimuli", IT=acts["IT"][:90])
    refused(tmp_path, r"list it in 'repeated'", IT=acts["V1"][None])
    refused(tmp_path, "different numbers of stimuli .rows.: 'V4' 500, 'IT' 90", V4=acts["V4"], IT=acts["IT"][:90])
    refused(tmp_path, "logits has 9 rows, the layers have 500", IT=acts["IT"], logits=np.zeros((9, 10)))
    refused(tmp_path, "holds no layers", stimulus_ids=np.arange(N))
    refused(tmp_path, "'repeated' names layers the file lacks: V9", IT=acts["IT"], repeated=np.array(["V9"]))


def test_stimulus_ids_unknown_duplicate_or_missing_are_named(tmp_path, digits):
    acts, ids = layers(), np.array(digits.ids)
    wrong = ids.copy()
    wrong[[3, 8]] = ["cat.png", "dog.png"]
    refused(tmp_path, "2 stimulus ids are not in stimulus set 'digits': 'cat.png', 'dog.png' .its ids look like 'digits-",
            IT=acts["IT"], stimulus_ids=wrong)
    twice = ids.copy()
    twice[1] = twice[0]
    refused(tmp_path, f"lists 1 stimuli more than once: {ids[0]}", IT=acts["IT"], stimulus_ids=twice)
    refused(tmp_path, f"lacks 410 stimuli of set 'digits': {ids[90]}, {ids[91]}", IT=acts["IT"][:90],
            stimulus_ids=ids[:90])
    refused(tmp_path, "positions in stimulus set 'digits', 0 to 499; 1 lie outside: 500",
            IT=acts["IT"], stimulus_ids=np.r_[np.arange(1, N), N])
    refused(tmp_path, "must hold strings", IT=acts["IT"], stimulus_ids=np.arange(N) + 0.5)
    labels = digits.labels.copy()
    labels[7] = (labels[7] + 1) % 10
    refused(tmp_path, f"labels disagree with stimulus set 'digits' for 1 stimuli: {ids[7]} .file", IT=acts["IT"],
            labels=labels, stimulus_ids=ids)


def test_nan_inf_and_constant_layers_are_refused_naming_layer_and_row(tmp_path, digits):
    acts = layers()
    nan = acts["IT"].copy()
    nan[[4, 9], 1] = [np.nan, np.inf]
    refused(tmp_path, "layer 'IT' has NaN or inf values .* in 2 rows: 4, 9", V4=acts["V4"], IT=nan)
    perm = np.random.default_rng(8).permutation(N)
    refused(tmp_path, f"in 2 rows: .*4 \\({digits.ids[perm[4]]}\\)", IT=nan, stimulus_ids=np.array(digits.ids)[perm])
    runs = np.stack([acts["IT"], acts["IT"]])
    runs[1, 5, 0] = 1e39  # beyond float32
    refused(tmp_path, "layer 'IT', repeat 1, has NaN or inf values .* in 1 rows: 5", IT=runs, repeated=np.array(["IT"]))
    refused(tmp_path, "layer 'V4' is the same for every stimulus .all 500 rows are equal.", IT=acts["IT"],
            V4=np.ones((N, 6)))
    refused(tmp_path, "holds <U1 values, not numbers", IT=np.full((N, 2), "x"))
    constant = acts["IT"].copy()
    constant[[2, 6]] = 3.0
    with pytest.warns(UserWarning, match="layer 'IT' has 2 constant rows .2, 6.: correlation and Spearman"):
        register_activations("const", {"IT": constant}, "digits")
    with pytest.raises(ValueError, match="2 constant activation patterns .stimuli 2, 6."):
        from compute.measures.rdm import rdm  # the measure refuses them when it needs them

        rdm(open_model("const").extract(digits, ["IT"])["IT"], method="correlation")


def test_pickles_links_virtual_datasets_and_huge_files_are_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", IT=layers()["IT"], stimulus_ids=np.array(["a", 1], dtype=object))
    with pytest.raises(ValueError, match="'stimulus_ids' holds Python objects .* without pickle"):
        register_activations("obj", tmp_path / "obj.npz", "digits")
    (tmp_path / "other.h5").touch()
    for kind in ("external", "soft", "virtual"):
        with h5py.File(tmp_path / f"{kind}.h5", "w") as f:
            f["IT"] = layers()["IT"]
            if kind == "external":
                f["secret"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/x")
            elif kind == "soft":
                f["again"] = h5py.SoftLink("/IT")
            else:
                layout = h5py.VirtualLayout(shape=(N, 5), dtype="f8")
                layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "x", shape=(N, 5))
                f.create_virtual_dataset("virt", layout)
        with pytest.raises(ValueError, match="is (an external link|a soft link|a virtual dataset)"):
            register_activations(kind, tmp_path / f"{kind}.h5", "digits")
    with h5py.File(tmp_path / "huge.h5", "w") as f:  # 2e9 values declared, none written
        f.create_dataset("IT", shape=(N, 4 * 10**6), dtype="f4", chunks=(1, 1000))
    with pytest.raises(ValueError, match="holds 2,000,000,000 values; at most 100,000,000"):
        register_activations("huge", tmp_path / "huge.h5", "digits")
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (500, 1000000), }".ljust(117) + "\n"
    with zipfile.ZipFile(tmp_path / "lying.npz", "w") as archive:  # a header, no data
        archive.writestr("IT.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    with pytest.raises(ValueError, match="holds 500,000,000 values"):
        register_activations("lying", tmp_path / "lying.npz", "digits")
    save_file({"IT": np.zeros((N, 2), np.float32)}, str(tmp_path / "bf.safetensors"))
    raw = (tmp_path / "bf.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    header["IT"].update(dtype="BF16", shape=[N, 4])
    text = json.dumps(header).encode()
    (tmp_path / "bf.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length:])
    with pytest.raises(ValueError, match="'IT' is BF16, which numpy cannot read"):
        register_activations("bf", tmp_path / "bf.safetensors", "digits")
    with pytest.raises(ValueError, match="not accepted"):
        register_activations("pkl", tmp_path / "x.pkl", "digits")


def test_the_upload_task_validates_its_fields_and_registers(tmp_path, digits):
    np.savez(tmp_path / "part", IT=layers()["IT"])  # the route's partial file has no suffix of its own
    part = tmp_path / "part.npz"
    answer = accept_activations(part, "my run.npz", "digits", brain=True, series="run-a", step="0")
    assert answer["model"] == "my-run" and answer["architecture"] == "activations" and answer["layers"] == ["IT"]
    digest = hashlib.sha256(part.read_bytes()).hexdigest()
    assert get_model_info("my-run").tags == {"uploaded": digest[:12], "series": "run-a", "step": 0, "kind": "brain"}
    assert accept_activations(part, "my run.npz", "digits")["model"].startswith("my-run-")  # a name taken
    for fields, problem in [({"brain": "yes"}, "brain must be true or false"),
                            ({"step": "3"}, "needs its series"), ({"series": "a b", "step": 1}, "series must be"),
                            ({"series": "a", "step": "-1"}, "step must be a whole number"),
                            ({"series": "a"}, "step must be a whole number"),
                            ({"stimulus_set": "/etc"}, "unknown stimulus set")]:
        with pytest.raises(ValueError, match=problem):
            accept_activations(part, "x.npz", **{"stimulus_set": "digits", **fields})


# --- the Done-when criterion: the same numbers as the model itself --------------------------------

def test_a_zoo_models_own_activations_as_a_file_give_its_rdms_and_layer_grids(tmp_path, digits):
    zoo = get_model_info("cnn-w8-s0-e25")
    module = load_model(zoo)
    names = [i.name for i in open_model(zoo).layers() if i.default]
    assert names == ["bn1", "bn2", "bn3"]
    acts = extract(module, digits.images, names)
    acts["bn1"] = acts["bn1"].reshape(N, 8, 4, 4)  # the feature maps as another framework would save them
    perm = np.random.default_rng(9).permutation(N)
    np.savez(tmp_path / "cnn.npz", **{k: v[perm] for k, v in acts.items()}, logits=predict(module, digits.images)[perm],
             stimulus_ids=np.array(digits.ids)[perm])
    mine = register_activations("cnn-as-file", tmp_path / "cnn.npz", "digits")
    assert mine.accuracy == pytest.approx(zoo.accuracy) and mine.top5 == pytest.approx(zoo.top5)
    store = ArtifactStore(tmp_path / "artifacts")

    def computed(spec):
        return np.asarray(store.get(spec.kind, artifacts.ensure(spec, store))[0])

    for pooling in ("none", "avg", "proj:16"):
        for layer in (*names, "penultimate"):
            theirs, ours = (computed(artifacts.rdm_spec(m.key, digits, layer, pooling, "correlation")) for m in (zoo, mine))
            np.testing.assert_allclose(ours, theirs, atol=2e-6, err_msg=f"{layer} {pooling}")
        spec = artifacts.activations_spec(mine.key, digits, "bn1", pooling)
        assert default_shape(spec) == computed(spec).shape  # the pre-flight's width, from the shapes alone
        grids = [computed(artifacts.layer_grid_spec(a.key, names, b.key, names, digits, "cka_linear", pooling))
                 for a, b in ((zoo, zoo), (mine, mine), (zoo, mine))]
        np.testing.assert_allclose(grids[1], grids[0], atol=1e-5)
        np.testing.assert_allclose(np.diag(grids[2]), 1.0, atol=1e-5)
    assert default_shape(artifacts.predictions_spec(mine.key, digits)) == (N, 10)
    np.testing.assert_array_equal(computed(artifacts.confusion_spec(mine.key, digits)),
                                  computed(artifacts.confusion_spec(zoo.key, digits)))
    assert open_activations(mine).width(digits, "bn1", "avg") == 8


def test_a_series_of_activation_files_is_a_checkpoint_series_of_the_training_view():
    from dashboard.views import training

    for step in (10, 0, 5):
        register_activations(f"ckpt-{step}", {"IT": layers(step)["IT"]}, "digits", tags={"series": "run", "step": step})
    chain = training.checkpoints(list_models("digits"), "run")
    assert [m.name for m in chain] == ["ckpt-0", "ckpt-5", "ckpt-10"]
