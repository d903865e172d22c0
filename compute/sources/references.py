"""Reference RDMs (e.g. brain data): read from a file safely, validated, stored by content hash.

A reference is S >= 1 subjects' RDMs over the N stimuli of one stimulus set, kept as an
(S, K) float64 array of condensed RDMs (K = N(N-1)/2, scipy ``squareform`` order) in
``<upload_dir>/references/<key>.npy`` with ``<key>.json`` (name, subjects, stimuli, stimulus
set and its content key). ``key`` is the sha256 of the array's shape and float64 bytes.

Files (:func:`read_reference`; nothing is ever unpickled):

- ``.npy``: ``np.load(allow_pickle=False)``;
- ``.csv``: numbers separated by commas (or whitespace), no header: an N x N matrix, one row
  (or column) of K values, one row per subject of K values, or S N x N matrices one below the
  other (S*N rows of N);
- ``.mat``: MATLAB v5 (``scipy.io.loadmat``) or v7.3 (HDF5, read with h5py): the variable named
  ``rdms`` or ``rdm``, else the only numeric one;
- ``.hdf5``/``.h5``: an rsatoolbox ``RDMs.save(..., file_type='hdf5')`` file: its
  ``dissimilarities`` dataset (n_rdm x K).

Shapes (:func:`subject_rdms`): (N, N) square, (K,) condensed, (S, N, N) or (S, K) for several
subjects; subjects may also be on the last axis, (N, N, S) or (K, S), as MATLAB stores them, or
stacked as (S*N, N). Square RDMs must be symmetric with a zero diagonal; every value finite.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from compute.measures.condensed import side_from_length
from compute.settings import format_bytes, private_dir, upload_dir
from compute.sources.files import write_atomic

SUFFIXES = (".npy", ".csv", ".mat", ".hdf5", ".h5")
FORMATS = ".npy, .csv, .mat (v5 or v7.3) or an rsatoolbox .hdf5 (RDMs.save)"
MAX_VALUES = 10**8  # 800 MB of float64, in the file as read
_PREFERRED = ("rdms", "rdm")
_NUMERIC = ("double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ReferenceInfo:
    """What is known of a stored reference without reading its array."""

    key: str
    name: str
    subjects: int
    stimuli: int  # N
    stimulus_set: str
    stimulus_key: str
    created: float

    @property
    def label(self) -> str:
        return f"{self.name} ({self.subjects} subject{'s' if self.subjects != 1 else ''}, {self.key[:8]})"


# --- reading files --------------------------------------------------------------------------

def _check_size(shape, what: str) -> None:
    size = int(np.prod(shape, dtype=np.int64))
    if size > MAX_VALUES:
        raise ValueError(f"{what} holds {size:,} values; at most {MAX_VALUES:,} are accepted")


def _numeric(array, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds {array.dtype} values, not numbers")
    return array.astype(np.float64)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy file's header, checked against the file's length, so a file
    that is not .npy, is truncated or needs pickle is told apart before any data is read."""
    from numpy.lib import format as npy

    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    size = path.stat().st_size
    with open(path, "rb") as handle:
        try:
            version = npy.read_magic(handle)
            shape, _, dtype = readers[version](handle)
        except (ValueError, KeyError, EOFError, SyntaxError):
            if zipfile.is_zipfile(path):
                raise ValueError("the .npy file is an .npz archive of several arrays; save one array with "
                                 "np.save") from None
            raise ValueError("not a valid .npy file: its header is missing, truncated or not numpy's; save "
                             "the array with np.save") from None
        start = handle.tell()
    if dtype.hasobject:
        raise ValueError("the .npy file cannot be read without pickle, which can run code: it holds Python "
                         "objects (dtype object); save an array of numbers")
    expected = start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise ValueError(f"the .npy file is truncated: its header announces a {shape} {dtype} array, which "
                         f"needs {format_bytes(expected)}, but the file has {format_bytes(size)}; upload the "
                         "whole file")
    return shape, dtype


def _read_npy(path: Path) -> np.ndarray:
    shape, _ = _npy_header(path)
    _check_size(shape, "the .npy array")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"not a readable .npy file ({error})") from None
    return _numeric(array, "the .npy array")


def _read_csv(path: Path) -> np.ndarray:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "")
    try:
        array = np.loadtxt(path, delimiter="," if "," in first else None, ndmin=2, dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"the .csv file must hold numbers only, with no header ({error})") from None
    _check_size(array.shape, "the .csv file")
    return array


def _read_hdf5_dataset(dataset, what: str) -> np.ndarray:
    _check_size(dataset.shape, what)
    if dataset.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds {dataset.dtype} values, not numbers")
    return np.asarray(dataset[()], dtype=np.float64)


