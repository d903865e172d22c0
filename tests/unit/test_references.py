"""Reference RDMs: every accepted file format read back exactly, bad files refused by name,
the content-hash store, and the upload worker's "reference" kind."""
import stat
from dataclasses import dataclass

import h5py
import numpy as np
import pytest
import scipy.io
from scipy.spatial.distance import pdist, squareform

from compute.sources import references as R
from compute.sources import uploads as U
from compute.sources.upload_worker import run_in_worker

N = 6


@dataclass
class FakeStimuli:
    """What the store needs of a StimulusSet: a name, a content key and a length."""

    name: str = "tiny"
    key: str = "k" * 64
    n: int = N

    def __len__(self):
        return self.n


@pytest.fixture(autouse=True)
def private_uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_UPLOAD_DIR", str(tmp_path / "uploads"))


def subjects(s=3, n=N, seed=0):
    """(s, K) condensed Euclidean RDMs of random patterns, and the same as (s, n, n)."""
    rng = np.random.default_rng(seed)
    condensed = np.stack([pdist(rng.normal(size=(n, 4))) for _ in range(s)])
    return condensed, np.stack([squareform(c) for c in condensed])


def write_v73(path, variables):
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 after a 512-byte header, arrays column-major."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM"
    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, value in variables.items():
            handle.create_dataset(name, data=np.asarray(value).T)
    with open(path, "r+b") as handle:
        handle.write(header.ljust(512, b"\x00"))


def test_npy_in_every_shape_reads_back_as_condensed_subjects(tmp_path):
    condensed, square = subjects()
    for array, expected in [(square[0], condensed[:1]), (condensed[0], condensed[:1]), (square, condensed),
                            (condensed, condensed), (np.moveaxis(square, 0, 2), condensed), (condensed.T, condensed)]:
        np.save(tmp_path / "r.npy", array)
        np.testing.assert_array_equal(R.read_reference(tmp_path / "r.npy", ".npy", N), expected)


@pytest.mark.parametrize("delimiter", [",", " "])
def test_csv_layouts(tmp_path, delimiter):
    condensed, square = subjects(2)
    path = tmp_path / "r.csv"
    one = condensed[:1]
    for array, expected in [(square[0], one), (one, one), (one.T, one), (condensed, condensed),
                            (square.reshape(2 * N, N), condensed)]:
        np.savetxt(path, array, delimiter=delimiter)
        np.testing.assert_allclose(R.read_reference(path, ".csv", N), expected, rtol=1e-15)


def test_csv_with_a_header_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n" + "\n".join(",".join("1" for _ in range(N)) for _ in range(N)))
    with pytest.raises(ValueError, match="numbers only, with no header"):
        R.read_reference(path, ".csv", N)


def test_mat_v5_picks_the_rdm_variable_and_matlab_subject_order(tmp_path):
    condensed, square = subjects()
    path = tmp_path / "r.mat"
    scipy.io.savemat(path, {"rdms": np.moveaxis(square, 0, 2), "labels": np.arange(N), "note": "from fMRI"})
    np.testing.assert_array_equal(R.read_reference(path, ".mat", N), condensed)
    scipy.io.savemat(path, {"D": square[0], "note": "one numeric variable"})
    np.testing.assert_array_equal(R.read_reference(path, ".mat", N), condensed[:1])


def test_mat_with_several_numeric_variables_lists_them(tmp_path):
    _, square = subjects()
    scipy.io.savemat(tmp_path / "r.mat", {"a": square[0], "b": square[1]})
    with pytest.raises(ValueError, match="several numeric variables: a, b; name the RDM variable 'rdms'"):
        R.read_reference(tmp_path / "r.mat", ".mat", N)


def test_mat_v73_is_read_through_hdf5(tmp_path):
    condensed, square = subjects()
    path = tmp_path / "r.mat"
    write_v73(path, {"rdm": np.moveaxis(square, 0, 2), "other": np.arange(3.0)})
    assert scipy.io.matlab.matfile_version(str(path))[0] == 2
    np.testing.assert_array_equal(R.read_reference(path, ".mat", N), condensed)


def test_rsatoolbox_hdf5_dissimilarities(tmp_path):
    from rsatoolbox.rdm import RDMs

    condensed, _ = subjects(4)
    RDMs(condensed, dissimilarity_measure="euclidean").save(str(tmp_path / "r.hdf5"), file_type="hdf5")
    np.testing.assert_array_equal(R.read_reference(tmp_path / "r.hdf5", ".hdf5", N), condensed)
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["data"] = condensed
    with pytest.raises(ValueError, match="no 'dissimilarities' dataset"):
        R.read_reference(tmp_path / "other.h5", ".h5", N)


