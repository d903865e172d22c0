"""The permutation-null controls every view with a null shares: the choices (off, 100 or 1000
permutations, the only counts the engine accepts), the seed, the false-discovery level of the
rings, and reading a view's choice."""
from __future__ import annotations

NULLS = {"off": "off", "100": "100 permutations", "1000": "1000 permutations"}
NULL_SEED = 0
ALPHA = 0.05  # cells or entries with a Benjamini-Hochberg q below this are ringed


def options(labels: dict) -> list[dict]:
    """Dropdown options from a value -> label table."""
    return [{"label": text, "value": value} for value, text in labels.items()]


def n_perm(view: dict) -> int:
    """The view's number of permutations (0: no null)."""
    return 0 if view.get("null", "off") == "off" else int(view["null"])