def _pick(names: list[str], what: str) -> str:
    for preferred in _PREFERRED:
        if preferred in names:
            return preferred
    if len(names) == 1:
        return names[0]
    found = "several numeric variables: " + ", ".join(names) if names else "no numeric variable"
    raise ValueError(f"{what} holds {found}; name the RDM variable 'rdms' (several subjects) or 'rdm'")


def _read_mat(path: Path) -> np.ndarray:
    import scipy.io

    try:
        major, _ = scipy.io.matlab.matfile_version(str(path))
    except (ValueError, OSError) as error:
        raise ValueError(f"not a readable MATLAB .mat file ({error})") from None
    if major == 2:  # v7.3: an HDF5 file, stored column-major
        import h5py

        with h5py.File(path, "r") as handle:
            names = [k for k, v in handle.items() if isinstance(v, h5py.Dataset) and v.dtype.kind in "biuf"]
            name = _pick(names, "the .mat (v7.3) file")
            return _read_hdf5_dataset(handle[name], f"variable {name!r}").T
    listing = scipy.io.whosmat(str(path), appendmat=False)
    shapes = {name: shape for name, shape, kind in listing if kind in _NUMERIC}
    name = _pick(list(shapes), "the .mat file")
    _check_size(shapes[name], f"variable {name!r}")
    return _numeric(scipy.io.loadmat(str(path), variable_names=[name], appendmat=False)[name], f"variable {name!r}")


def _read_rsatoolbox(path: Path) -> np.ndarray:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"not a readable HDF5 file ({error})") from None
    with handle:
        dataset = handle.get("dissimilarities")
        if not isinstance(dataset, h5py.Dataset):
            raise ValueError("the HDF5 file has no 'dissimilarities' dataset; save the RDMs with rsatoolbox's "
                             "RDMs.save(filename, file_type='hdf5')")
        return _read_hdf5_dataset(dataset, "the 'dissimilarities' dataset")


_READERS = {".npy": _read_npy, ".csv": _read_csv, ".mat": _read_mat, ".hdf5": _read_rsatoolbox, ".h5": _read_rsatoolbox}


def read_reference(path: str | Path, suffix: str, n: int, stimulus_set: str = "the stimulus set") -> np.ndarray:
    """The (S, K) float64 subjects' RDMs in the file at ``path``, read as format ``suffix``
    (one of :data:`SUFFIXES`) and checked against ``n`` stimuli (those of ``stimulus_set``)."""
    if suffix not in _READERS:
        raise ValueError(f"the format {suffix!r} is not accepted for a reference RDM; accepted: {FORMATS}")
    return subject_rdms(_READERS[suffix](Path(path)), n, stimulus_set)


# --- shapes and checks ----------------------------------------------------------------------

def subject_rdms(array, n: int, stimulus_set: str = "the stimulus set") -> np.ndarray:
    """``array`` of one of the accepted shapes (see the module docstring) as (S, K) float64
    condensed RDMs over ``n`` stimuli; ValueError naming the problem otherwise."""
    array = _numeric(array, "the reference")
    k = n * (n - 1) // 2
    shape = array.shape
    accepted = (f"a reference for {stimulus_set} ({n} stimuli) must be ({n}, {n}), ({k},) condensed, "
                f"or (subjects, {n}, {n}) / (subjects, {k}) for several subjects")
    if n < 3:
        raise ValueError(f"{stimulus_set} has {n} stimuli; an RDM needs at least 3")
    if array.ndim == 1 and shape[0] == k:
        return _finite(array[None], "condensed")
    if array.ndim == 2 and shape == (n, n):
        return _condensed(array[None])
    if array.ndim == 2 and shape[1] == k:
        return _finite(array, "condensed")
    if array.ndim == 2 and shape[0] == k:
        return _finite(np.ascontiguousarray(array.T), "condensed")
    if array.ndim == 2 and shape[1] == n and shape[0] % n == 0:  # square RDMs one below the other
        return _condensed(array.reshape(-1, n, n))
    if array.ndim == 3 and shape[1:] == (n, n):
        return _condensed(array)
    if array.ndim == 3 and shape[:2] == (n, n):
        return _condensed(np.moveaxis(array, 2, 0))
    side = _side(shape)
    found = f"; it is an RDM over {side} stimuli, not {n}" if side and side != n else ""
    raise ValueError(f"the reference has shape {shape}{found}: {accepted}")


