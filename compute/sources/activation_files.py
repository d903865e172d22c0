"""Activations computed elsewhere (or brain recordings), read from a file and put in a stimulus
set's order: what :mod:`compute.sources.activation_models` stores and registers as a model.

A file holds one numeric array per layer (or ROI), named by the layer:

- ``.npz`` (``np.savez``): one array per name, in the order given to ``savez``; read with
  ``allow_pickle=False``, so string arrays must be unicode (``np.array(ids, dtype=str)``), never
  object arrays;
- ``.h5``/``.hdf5``: datasets at any group depth, named by their path (``"sub1/V1"``), in h5py's
  order (creation order when the file tracks it, else by name); links and virtual datasets are
  refused;
- ``.safetensors``: one tensor per name, in the header's order (writers sort tensors by dtype and
  name: give the order as ``__metadata__["layers"]``, names separated by commas, if it matters).

A layer is (N, ...) for the N stimuli (trailing axes kept; pooling flattens or averages them),
or (R, N, ...) for R repeated measurements (runs, trials) when the file says so: the reserved
entry ``repeated`` names those layers (npz/HDF5: a string array; safetensors:
``__metadata__["repeated"]``, names separated by commas), or the uploader says that every layer
has a leading repeats axis. Reserved entries besides: ``stimulus_ids`` (N strings, the set's
``StimulusSet.ids``, or N ints, positions in the set's order) and ``labels`` (N class indices) to
put the rows in the set's order, and ``logits`` (N, C) for accuracy and confusion.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compute.errors import listed
from compute.sources.references import MAX_VALUES

RESERVED = ("stimulus_ids", "labels", "logits", "repeated")
_UNREADABLE_SAFETENSORS = ("BF16", "F8_E4M3", "F8_E5M2")  # numpy has no such dtypes


@dataclass
class FileContent:
    """A file's arrays by name, in the file's order (layers and reserved entries alike), and
    the layers its ``__metadata__`` marks as repeated (safetensors only)."""

    arrays: dict[str, np.ndarray]
    repeated: list[str] = field(default_factory=list)


@dataclass
class Activations:
    """Checked activations in a stimulus set's order: ``layers`` maps each name (file order) to
    float32 (R, N, ...) with R = 1 for layers measured once; ``logits`` float32 (N, C) or None;
    ``warnings``: what is usable but limits some measures (constant rows)."""

    layers: dict[str, np.ndarray]
    repeated: list[str]
    logits: np.ndarray | None
    warnings: list[str]


# --- reading -----------------------------------------------------------------------------------

def _bound(shapes: dict[str, tuple], what: str) -> None:
    total = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
    if total > MAX_VALUES:
        raise ValueError(f"{what} holds {total:,} values; at most {MAX_VALUES:,} are accepted "
                         "(pool or project the layers first)")


def _read_npz(path: Path, shown: str) -> FileContent:
    from numpy.lib import format as npy

    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0,
               (3, 0): npy.read_array_header_2_0}
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"{shown} is not an .npz archive (save the arrays with np.savez)") from None
    shapes = {}
    with archive:
        for member in archive.infolist():
            name = member.filename.removesuffix(".npy")
            try:
                with archive.open(member) as handle:
                    shape, _, dtype = readers[npy.read_magic(handle)](handle)
            except (ValueError, KeyError, EOFError, SyntaxError, zipfile.BadZipFile):
                raise ValueError(f"{shown}: the member {member.filename!r} is not a numpy array") from None
            if dtype.hasobject:
                raise ValueError(f"{shown}: array {name!r} holds Python objects (dtype object), which cannot be "
                                 "read without pickle (it can run code); save strings as a unicode array, "
                                 "np.array(ids, dtype=str), and numbers as numbers")
            shapes[name] = shape
    _bound(shapes, shown)
    try:
        with np.load(path, allow_pickle=False) as data:
            return FileContent({name: data[name] for name in shapes})
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{shown}: not a readable .npz archive ({error})") from None


def _h5_datasets(group, prefix: str, shown: str) -> dict:
    """Every dataset under ``group`` by its path, in h5py's order; links are refused."""
    import h5py

    found = {}
    for name in group:
        path = f"{prefix}{name}"
        link = group.get(name, getlink=True)
        if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
            kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            raise ValueError(f"{shown}: {path!r} is {kind}; store the data itself in the file "
                             "(links may point at other files)")
        item = group[name]
        if isinstance(item, h5py.Group):
            found.update(_h5_datasets(item, path + "/", shown))
        elif isinstance(item, h5py.Dataset):
            if item.is_virtual:
                raise ValueError(f"{shown}: {path!r} is a virtual dataset (it reads other files); "
                                 "store the data itself in the file")
            found[path] = item
    return found


