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
- ``.mat``: MATLAB v5 or v7.3 (:mod:`compute.sources.matfiles`): a struct array of RDMs as the
  MATLAB RSA toolbox keeps them (``RDMs(mask, subject, session).RDM`` with its ``name``: one row
  per subject, sessions averaged, names kept; see :mod:`compute.sources.matlab_rdms`), else the
  numeric variable named ``rdms`` or ``rdm``, else the only numeric one;
- ``.hdf5``/``.h5``: an rsatoolbox ``RDMs.save(..., file_type='hdf5')`` file: its
  ``dissimilarities`` dataset (n_rdm x K).

Shapes (:func:`subject_rdms`): (N, N) square, (K,) condensed, (S, N, N) or (S, K) for several
subjects; subjects may also be on the last axis, (N, N, S) or (K, S), as MATLAB stores them, or
stacked as (S*N, N). Square RDMs must be symmetric with a zero diagonal; every value finite.
A reference keeps its subjects' names when the file has them (:attr:`ReferenceInfo.subject_names`).
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
    subject_names: tuple[str, ...] | None = None  # one per row, when the file named them

    def __post_init__(self):
        if self.subject_names is not None:  # a JSON list read back
            object.__setattr__(self, "subject_names", tuple(self.subject_names))

    def row_name(self, row: int) -> str:
        """The name of row (subject) ``row``: the file's, else ``subject <row + 1>``."""
        return self.subject_names[row] if self.subject_names else f"subject {row + 1}"

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


def _read_mat(path: Path, variable: str | None = None):
    """A numeric array, or the subjects of a struct array of RDMs (compute.sources.matlab_rdms)."""
    from compute.sources.matlab_rdms import read_mat_rdms

    return read_mat_rdms(path, variable, MAX_VALUES)


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
    return read_named_reference(path, suffix, n, stimulus_set)[0]


def read_named_reference(path: str | Path, suffix: str, n: int, stimulus_set: str = "the stimulus set",
                         variable: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """(the (S, K) RDMs as :func:`read_reference` gives them, the subjects' names or None); a
    .mat file's ``variable`` may be named (default: see compute.sources.matlab_rdms)."""
    if suffix not in _READERS:
        raise ValueError(f"the format {suffix!r} is not accepted for a reference RDM; accepted: {FORMATS}")
    found = _read_mat(Path(path), variable) if suffix == ".mat" else _READERS[suffix](Path(path))
    if isinstance(found, list):
        return _subjects_of(found, n, stimulus_set), [subject.name for subject in found]
    return subject_rdms(found, n, stimulus_set), None


def _subjects_of(subjects, n: int, stimulus_set: str) -> np.ndarray:
    """(S, K): each subject's RDM, the mean over its sessions (compute.sources.matlab_rdms.Subject)."""
    rows = []
    for subject in subjects:
        sessions = []
        for entry in subject.sessions:
            rdm = subject_rdms(entry.rdm, n, stimulus_set, who=entry.label)
            if len(rdm) != 1:
                raise ValueError(f"{entry.label}: its RDM field holds {len(rdm)} RDMs {entry.rdm.shape}; an element "
                                 "of a struct array of RDMs holds one")
            sessions.append(rdm[0])
        rows.append(np.mean(sessions, axis=0))
    return np.stack(rows)


# --- shapes and checks ----------------------------------------------------------------------

def subject_rdms(array, n: int, stimulus_set: str = "the stimulus set", who: str | None = None) -> np.ndarray:
    """``array`` of one of the accepted shapes (see the module docstring) as (S, K) float64
    condensed RDMs over ``n`` stimuli; ValueError naming the problem (and ``who``, the RDM's
    name in the file, when given) otherwise."""
    array = _numeric(array, who or "the reference")
    k = n * (n - 1) // 2
    shape = array.shape
    accepted = (f"a reference for {stimulus_set} ({n} stimuli) must be ({n}, {n}), ({k},) condensed, "
                f"or (subjects, {n}, {n}) / (subjects, {k}) for several subjects")
    if n < 3:
        raise ValueError(f"{stimulus_set} has {n} stimuli; an RDM needs at least 3")
    if array.ndim == 1 and shape[0] == k:
        return _finite(array[None], "condensed", who)
    if array.ndim == 2 and shape == (n, n):
        return _condensed(array[None], who)
    if array.ndim == 2 and shape[1] == k:
        return _finite(array, "condensed", who)
    if array.ndim == 2 and shape[0] == k:
        return _finite(np.ascontiguousarray(array.T), "condensed", who)
    if array.ndim == 2 and shape[1] == n and shape[0] % n == 0:  # square RDMs one below the other
        return _condensed(array.reshape(-1, n, n), who)
    if array.ndim == 3 and shape[1:] == (n, n):
        return _condensed(array, who)
    if array.ndim == 3 and shape[:2] == (n, n):
        return _condensed(np.moveaxis(array, 2, 0), who)
    side = _side(shape)
    found = f"; it is an RDM over {side} stimuli, not {n}" if side and side != n else ""
    raise ValueError(f"{who or 'the reference'} has shape {shape}{found}: {accepted}")


def _side(shape) -> int | None:
    """The number of stimuli a recognisable RDM shape is over, if any."""
    if len(shape) in (2, 3) and shape[-1] == shape[-2]:
        return int(shape[-1])
    if len(shape) == 3 and shape[0] == shape[1]:
        return int(shape[0])
    k = shape[-1] if shape else 0
    side = side_from_length(k)
    return side if side is not None and side >= 3 else None


def _whose(s: int, who: str | None, form: str = "") -> str:
    """How a message names RDM ``s``: "subject 1's condensed RDM", or by ``who`` (a file's name)."""
    return f"{who}: its {form}RDM" if who else f"subject {s}'s {form}RDM"


def _finite(rdms: np.ndarray, form: str, who: str | None = None) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(rdms).all(axis=1))
    if bad.size:
        raise ValueError(f"{_whose(int(bad[0]), who, form + ' ')} has NaN or infinite values; every dissimilarity "
                         "must be a finite number")
    return np.ascontiguousarray(rdms)