def _side(shape) -> int | None:
    """The number of stimuli a recognisable RDM shape is over, if any."""
    if len(shape) in (2, 3) and shape[-1] == shape[-2]:
        return int(shape[-1])
    if len(shape) == 3 and shape[0] == shape[1]:
        return int(shape[0])
    k = shape[-1] if shape else 0
    side = side_from_length(k)
    return side if side is not None and side >= 3 else None


def _finite(rdms: np.ndarray, form: str) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(rdms).all(axis=1))
    if bad.size:
        raise ValueError(f"subject {int(bad[0])}'s {form} RDM has NaN or infinite values; every dissimilarity "
                         "must be a finite number")
    return np.ascontiguousarray(rdms)


def _condensed(square: np.ndarray) -> np.ndarray:
    """(S, N, N) symmetric zero-diagonal RDMs as (S, K) upper triangles."""
    n = square.shape[1]
    for s, matrix in enumerate(square):
        if not np.isfinite(matrix).all():
            rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
            raise ValueError(f"subject {s}'s RDM has NaN or infinite values in rows (stimuli) "
                             f"{', '.join(map(str, rows[:10]))}; every dissimilarity must be a finite number")
        scale = max(1.0, float(np.abs(matrix).max()))
        asymmetry = float(np.abs(matrix - matrix.T).max())
        if asymmetry > 1e-6 * scale:
            raise ValueError(f"subject {s}'s RDM is not symmetric (max |D - D.T| = {asymmetry:.3g}); "
                             "a dissimilarity matrix must be")
        diagonal = float(np.abs(np.diag(matrix)).max())
        if diagonal > 1e-6 * scale:
            raise ValueError(f"subject {s}'s RDM has a non-zero diagonal (max {diagonal:.3g}); a stimulus' "
                             "dissimilarity to itself must be 0")
    rows, cols = np.triu_indices(n, 1)
    return np.ascontiguousarray(square[:, rows, cols])


# --- the store ------------------------------------------------------------------------------

def reference_key(rdms: np.ndarray) -> str:
    """sha256 of the (S, K) array's shape and float64 bytes."""
    rdms = np.ascontiguousarray(rdms, dtype=np.float64)
    return hashlib.sha256(repr(rdms.shape).encode() + rdms.tobytes()).hexdigest()


def _directory(create: bool = True) -> Path:
    directory = upload_dir(create) / "references"
    return private_dir(directory) if create else directory


def save_reference(rdms: np.ndarray, name: str, stimuli) -> ReferenceInfo:
    """Store (S, K) condensed ``rdms`` (from :func:`subject_rdms`) over ``stimuli`` (a
    StimulusSet) under their key; an identical array stored before keeps its first name."""
    rdms = np.ascontiguousarray(rdms, dtype=np.float64)
    n = len(stimuli)
    if rdms.ndim != 2 or rdms.shape[1] != n * (n - 1) // 2 or not np.isfinite(rdms).all():
        raise ValueError(f"save_reference needs finite (subjects, {n * (n - 1) // 2}) condensed RDMs over the "
                         f"{n} stimuli of {stimuli.name!r}, got shape {rdms.shape}")
    key = reference_key(rdms)
    directory = _directory()
    if (directory / f"{key}.json").exists():
        return reference_info(key)
    info = ReferenceInfo(key, name, int(rdms.shape[0]), len(stimuli), stimuli.name, stimuli.key, time.time())
    write_atomic(directory / f"{key}.npy", lambda handle: np.save(handle, rdms, allow_pickle=False))
    write_atomic(directory / f"{key}.json", lambda handle: handle.write(json.dumps(asdict(info)).encode()))
    return info


def reference_info(key: str) -> ReferenceInfo:
    """The stored reference ``key``; ValueError for a malformed or unknown key."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a reference key (64 hexadecimal digits)")
    path = _directory(create=False) / f"{key}.json"
    if not path.exists():
        raise ValueError(f"no reference RDM {key[:12]}… is stored; upload it again")
    return ReferenceInfo(**json.loads(path.read_text()))


def load_reference(key: str) -> np.ndarray:
    """The stored (S, K) float64 array of reference ``key``, checked against its key."""
    reference_info(key)
    rdms = np.load(_directory(create=False) / f"{key}.npy", allow_pickle=False)
    if reference_key(rdms) != key:
        raise ValueError(f"the stored reference RDM {key[:12]}… does not match its key (corrupt); upload it again")
    return rdms


def list_references(stimuli) -> list[ReferenceInfo]:
    """The references stored for ``stimuli`` (same content key), newest first."""
    directory = _directory(create=False)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("*.json"):
        if _KEY.fullmatch(path.stem):
            info = ReferenceInfo(**json.loads(path.read_text()))
            if info.stimulus_key == stimuli.key:
                found.append(info)
    return sorted(found, key=lambda info: -info.created)