def _read_h5(path: Path, shown: str) -> FileContent:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{shown} is not a readable HDF5 file ({error})") from None
    with handle:
        datasets = _h5_datasets(handle, "", shown)
        _bound({name: d.shape or () for name, d in datasets.items()}, shown)
        arrays = {}
        for name, dataset in datasets.items():
            try:
                if h5py.check_string_dtype(dataset.dtype) is not None:
                    arrays[name] = np.asarray(dataset.asstr()[()], dtype=str)
                elif dataset.dtype.kind in "biuf":
                    arrays[name] = np.asarray(dataset[()])
                else:
                    raise ValueError(f"{shown}: dataset {name!r} holds {dataset.dtype} values, not numbers")
            except OSError as error:
                raise ValueError(f"{shown}: dataset {name!r} cannot be read ({error})") from None
    return FileContent(arrays)


def _names(text) -> list[str]:
    """Names separated by commas in a safetensors metadata value (anything else: none)."""
    return [name.strip() for name in text.split(",") if name.strip()] if isinstance(text, str) else []


def _read_safetensors(path: Path, shown: str) -> FileContent:
    from safetensors.numpy import load_file

    from compute.sources.uploads import check_safetensors_header

    header = check_safetensors_header(path, shown)
    metadata = header.pop("__metadata__", None)
    metadata = metadata if isinstance(metadata, dict) else {}
    for name, entry in header.items():
        if entry["dtype"] in _UNREADABLE_SAFETENSORS:
            raise ValueError(f"{shown}: tensor {name!r} is {entry['dtype']}, which numpy cannot read; "
                             "save it as float32")
    _bound({name: entry["shape"] for name, entry in header.items()}, shown)
    order = _names(metadata.get("layers"))
    unknown = [name for name in order if name not in header]
    if unknown:
        raise ValueError(f"{shown}: __metadata__ 'layers' names tensors the file lacks: {listed(unknown)}")
    tensors = load_file(str(path))
    names = order + [name for name in header if name not in order]
    return FileContent({name: tensors[name] for name in names}, _names(metadata.get("repeated")))


READERS = {".npz": _read_npz, ".h5": _read_h5, ".hdf5": _read_h5, ".safetensors": _read_safetensors}


def read_activation_file(path: str | Path, suffix: str | None = None, shown: str | None = None) -> FileContent:
    """The arrays of an activations file, its format from ``suffix`` (default: the path's);
    never unpickles. ``shown`` names the file in messages (default: its name)."""
    path = Path(path)
    shown = shown or path.name
    reader = READERS.get((suffix or path.suffix).lower())
    if reader is None:
        raise ValueError(f"{shown}: activations are read from {', '.join(READERS)} files")
    return reader(path, shown)


# --- checking and ordering --------------------------------------------------------------------

def _text(array: np.ndarray, name: str) -> list[str]:
    if array.dtype.kind == "S":
        try:
            return [item.decode("utf-8") for item in array.ravel()]
        except UnicodeDecodeError:
            raise ValueError(f"{name} holds bytes that are not UTF-8 text") from None
    if array.dtype.kind != "U":
        raise ValueError(f"{name} must hold strings (a unicode array), got {array.dtype}")
    return [str(item) for item in array.ravel()]


def _order_by_ids(ids: np.ndarray, stimuli) -> np.ndarray:
    """Rows of the file in the set's order (``order[i]``: the file's row for stimulus i)."""
    n = len(stimuli)
    if ids.ndim != 1:
        raise ValueError(f"stimulus_ids must be one id per row (N,), got shape {ids.shape}")
    if ids.dtype.kind in "iu":
        positions = ids.astype(np.int64)
        outside = [int(p) for p in positions if not 0 <= p < n]
        if outside:
            raise ValueError(f"integer stimulus_ids are positions in stimulus set {stimuli.name!r}, 0 to {n - 1}; "
                             f"{len(outside)} lie outside: {listed(outside)}")
        shown = positions
    else:
        where = {sid: i for i, sid in enumerate(stimuli.ids)}
        texts = _text(ids, "stimulus_ids")
        unknown = [t for t in texts if t not in where]
        if unknown:
            raise ValueError(f"{len(unknown)} stimulus ids are not in stimulus set {stimuli.name!r}: "
                             f"{listed(repr(t) for t in unknown)} (its ids look like {stimuli.ids[0]!r})")
        positions, shown = np.array([where[t] for t in texts], dtype=np.int64), np.array(texts)
    values, counts = np.unique(positions, return_counts=True)
    if (counts > 1).any():
        twice = sorted({str(s) for s, p in zip(shown, positions) if p in set(values[counts > 1])})
        raise ValueError(f"stimulus_ids lists {int((counts > 1).sum())} stimuli more than once: {listed(twice)}")
    if len(values) != n:
        missing = np.setdiff1d(np.arange(n), values)
        raise ValueError(f"stimulus_ids lacks {len(missing)} stimuli of set {stimuli.name!r}: "
                         f"{listed(stimuli.ids[i] for i in missing)}")
    order = np.empty(n, dtype=np.int64)
    order[positions] = np.arange(n)
    return order


