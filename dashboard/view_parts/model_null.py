"""The model RDM's permutation null, as the views ask for it and draw it: the "null" and "show"
controls' choices, the null artifact's spec, its fields, and the words that say what it is.

Shared by the Model RDM page (ringed entries, calibrated values) and the layer curves (each
depth's chance band).
"""
from __future__ import annotations

import numpy as np

from compute.engine import artifacts
from compute.engine.recipes import MODEL_NULL_FIELDS
from compute.measures.registry import COMPARE_METHODS, NULL_COMPARE_METHODS
from dashboard.view_parts.null_choices import ALPHA, NULL_SEED, NULLS, n_perm, options  # noqa: F401 (shared)

SHOWS = {"raw": "raw dissimilarities", "calibrated": "calibrated similarities (0 = chance, 1 = identical)"}
NULL_WORDS = (
    "Null: for each pair of models, the stimuli of the second model's input RDM are permuted (its rows "
    "and columns together) n times (n = 100 or 1000, seed 0, the same permutations for every pair) and "
    "the comparison recomputed; p = (1 + #{null at least as extreme}) / (1 + n), one-sided. Ringed "
    "entries: p < 0.05 after Benjamini-Hochberg FDR over the model RDM's entries above the diagonal. "
    "Calibrated = (r − mean null) / (1 − mean null): 0 = chance, 1 = identical (distances: the same on "
    f"the negated scale). Offered for {', '.join(COMPARE_METHODS[name].title for name in NULL_COMPARE_METHODS)}."
)


def dissimilarity_label(compare: str) -> str:
    """What the model RDM's cells are for comparison method ``compare``, in the registry's words:
    the distance itself ("Euclidean distance"), or 1 − the similarity ("1 − Spearman ρ")."""
    method = COMPARE_METHODS[compare]
    return method.title if method.kind == "distance" else f"1 − {method.title}"


def null_spec(matrix: artifacts.Spec, view: dict) -> artifacts.Spec | None:
    """The null of a model RDM spec for the view's ``null`` choice; None when off. A comparison
    without a batched null is refused with the methods that have one."""
    if not n_perm(view):
        return None
    if view["compare"] not in NULL_COMPARE_METHODS:
        raise ValueError(f"the null is offered for {', '.join(NULL_COMPARE_METHODS)}, not {view['compare']!r}: "
                         "choose one of those, or turn the null off")
    return artifacts.model_rdm_null_spec(matrix, n_perm(view), NULL_SEED)


def fields(stack) -> dict[str, np.ndarray]:
    """A null artifact's (M x M) planes by name (recipes.MODEL_NULL_FIELDS)."""
    return dict(zip(MODEL_NULL_FIELDS, np.asarray(stack, dtype=float)))


def chance_band(stack) -> tuple[np.ndarray, np.ndarray]:
    """Each model's chance band of its mean dissimilarity to the others: (low, high), the 2.5 and
    97.5 % quantiles over the permutations' model RDMs."""
    planes = fields(stack)
    return np.diag(planes["chance_low"]), np.diag(planes["chance_high"])


def ringed(stack) -> np.ndarray:
    """(M x M) bool: the entries whose BH q is below :data:`ALPHA`."""
    with np.errstate(invalid="ignore"):
        return fields(stack)["q"] < ALPHA


def mark_words(view: dict, m: int) -> str:
    """The rings' legend: what they mean, over which entries."""
    return (f"ringed: p < {ALPHA} after BH-FDR over the {m * (m - 1) // 2} entries "
            f"({view['null']} permutations of the stimuli)")
