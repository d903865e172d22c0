"""MATLAB RSA-toolbox struct arrays of RDMs as references: Kriegeskorte et al. (2008)'s real files,
the same layout written as v7.3 (HDF5) the way MATLAB writes it, bad structs named, names kept
through the store, and rows of one reference ranked against another."""
import json

import h5py
import numpy as np
import pytest
import scipy.io
from scipy.spatial.distance import squareform

from compute.sources import references as R
from tests.unit.test_references import FakeStimuli
from tests.support import external_data

DATA = external_data("rsa92")  # ../shared beside the repo
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"the rsa92 external data are not at {DATA}")
N = 92


@pytest.fixture(autouse=True)
def private_uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))


def condensed(square):
    return squareform(np.asarray(square, dtype=np.float64), checks=False)


@needs_data
def test_the_92_brain_rdms_are_four_subjects_with_their_sessions_averaged():
    rdms, names = R.read_named_reference(DATA / "92_brainRDMs.mat", ".mat", N)
    assert names == ["hIT | BE", "hIT | KO", "hIT | SN", "hIT | TI"]
    raw = scipy.io.loadmat(DATA / "92_brainRDMs.mat")["RDMs"]  # (1, 4, 2): mask, subject, session
    expected = [(condensed(raw[0, s, 0]["RDM"]) + condensed(raw[0, s, 1]["RDM"])) / 2 for s in range(4)]
    np.testing.assert_allclose(rdms, np.stack(expected), rtol=1e-12)
    assert R.read_reference(DATA / "92_brainRDMs.mat", ".mat", N).shape == (4, N * (N - 1) // 2)


@needs_data
def test_the_92_model_rdms_are_eight_named_rows_of_any_numeric_type():
    rdms, names = R.read_named_reference(DATA / "92_modelRDMs.mat", ".mat", N)
    assert names == ["animacy", "FaceBodyManmadeNatobj", "monkeyIT", "EVA", "HMAX", "V1", "Silhouette", "RADON"]
    raw = scipy.io.loadmat(DATA / "92_modelRDMs.mat")["Models"]
    for row, name in enumerate(names):
        np.testing.assert_array_equal(rdms[row], condensed(raw[0, row]["RDM"]), err_msg=name)
    assert set(np.unique(rdms[0])) == {0.0, 1.0}  # animacy: uint8 0/1


@needs_data
def test_the_supplemental_files_condensed_fig1_rdms_are_chosen_over_its_other_variables():
    rdms, names = R.read_named_reference(DATA / "Kriegeskorte_Neuron2008_supplementalData.mat", ".mat", N)
    assert names == ["mIT_674neurons", "hITvisStim_316vx"] and rdms.shape == (2, 4186)
    with pytest.raises(ValueError, match=r"shape \(92, 12\): a reference"):  # chosen by name, but no RDM
        R.read_named_reference(DATA / "Kriegeskorte_Neuron2008_supplementalData.mat", ".mat", N,
                               variable="categoryVectors")


def _matlab_text(text):
    return np.array([ord(c) for c in text], dtype=np.uint16)[:, None]  # MATLAB (1, len), reversed


def write_v73_structs(path, structs):
    """A v7.3 .mat as MATLAB writes struct arrays: per variable a group (MATLAB_class 'struct',
    MATLAB_fields), each field a dataset of object references with the dimensions reversed,
    pointing into '#refs#' at datasets (arrays column-major; text as uint16 'char')."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM"
    counter = iter(range(10**6))
    with h5py.File(path, "w", userblock_size=512) as handle:
        refs = handle.create_group("#refs#")
        for name, (shape, elements) in structs.items():
            group = handle.create_group(name)
            group.attrs["MATLAB_class"] = np.bytes_("struct")
            fields = list(elements[0])
            vlen = h5py.vlen_dtype(np.dtype("S1"))
            listed = np.empty(len(fields), dtype=vlen)
            for i, field in enumerate(fields):
                listed[i] = np.array([c.encode() for c in field], dtype="S1")
            group.attrs["MATLAB_fields"] = listed
            for field in fields:
                pointers = np.empty(tuple(reversed(shape)), dtype=h5py.ref_dtype)
                for flat, index in enumerate(np.ndindex(*shape)):
                    value = elements[flat][field]
                    if isinstance(value, str):
                        data, matlab_class = _matlab_text(value), "char"
                    else:
                        data, matlab_class = np.asarray(value).T, {"float64": "double", "float32": "single",
                                                                   "uint8": "uint8"}[np.asarray(value).dtype.name]
                    target = refs.create_dataset(f"r{next(counter)}", data=data)
                    target.attrs["MATLAB_class"] = np.bytes_(matlab_class)
                    if matlab_class == "char":
                        target.attrs["MATLAB_int_decode"] = np.int32(2)
                    pointers[tuple(reversed(index))] = target.ref
                group.create_dataset(field, data=pointers)
    with open(path, "r+b") as handle:
        handle.write(header.ljust(512, b"\x00"))


def brain_like(subjects=3, sessions=2, n=6, seed=0):
    """(elements in row-major order of (1, subjects, sessions), their square RDMs)."""
    rng = np.random.default_rng(seed)
    from scipy.spatial.distance import pdist

    squares = {(0, s, t): squareform(pdist(rng.normal(size=(n, 4)))) for s in range(subjects) for t in range(sessions)}
    elements = [{"RDM": squares[i], "name": f"V1 | S{i[1] + 1} | Session: {i[2] + 1}"} for i in sorted(squares)]
    return elements, squares


def test_v73_struct_arrays_read_like_v5(tmp_path):
    elements, squares = brain_like()
    write_v73_structs(tmp_path / "brain73.mat", {"RDMs": ((1, 3, 2), elements)})
    assert scipy.io.matlab.matfile_version(str(tmp_path / "brain73.mat"))[0] == 2
    record = np.empty((1, 3, 2), dtype=[("RDM", "O"), ("name", "O")])
    for index, element in zip(np.ndindex(1, 3, 2), elements):
        record[index] = (element["RDM"], element["name"])
    scipy.io.savemat(tmp_path / "brain5.mat", {"RDMs": record})
    v73 = R.read_named_reference(tmp_path / "brain73.mat", ".mat", 6)
    v5 = R.read_named_reference(tmp_path / "brain5.mat", ".mat", 6)
    assert v73[1] == v5[1] == ["V1 | S1", "V1 | S2", "V1 | S3"]
    expected = [(condensed(squares[0, s, 0]) + condensed(squares[0, s, 1])) / 2 for s in range(3)]
    np.testing.assert_allclose(v73[0], np.stack(expected), rtol=1e-12)
    np.testing.assert_array_equal(v73[0], v5[0])


def test_v73_condensed_rows_in_a_row_vector_of_models(tmp_path):
    elements, squares = brain_like(subjects=1, sessions=3)
    models = [{"RDM": condensed(e["RDM"])[None].astype(np.float32), "name": f"model {i}"} for i, e in enumerate(elements)]
    write_v73_structs(tmp_path / "models.mat", {"Models": ((1, 3), models)})
    rdms, names = R.read_named_reference(tmp_path / "models.mat", ".mat", 6)
    assert names == ["model 0", "model 1", "model 2"]
    np.testing.assert_allclose(rdms, np.stack([condensed(squares[0, 0, t]) for t in range(3)]), rtol=1e-6)


def save_struct(path, elements, shape=None, name="RDMs", **more):
    fields = list(elements[0])
    record = np.empty(shape or (1, len(elements)), dtype=[(f, "O") for f in fields])
    for index, element in zip(np.ndindex(*record.shape), elements):
        record[index] = tuple(element[f] for f in fields)
    scipy.io.savemat(path, {name: record, **more})


@pytest.mark.parametrize("spoil, problem", [
    (lambda e: [{"data": x["RDM"], "name": x["name"]} for x in e],
     r"no struct array with an RDM field \(it has RDMs \(fields data, name\)\)"),
    (lambda e: e[:1] + [{"RDM": e[1]["RDM"][:5, :5], "name": e[1]["name"]}] + e[2:],
     r"RDMs\(1,2\) 'V1 \| S1 \| Session: 2' has a 5 x 5 RDM but RDMs\(1,1\) 'V1 \| S1 \| Session: 1' has 6 x 6"),
    (lambda e: e[:2] + [{"RDM": "not a matrix", "name": e[2]["name"]}] + e[3:],
     r"RDMs\(1,3\) 'V1 \| S2 \| Session: 1': its RDM field holds text, not numbers"),
    (lambda e: e[:2] + [{"RDM": np.array([[1, 2]], dtype=object), "name": e[2]["name"]}] + e[3:],
     "its RDM field holds a cell array, not numbers"),
])
def test_bad_struct_arrays_are_refused_by_name(tmp_path, spoil, problem):
    elements, _ = brain_like()
    save_struct(tmp_path / "bad.mat", spoil(elements))
    with pytest.raises(ValueError, match=problem):
        R.read_named_reference(tmp_path / "bad.mat", ".mat", 6)


def test_nans_and_asymmetry_name_the_element(tmp_path):
    elements, _ = brain_like()
    elements[3]["RDM"] = elements[3]["RDM"].copy()
    elements[3]["RDM"][2, 4] = np.nan
    save_struct(tmp_path / "nan.mat", elements, shape=(1, 3, 2))
    with pytest.raises(ValueError, match=r"RDMs\(1,2,2\) 'V1 \| S2 \| Session: 2': its RDM has NaN or infinite "
                                         r"values in rows \(stimuli\) 2"):
        R.read_named_reference(tmp_path / "nan.mat", ".mat", 6)
    elements, _ = brain_like()
    elements[0]["RDM"] = elements[0]["RDM"] + np.triu(np.ones((6, 6)), 1)
    save_struct(tmp_path / "asym.mat", elements, shape=(1, 3, 2))
    with pytest.raises(ValueError, match=r"RDMs\(1,1,1\) 'V1 \| S1 \| Session: 1': its RDM is not symmetric"):
        R.read_named_reference(tmp_path / "asym.mat", ".mat", 6)
    with pytest.raises(ValueError, match=r"RDMs\(1,1,1\) 'V1 \| S1 \| Session: 1' has shape \(6, 6\); it is an RDM "
                                         r"over 6 stimuli, not 8"):
        R.read_named_reference(tmp_path / "asym.mat", ".mat", 8)


def test_several_regions_several_struct_arrays_and_nothing_usable_are_explained(tmp_path):
    elements, _ = brain_like(subjects=2, sessions=1)
    save_struct(tmp_path / "masks.mat", elements + elements, shape=(2, 2, 1))
    with pytest.raises(ValueError, match=r"holds RDMs of 2 regions .*save RDMs\(1, :, :\) alone"):
        R.read_named_reference(tmp_path / "masks.mat", ".mat", 6)
    record = np.empty((1, 2), dtype=[("RDM", "O"), ("name", "O")])
    for i in range(2):
        record[0, i] = (elements[i]["RDM"], elements[i]["name"])
    scipy.io.savemat(tmp_path / "two.mat", {"brain": record, "models": record})
    with pytest.raises(ValueError, match=r"several struct arrays of RDMs \(brain, models\)"):
        R.read_named_reference(tmp_path / "two.mat", ".mat", 6)
    rdms, names = R.read_named_reference(tmp_path / "two.mat", ".mat", 6, variable="models")
    assert len(rdms) == 2 and names == ["V1 | S1 | Session: 1", "V1 | S2 | Session: 1"]
    info = np.empty((1, 1), dtype=[("subject", "O")])
    info[0, 0] = ("BE",)
    scipy.io.savemat(tmp_path / "none.mat", {"info": info, "note": "text"})
    with pytest.raises(ValueError, match=r"no numeric variable and no struct array with an RDM field \(it has info "
                                         r"\(fields subject\)\)"):
        R.read_named_reference(tmp_path / "none.mat", ".mat", 6)
    with pytest.raises(ValueError, match=r"the struct array 'info' has no RDM field \(its fields: subject\)"):
        R.read_named_reference(tmp_path / "none.mat", ".mat", 6, variable="info")
    with pytest.raises(ValueError, match="no numeric variable or struct array called 'rdm'; it holds info, note"):
        R.read_named_reference(tmp_path / "none.mat", ".mat", 6, variable="rdm")


def test_subject_names_are_stored_and_old_entries_still_load(tmp_path):
    elements, _ = brain_like()
    save_struct(tmp_path / "brain.mat", elements, shape=(1, 3, 2))
    rdms, names = R.read_named_reference(tmp_path / "brain.mat", ".mat", 6)
    info = R.save_reference(rdms, "brain", FakeStimuli(), names)
    assert R.reference_info(info.key).subject_names == ("V1 | S1", "V1 | S2", "V1 | S3")
    assert info.key == R.reference_key(rdms)  # names never change the key
    assert R.reference_info(info.key).row_name(1) == "V1 | S2"
    plain = R.save_reference(rdms[:2], "no names", FakeStimuli())
    assert plain.subject_names is None and plain.row_name(1) == "subject 2"
    with pytest.raises(ValueError, match="2 subject names for 3 RDMs"):
        R.save_reference(rdms, "brain", FakeStimuli(), names[:2])
    stored = tmp_path / "uploads" / "references" / f"{plain.key}.json"
    entry = json.loads(stored.read_text())
    del entry["subject_names"]  # as written before names were kept
    stored.write_text(json.dumps(entry))
    assert R.reference_info(plain.key).subject_names is None
    assert [r.key for r in R.list_references(FakeStimuli())] == [plain.key, info.key]


def test_rows_of_other_references_are_candidates_and_their_own_are_not(tmp_path):
    elements, squares = brain_like()
    brain = R.save_reference(np.stack([condensed(squares[0, s, 0]) for s in range(3)]), "brain", FakeStimuli())
    models = R.save_reference(np.stack([condensed(squares[0, 0, 1]), condensed(squares[0, 2, 1])]), "models",
                              FakeStimuli(), ["monkeyIT", "V1"])
    (monkey,) = R.candidate_rdms(brain.key, [(models.key, 0)])
    np.testing.assert_array_equal(monkey, condensed(squares[0, 0, 1]))
    with pytest.raises(ValueError, match="subject 1 of 'brain' is a subject of the reference itself"):
        R.candidate_rdms(brain.key, [(brain.key, 0)])
    with pytest.raises(ValueError, match="rows 0 to 1, not 2"):
        R.candidate_rdms(brain.key, [(models.key, 2)])
    elsewhere = R.save_reference(np.stack([condensed(squares[0, 1, 1])]), "other set", FakeStimuli("other", "o" * 64))
    with pytest.raises(ValueError, match="over stimulus set 'other', not 'tiny'"):
        R.candidate_rdms(brain.key, [(elsewhere.key, 0)])