def _as_labels(labels: np.ndarray) -> np.ndarray:
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be one integer class index per row (N,), got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64)


def _order_by_labels(labels: np.ndarray, stimuli) -> np.ndarray:
    """The set's order from labels alone: the set's own order when they agree with it, else
    only when each class has one stimulus (any other reordering is ambiguous)."""
    if np.array_equal(labels, stimuli.labels):
        return np.arange(len(stimuli))
    mine = {int(c): int(k) for c, k in zip(*np.unique(labels, return_counts=True))}
    theirs = {int(c): int(k) for c, k in zip(*np.unique(stimuli.labels, return_counts=True))}
    if mine != theirs:
        wrong = sorted(c for c in set(mine) | set(theirs) if mine.get(c) != theirs.get(c))
        raise ValueError(f"labels do not match stimulus set {stimuli.name!r}: the file's counts of classes "
                         f"{listed(wrong)} differ from the set's")
    crowded = [c for c, k in theirs.items() if k > 1]
    if crowded:
        raise ValueError(f"labels differ from the order of stimulus set {stimuli.name!r}, and alone they cannot "
                         f"reorder the rows (class {crowded[0]} has {theirs[crowded[0]]} stimuli); add "
                         "stimulus_ids, or save the rows in the set's order")
    row_of = {int(label): row for row, label in enumerate(labels)}
    return np.array([row_of[int(label)] for label in stimuli.labels], dtype=np.int64)


def _check_labels(labels: np.ndarray, order: np.ndarray, stimuli) -> None:
    wrong = np.flatnonzero(labels[order] != stimuli.labels)
    if len(wrong):
        raise ValueError(f"labels disagree with stimulus set {stimuli.name!r} for {len(wrong)} stimuli: "
                         f"{listed(f'{stimuli.ids[i]} (file {int(labels[order[i]])}, set {int(stimuli.labels[i])})' for i in wrong)}")


def _finite(array: np.ndarray, what: str, rows_named) -> None:
    """Refuse NaN or inf (also values past float32's range, once converted), naming the rows."""
    flat = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[:, None]
    if np.isfinite(flat.sum(dtype=np.float64)):
        return
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    raise ValueError(f"{what} has NaN or inf values (or values beyond float32's range) in "
                     f"{len(bad)} rows: {listed(rows_named(bad))}")


def _layer_rows(name: str, array: np.ndarray, repeated: bool) -> int:
    if array.dtype.kind not in "biuf":
        raise ValueError(f"layer {name!r} holds {array.dtype} values, not numbers")
    if array.ndim < (2 if repeated else 1):
        needed = "(R, N, ...) as it is repeated" if repeated else "(N, ...), one row per stimulus"
        raise ValueError(f"layer {name!r} has shape {array.shape}; it needs {needed}")
    return int(array.shape[1] if repeated else array.shape[0])


