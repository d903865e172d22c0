"""MATLAB .mat files read safely: numeric arrays, text and struct arrays, v5 and v7.3 alike.

v5 files go through ``scipy.io.loadmat`` (``struct_as_record=True``, nothing squeezed, so a
struct array keeps MATLAB's dimensions); v7.3 files are HDF5 and go through h5py, following
MATLAB's layout: every variable carries a ``MATLAB_class`` attribute, arrays are stored with
their dimensions reversed (column-major), text is ``uint16`` character codes, a struct is a
group with one member per field, and in a struct *array* each field is a dataset of object
references (one per element, dimensions reversed too) into the ``#refs#`` group. Nothing is
ever unpickled or evaluated; what is neither numbers, text nor a struct array of them (cells,
sparse matrices, objects, nested structs) is read as an :class:`Unsupported` marker that says
what it was, so the caller's message can name it.

:func:`variables` lists a file's variables without reading their data; :func:`read_numeric`
and :func:`read_struct` read one. Values are in MATLAB's dimension order either way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUMERIC = ("double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
           "logical")


@dataclass(frozen=True)
class Unsupported:
    """A value of a kind this reader does not convert (``what``: "a cell array", ...)."""

    what: str


@dataclass(frozen=True)
class Variable:
    """One of a file's variables: ``kind`` is "numeric", "struct", "char" or "other"."""

    name: str
    shape: tuple[int, ...]
    kind: str


@dataclass(frozen=True)
class StructArray:
    """A MATLAB struct array: its variable ``name``, MATLAB ``shape`` (e.g. (1, 4, 2)), field
    names, and each element's values (numpy arrays in MATLAB's dimension order, ``str`` for
    text, :class:`Unsupported` otherwise) as ``{field: value}``, in row-major order of ``shape``."""

    name: str
    shape: tuple[int, ...]
    fields: tuple[str, ...]
    elements: tuple[dict, ...]

    def indices(self) -> list[tuple[int, ...]]:
        """The elements' 0-based indices, in the order of ``elements``."""
        return list(np.ndindex(*self.shape))

    def where(self, index: tuple[int, ...]) -> str:
        """How MATLAB writes element ``index`` (0-based): ``RDMs(1,2,1)``."""
        return f"{self.name}({','.join(str(i + 1) for i in index)})"


def is_v73(path: str | Path) -> bool:
    """Whether the .mat file at ``path`` is v7.3 (HDF5); ValueError when it is no .mat file."""
    import scipy.io

    try:
        major, _ = scipy.io.matlab.matfile_version(str(path))
    except (ValueError, OSError) as error:
        raise ValueError(f"not a readable MATLAB .mat file ({error})") from None
    return major == 2


def _check_size(shape, what: str, max_values: int | None) -> None:
    size = int(np.prod(shape, dtype=np.int64))
    if max_values is not None and size > max_values:
        raise ValueError(f"{what} holds {size:,} values; at most {max_values:,} are accepted")


# --- v5 -------------------------------------------------------------------------------------

def _v5_kind(matlab_class: str) -> str:
    return "numeric" if matlab_class in NUMERIC else matlab_class if matlab_class in ("struct", "char") else "other"


def _v5_value(value):
    """A loadmat value (nothing squeezed) as a numeric array, ``str`` or :class:`Unsupported`."""
    if not isinstance(value, np.ndarray):
        return Unsupported("a sparse matrix" if hasattr(value, "tocsr") else f"a {type(value).__name__}")
    if value.dtype.names is not None:
        return Unsupported("a struct")
    if value.dtype.kind == "U":
        return "".join(value.ravel().tolist())
    if value.dtype.kind == "O":
        return Unsupported("a cell array")
    return value


def _v5_variables(path: Path) -> list[Variable]:
    import scipy.io

    try:
        listing = scipy.io.whosmat(str(path), appendmat=False)
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"not a readable MATLAB .mat file ({error})") from None
    return [Variable(name, tuple(shape), _v5_kind(kind)) for name, shape, kind in listing]


def _v5_load(path: Path, name: str):
    import scipy.io

    try:
        return scipy.io.loadmat(str(path), variable_names=[name], appendmat=False, struct_as_record=True,
                                squeeze_me=False, chars_as_strings=True, mat_dtype=False)[name]
    except (ValueError, OSError, TypeError, NotImplementedError) as error:
        raise ValueError(f"variable {name!r} of the .mat file cannot be read ({error})") from None


def _v5_struct(path: Path, name: str) -> StructArray:
    array = _v5_load(path, name)
    fields = tuple(array.dtype.names or ())
    elements = tuple({f: _v5_value(array[index][f]) for f in fields} for index in np.ndindex(*array.shape))
    return StructArray(name, tuple(array.shape), fields, elements)


# --- v7.3 (HDF5) ----------------------------------------------------------------------------

def _class(node) -> str:
    value = node.attrs.get("MATLAB_class", b"")
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _is_reference(dataset) -> bool:
    import h5py

    return h5py.check_dtype(ref=dataset.dtype) is not None