def test_a_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "r.npy", np.array([{"rdm": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot be read without pickle"):
        R.read_reference(tmp_path / "r.npy", ".npy", N)


def test_wrong_number_of_stimuli_names_both(tmp_path):
    _, square = subjects(n=8)
    np.save(tmp_path / "r.npy", square)
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\); it is an RDM over 8 stimuli, not 6: a reference for "
                                         r"stimulus set 'tiny' \(6 stimuli\)"):
        R.read_reference(tmp_path / "r.npy", ".npy", N, "stimulus set 'tiny'")


@pytest.mark.parametrize("spoil, problem", [
    (lambda sq, c: sq.__setitem__((1, 2, 3), np.nan), "subject 1's RDM has NaN or infinite values in rows"),
    (lambda sq, c: sq.__setitem__((0, 0, 1), 5.0), "subject 0's RDM is not symmetric"),
    (lambda sq, c: sq.__setitem__((2, 4, 4), 1.0), "subject 2's RDM has a non-zero diagonal"),
])
def test_bad_square_rdms_are_refused_naming_the_subject(spoil, problem):
    condensed, square = subjects()
    spoil(square, condensed)
    with pytest.raises(ValueError, match=problem):
        R.subject_rdms(square, N)


def test_non_finite_condensed_and_non_numeric_are_refused():
    condensed, _ = subjects()
    condensed[1, 0] = np.inf
    with pytest.raises(ValueError, match="subject 1's condensed RDM has NaN or infinite"):
        R.subject_rdms(condensed, N)
    with pytest.raises(ValueError, match="not numbers"):
        R.subject_rdms(np.array(["a"] * 15), N)


def test_the_size_cap_is_checked_before_reading(tmp_path, monkeypatch):
    _, square = subjects()
    np.save(tmp_path / "r.npy", square)
    monkeypatch.setattr(R, "MAX_VALUES", 100)
    with pytest.raises(ValueError, match="holds 108 values; at most 100"):
        R.read_reference(tmp_path / "r.npy", ".npy", N)


def test_store_by_content_hash_list_and_load(tmp_path):
    condensed, _ = subjects()
    info = R.save_reference(condensed, "brain", FakeStimuli())
    assert info.key == R.reference_key(condensed) and (info.subjects, info.stimuli) == (3, N)
    np.testing.assert_array_equal(R.load_reference(info.key), condensed)
    assert R.save_reference(condensed.copy(), "renamed", FakeStimuli()).name == "brain"  # same content, one entry
    other = R.save_reference(condensed[:1], "one", FakeStimuli())
    assert [r.key for r in R.list_references(FakeStimuli())] == [other.key, info.key]  # newest first
    assert R.list_references(FakeStimuli(key="z" * 64)) == []
    folder = tmp_path / "uploads" / "references"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / f"{info.key}.npy").stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="not a reference key"):
        R.load_reference("../../etc/passwd")
    with pytest.raises(ValueError, match="no reference RDM"):
        R.load_reference("0" * 64)
    np.save(folder / f"{info.key}.npy", condensed + 1)
    with pytest.raises(ValueError, match="does not match its key"):
        R.load_reference(info.key)


def test_the_upload_worker_stores_a_reference_for_the_stimulus_set(tmp_path, zoo_dir):
    from compute.sources.stimuli import get_stimulus_set

    digits = get_stimulus_set("digits")
    rng = np.random.default_rng(3)
    square = np.stack([squareform(pdist(rng.normal(size=(len(digits), 3)))) for _ in range(2)])
    with open(tmp_path / "upload.part", "wb") as handle:  # a received upload: no suffix
        np.save(handle, square)
    result = run_in_worker("reference", path=str(tmp_path / "upload.part"), filename="My brain.npy",
                             stimulus_set="digits")
    assert result == {"reference": R.reference_key(np.stack([squareform(s) for s in square])), "name": "My-brain",
                      "subjects": 2, "stimuli": len(digits), "stimulus_set": "digits", "subject_names": None}
    assert [r.key for r in R.list_references(digits)] == [result["reference"]]
    with open(tmp_path / "small.part", "wb") as handle:
        np.save(handle, square[:, :10, :10])
    with pytest.raises(U.UploadError, match="RDM over 10 stimuli, not 500"):
        run_in_worker("reference", path=str(tmp_path / "small.part"), filename="small.npy", stimulus_set="digits")
    with pytest.raises(U.UploadError, match="is not accepted.*rsatoolbox"):
        U.check_filename("reference", "brain.pkl")
