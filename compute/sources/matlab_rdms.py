"""RDMs in .mat files as the MATLAB RSA toolbox keeps them: which variable, and who is who.

The toolbox keeps RDMs in struct arrays with an ``RDM`` field (square, or condensed as a row)
and a ``name``; ``constructRDMs`` lays brain RDMs out as ``RDMs(mask, subject, session)`` and
names them ``'hIT | BE | Session: 1'`` (Kriegeskorte et al. 2008's ``92_brainRDMs.mat`` is
``RDMs(1, 4, 2)``), model RDMs are a row ``Models(1, 8)``. Read here as:

- a struct array with one non-singleton dimension: one subject (row) per element, named by its
  ``name`` (``Models(1, 8)``: eight rows, ``animacy`` ... ``RADON``);
- ``(mask, subject, session)``: one row per subject, **the mean of its sessions' RDMs**, named
  without the session (``'hIT | BE'``). The noise ceiling treats rows as independent subjects,
  and two sessions of one person are not: kept apart, each session's held-out prediction would
  see the same brain's other session, and the ceiling would be too high. Averaging sessions is
  also what the toolbox does before its subject-level inference (``averageRDMs_subjectSession``).
  Several masks (regions) are refused: a reference is one region.

Which variable (:func:`read_mat_rdms`): the one asked for; else the only struct array with an
``RDM`` field (or the one called ``RDMs``/``rdms``/``rdm``); else a plain numeric array as
before (``rdms``, ``rdm`` or the only numeric variable). Values are checked here only for being
numbers of one size; what an RDM must be (symmetric, finite, N stimuli) is
:mod:`compute.sources.references`' to say, naming each element by :attr:`Entry.label`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compute.sources.matfiles import StructArray, Unsupported, read_numeric, read_struct, variables

_PREFERRED = ("rdms", "rdm")
_SESSION = re.compile(r"\s*\|\s*session\s*:?\s*\d+\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One element of a struct array of RDMs: its ``name``, how messages call it (``label``:
    ``"RDMs(1,2,1) 'hIT | KO | Session: 1'"``) and its ``RDM`` (numbers, MATLAB's dimensions)."""

    name: str
    label: str
    rdm: np.ndarray


@dataclass(frozen=True)
class Subject:
    """One row of the reference: its name and its sessions' entries (one, or several to average)."""

    name: str
    sessions: tuple[Entry, ...]


def _pick_numeric(names: list[str], what: str) -> str:
    for preferred in _PREFERRED:
        if preferred in names:
            return preferred
    if len(names) == 1:
        return names[0]
    found = "several numeric variables: " + ", ".join(names) if names else "no numeric variable"
    raise ValueError(f"{what} holds {found}; name the RDM variable 'rdms' (several subjects) or 'rdm', "
                     "or keep RDMs in a struct array with an RDM field, as the MATLAB RSA toolbox does")


def read_mat_rdms(path: str | Path, variable: str | None = None,
                  max_values: int | None = None) -> np.ndarray | list[Subject]:
    """The RDMs of a .mat file (v5 or v7.3): a numeric array (any of the reference shapes), or
    the subjects of a struct array of RDMs (see the module docstring for which variable)."""
    found = variables(path)
    numeric = [v.name for v in found if v.kind == "numeric"]
    structs = {v.name: read_struct(path, v.name, max_values) for v in found if v.kind == "struct"}
    if variable is not None:
        if variable in structs:
            return subjects(structs[variable])
        if variable in numeric:
            return read_numeric(path, variable, max_values)
        raise ValueError(f"the .mat file has no numeric variable or struct array called {variable!r}; it holds "
                         f"{', '.join(v.name for v in found) or 'no variables'}")
    with_rdms = [s for s in structs.values() if "RDM" in s.fields]
    if len(with_rdms) > 1:
        named = [s for s in with_rdms if s.name.lower() in _PREFERRED]
        if len(named) != 1:
            raise ValueError(f"the .mat file holds several struct arrays of RDMs ({', '.join(s.name for s in with_rdms)}); "
                             "keep the reference's in the file alone, or call it 'RDMs'")
        with_rdms = named
    if with_rdms:
        return subjects(with_rdms[0])
    if not numeric and structs:
        listed = "; ".join(f"{s.name} (fields {', '.join(s.fields) or 'none'})" for s in structs.values())
        raise ValueError(f"the .mat file holds no numeric variable and no struct array with an RDM field (it has "
                         f"{listed}); the MATLAB RSA toolbox keeps each RDM in a field called RDM")
    name = _pick_numeric(numeric, "the .mat file")
    return read_numeric(path, name, max_values)


def _entry(struct: StructArray, index: tuple[int, ...], element: dict) -> Entry:
    name = element.get("name")
    name = name.strip() if isinstance(name, str) else ""
    label = struct.where(index) + (f" {name!r}" if name else "")
    rdm = element["RDM"]
    if isinstance(rdm, (str, Unsupported)):
        raise ValueError(f"{label}: its RDM field holds {'text' if isinstance(rdm, str) else rdm.what}, not numbers")
    if rdm.dtype.kind not in "biuf":
        raise ValueError(f"{label}: its RDM field holds {rdm.dtype} values, not numbers")
    if rdm.size == 0:
        raise ValueError(f"{label}: its RDM field is empty")
    return Entry(name, label, rdm)


def subjects(struct: StructArray) -> list[Subject]:
    """The rows of a struct array of RDMs (see the module docstring): one per element of a
    vector, one per subject (sessions to average) of ``(mask, subject, session)``."""
    if "RDM" not in struct.fields:
        raise ValueError(f"the struct array {struct.name!r} has no RDM field (its fields: "
                         f"{', '.join(struct.fields) or 'none'}); the MATLAB RSA toolbox keeps each RDM in .RDM")
    if not struct.elements:
        raise ValueError(f"the struct array {struct.name!r} is empty {struct.shape}: it holds no RDM")
    entries = {index: _entry(struct, index, element) for index, element in zip(struct.indices(), struct.elements)}
    first = next(iter(entries.values()))
    for entry in entries.values():
        if entry.rdm.shape != first.rdm.shape:
            raise ValueError(f"{entry.label} has a {' x '.join(map(str, entry.rdm.shape))} RDM but {first.label} has "
                             f"{' x '.join(map(str, first.rdm.shape))}; every RDM must be over the same stimuli")
    shape = struct.shape
    if sum(d > 1 for d in shape) <= 1:
        return [Subject(e.name or struct.where(i), (e,)) for i, e in entries.items()]
    if len(shape) > 3:
        raise ValueError(f"the struct array {struct.name!r} has {len(shape)} dimensions {shape}; the RSA toolbox's "
                         "layout is RDMs(mask, subject, session)")
    masks, count, sessions = (*shape, 1)[:3]
    if masks > 1:
        names = sorted({e.name.split("|")[0].strip() or struct.where(i) for i, e in entries.items() if i[0] < masks})
        raise ValueError(f"the struct array {struct.name!r} {shape} holds RDMs of {masks} regions (masks) "
                         f"({', '.join(names[:5])}), laid out RDMs(mask, subject, session); a reference is one "
                         f"region: save {struct.name}(1, :, :) alone")
    rows = []
    for subject in range(count):
        own = tuple(e for i, e in entries.items() if i[1] == subject)
        name = _SESSION.sub("", own[0].name) or f"{struct.name}(1,{subject + 1},:)"
        rows.append(Subject(name, own))
    return rows