def check_activations(content: FileContent, stimuli, repeats: bool = False) -> Activations:
    """The file's layers checked and put in ``stimuli``'s order (float32, repeats kept).

    ``repeats``: every layer has a leading repeats axis (besides those the file's ``repeated``
    lists). Raises ``ValueError`` naming the layer (and the rows) for: no layers, layers of
    different N, N other than the set's, unknown, duplicate or missing stimulus ids, labels that
    disagree with the set, NaN or inf, a layer the same for every stimulus. Constant rows
    (undefined for correlation and Spearman RDMs, which refuse them when asked) are warnings.
    """
    arrays = dict(content.arrays)
    marked = list(content.repeated) + (_text(arrays.pop("repeated"), "repeated") if "repeated" in arrays else [])
    names = [name for name in arrays if name not in RESERVED]
    if not names:
        raise ValueError("the file holds no layers: one array per layer (or ROI) is needed besides the reserved "
                         f"entries {', '.join(RESERVED)}")
    unknown = [name for name in marked if name not in names]
    if unknown:
        raise ValueError(f"'repeated' names layers the file lacks: {listed(unknown)}")
    repeated = names if repeats else [name for name in names if name in set(marked)]
    rows = {name: _layer_rows(name, arrays[name], name in repeated) for name in names}
    if len(set(rows.values())) > 1:
        raise ValueError("the layers have different numbers of stimuli (rows): "
                         + listed(f"{name!r} {n}" for name, n in rows.items()))
    n, expected = rows[names[0]], len(stimuli)
    if n != expected and "stimulus_ids" not in arrays:  # with ids, the missing or extra ones are named
        hint = ""
        if not repeats and any(a.ndim > 2 and a.shape[1] == expected for a in (arrays[k] for k in names)):
            hint = " (if its first axis counts repeated measurements, say so: list it in 'repeated')"
        raise ValueError(f"layer {names[0]!r} has {n} rows, stimulus set {stimuli.name!r} has {expected} stimuli{hint}")
    for entry in ("stimulus_ids", "labels", "logits"):
        if entry in arrays and (arrays[entry].ndim < 1 or arrays[entry].shape[0] != n):
            raise ValueError(f"{entry} has {arrays[entry].shape[0] if arrays[entry].ndim else 0} rows, "
                             f"the layers have {n}")
    if "stimulus_ids" in arrays:
        order = _order_by_ids(arrays["stimulus_ids"], stimuli)
        ids = arrays["stimulus_ids"]
        file_ids = [str(i) for i in ids] if ids.dtype.kind in "iu" else _text(ids, "stimulus_ids")
    elif "labels" in arrays:
        order, file_ids = _order_by_labels(_as_labels(arrays["labels"]), stimuli), None
    else:
        order, file_ids = np.arange(n), None
    if "labels" in arrays:
        _check_labels(_as_labels(arrays["labels"]), order, stimuli)

    def rows_named(bad):
        return [f"{int(r)} ({file_ids[r]})" if file_ids is not None else int(r) for r in bad]

    layers, warnings = {}, []
    for name in names:
        with np.errstate(over="ignore"):  # values past float32's range become inf: refused below
            array = arrays[name].astype(np.float32, copy=False)
        array = array[:, order] if name in repeated else array[order][None]
        if array.ndim == 2:  # one number per stimulus: a layer of width 1
            array = array[:, :, None]
        for r, measurement in enumerate(array):
            # Rows named in the file's order: the file is what its author can look at.
            _finite(measurement, f"layer {name!r}" + (f", repeat {r}," if name in repeated else ""),
                    lambda bad: rows_named(order[bad]))
        layers[name] = np.ascontiguousarray(array)
        warnings += _constant(name, layers[name], order, rows_named)
    logits = None
    if "logits" in arrays:
        logits = arrays["logits"]
        if logits.ndim != 2 or logits.dtype.kind not in "biuf":
            raise ValueError(f"logits must be numbers, one row of C class scores per stimulus (N, C); got "
                             f"{logits.dtype} {logits.shape}")
        with np.errstate(over="ignore"):
            logits = np.ascontiguousarray(logits.astype(np.float32)[order])
        _finite(logits, "logits", lambda bad: rows_named(order[bad]))
    return Activations(layers, list(repeated), logits, warnings)


def _constant(name: str, layer: np.ndarray, order: np.ndarray, rows_named) -> list[str]:
    """Refuse a layer equal for every stimulus; the warnings for rows equal across features."""
    mean = layer.mean(axis=0, dtype=np.float64) if layer.shape[0] > 1 else layer[0]
    flat = mean.reshape(mean.shape[0], -1)
    if (flat == flat[:1]).all():
        raise ValueError(f"layer {name!r} is the same for every stimulus (all {flat.shape[0]} rows are equal): "
                         "no measure can use it; drop it or check how it was recorded")
    constant = np.flatnonzero((flat == flat[:, :1]).all(axis=1))
    if not len(constant):
        return []
    return [f"layer {name!r} has {len(constant)} constant rows ({listed(rows_named(order[constant]))}): "
            "correlation and Spearman RDMs are undefined for them (Euclidean RDMs and CKA are not)"]