def _condensed(square: np.ndarray, who: str | None = None) -> np.ndarray:
    """(S, N, N) symmetric zero-diagonal RDMs as (S, K) upper triangles."""
    n = square.shape[1]
    for s, matrix in enumerate(square):
        if not np.isfinite(matrix).all():
            rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
            raise ValueError(f"{_whose(s, who)} has NaN or infinite values in rows (stimuli) "
                             f"{', '.join(map(str, rows[:10]))}; every dissimilarity must be a finite number")
        scale = max(1.0, float(np.abs(matrix).max()))
        asymmetry = float(np.abs(matrix - matrix.T).max())
        if asymmetry > 1e-6 * scale:
            raise ValueError(f"{_whose(s, who)} is not symmetric (max |D - D.T| = {asymmetry:.3g}); "
                             "a dissimilarity matrix must be")
        diagonal = float(np.abs(np.diag(matrix)).max())
        if diagonal > 1e-6 * scale:
            raise ValueError(f"{_whose(s, who)} has a non-zero diagonal (max {diagonal:.3g}); a stimulus' "
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


def save_reference(rdms: np.ndarray, name: str, stimuli, subject_names=None) -> ReferenceInfo:
    """Store (S, K) condensed ``rdms`` (from :func:`subject_rdms`) over ``stimuli`` (a
    StimulusSet) under their key, with the rows' ``subject_names`` (S strings) when known; an
    identical array stored before keeps its first names."""
    rdms = np.ascontiguousarray(rdms, dtype=np.float64)
    n = len(stimuli)
    if rdms.ndim != 2 or rdms.shape[1] != n * (n - 1) // 2 or not np.isfinite(rdms).all():
        raise ValueError(f"save_reference needs finite (subjects, {n * (n - 1) // 2}) condensed RDMs over the "
                         f"{n} stimuli of {stimuli.name!r}, got shape {rdms.shape}")
    if subject_names is not None:
        subject_names = tuple(str(s) for s in subject_names)
        if len(subject_names) != len(rdms):
            raise ValueError(f"save_reference got {len(subject_names)} subject names for {len(rdms)} RDMs")
    key = reference_key(rdms)
    directory = _directory()
    if (directory / f"{key}.json").exists():
        return reference_info(key)
    info = ReferenceInfo(key, name, int(rdms.shape[0]), len(stimuli), stimuli.name, stimuli.key, time.time(),
                         subject_names)
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


def candidate_rdms(reference: str, pairs) -> list[np.ndarray]:
    """The condensed RDMs at ``(key, row)`` of ``pairs``: rows of stored references over the
    stimuli of ``reference``, to rank against it beside models' RDMs. A row of ``reference``
    itself is refused: it would be compared with the subjects it is one of."""
    own = reference_info(reference)
    rdms = []
    for key, row in pairs:
        info = reference_info(key)
        if key == reference:
            raise ValueError(f"{info.row_name(row) if 0 <= row < info.subjects else f'row {row}'} of {info.name!r} is "
                             "a subject of the reference itself; rank rows of another reference")
        if info.stimulus_key != own.stimulus_key:
            raise ValueError(f"the reference {info.name!r} is over stimulus set {info.stimulus_set!r}, not "
                             f"{own.stimulus_set!r}: its RDMs cannot be ranked against {own.name!r}")
        if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row < info.subjects:
            raise ValueError(f"the reference {info.name!r} has rows 0 to {info.subjects - 1}, not {row!r}")
        rdms.append(load_reference(key)[row])
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