def _h5_value(node, what: str, max_values: int | None):
    """An HDF5 dataset MATLAB wrote, as a numeric array (MATLAB's order), ``str`` or :class:`Unsupported`."""
    import h5py

    if isinstance(node, h5py.Group):
        return Unsupported("a struct" if _class(node) == "struct" else f"a MATLAB {_class(node) or 'group'}")
    matlab_class = _class(node)
    if matlab_class == "cell" or _is_reference(node):
        return Unsupported("a cell array")
    if node.attrs.get("MATLAB_empty"):  # an empty array stores its dimensions as its data
        return np.zeros(0)
    if matlab_class == "char":
        codes = np.asarray(node[()]).T.ravel()
        return "".join(map(chr, codes.tolist()))
    if node.dtype.names is not None:
        return Unsupported("complex numbers" if set(node.dtype.names) >= {"real", "imag"} else "a compound value")
    if matlab_class not in NUMERIC and matlab_class:
        return Unsupported(f"a MATLAB {matlab_class}")
    _check_size(node.shape, what, max_values)
    return np.asarray(node[()]).T


def _h5_variables(handle) -> list[Variable]:
    import h5py

    found = []
    for name, node in handle.items():
        if name.startswith("#"):  # '#refs#', '#subsystem#': MATLAB's own storage
            continue
        matlab_class = _class(node)
        if isinstance(node, h5py.Group):
            shape = _h5_struct_shape(node) if matlab_class == "struct" else ()
            found.append(Variable(name, shape, "struct" if matlab_class == "struct" else "other"))
        else:
            shape = tuple(reversed(node.shape))
            numeric = matlab_class in NUMERIC or (not matlab_class and node.dtype.kind in "biuf")
            found.append(Variable(name, shape, "numeric" if numeric else _v5_kind(matlab_class)))
    return found


def _h5_struct_shape(group) -> tuple[int, ...]:
    """A struct group's MATLAB dimensions: its reference fields' (reversed), else (1, 1)."""
    import h5py

    for node in group.values():
        if isinstance(node, h5py.Dataset) and _is_reference(node) and _class(node) != "cell":
            return tuple(reversed(node.shape))
    return (1, 1)


def _field_names(group) -> tuple[str, ...]:
    listed = group.attrs.get("MATLAB_fields")
    if listed is None:
        return tuple(group.keys())
    return tuple(b"".join(np.asarray(name).tolist()).decode("ascii", "replace") for name in listed)


def _h5_struct(handle, name: str, max_values: int | None) -> StructArray:
    import h5py

    group = handle[name]
    fields = tuple(f for f in _field_names(group) if f in group)
    shape = _h5_struct_shape(group)
    is_array = any(isinstance(group[f], h5py.Dataset) and _is_reference(group[f]) and _class(group[f]) != "cell"
                   for f in fields)
    references = {f: np.asarray(group[f][()]).T for f in fields
                  if is_array and isinstance(group[f], h5py.Dataset) and _is_reference(group[f])
                  and _class(group[f]) != "cell"}
    elements = []
    for index in np.ndindex(*shape):
        element = {}
        for field in fields:
            what = f"field {field!r} of {name}({','.join(str(i + 1) for i in index)})"
            if field in references:
                reference = references[field][index]
                element[field] = _h5_value(handle[reference], what, max_values) if reference else np.zeros(0)
            else:
                element[field] = _h5_value(group[field], what, max_values)
        elements.append(element)
    return StructArray(name, shape, fields, tuple(elements))


def _open_h5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"not a readable MATLAB v7.3 (HDF5) file ({error})") from None


# --- one entry point per question -----------------------------------------------------------

def variables(path: str | Path) -> list[Variable]:
    """The file's variables (name, MATLAB shape, kind), without reading their data."""
    path = Path(path)
    if not is_v73(path):
        return _v5_variables(path)
    with _open_h5(path) as handle:
        return _h5_variables(handle)


def read_numeric(path: str | Path, name: str, max_values: int | None = None) -> np.ndarray:
    """The numeric variable ``name`` in MATLAB's dimension order (its dtype kept)."""
    path = Path(path)
    if not is_v73(path):
        shapes = {v.name: v.shape for v in _v5_variables(path)}
        _check_size(shapes.get(name, ()), f"variable {name!r}", max_values)
        return _v5_load(path, name)
    with _open_h5(path) as handle:
        value = _h5_value(handle[name], f"variable {name!r}", max_values)
    if isinstance(value, (str, Unsupported)):
        raise ValueError(f"variable {name!r} is {value.what if isinstance(value, Unsupported) else 'text'}, "
                         "not numbers")
    return value


def read_struct(path: str | Path, name: str, max_values: int | None = None) -> StructArray:
    """The struct array ``name``, every element's fields read (``max_values`` caps each array
    of a v7.3 file before it is read; a v5 file is read whole, its size bounded by the upload's)."""
    path = Path(path)
    if not is_v73(path):
        return _v5_struct(path, name)
    with _open_h5(path) as handle:
        return _h5_struct(handle, name, max_values)
