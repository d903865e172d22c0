"""RepScope's computing layer: measures, model and stimulus sources, and the job engine.

The public API, for the dashboard, the jobs and a notebook alike::

    import compute
    D = compute.rdm(X, method="correlation")
    r = compute.compare_rdms(D_a, D_b, method="spearman")
    s = compute.similarity(X, Y, measure="cka_linear")

Names resolve lazily, so ``import compute`` stays cheap (no torch until a measure is used).
"""
from __future__ import annotations

import importlib

_API = {
    "rdm": "compute.measures.rdm",
    "RDM_METHODS": "compute.measures.registry",
    "REPEATED_RDM_METHODS": "compute.measures.registry",
    "compare_rdms": "compute.measures.compare",
    "model_rdm": "compute.measures.compare",
    "COMPARE_METHODS": "compute.measures.registry",
    "similarity": "compute.measures.similarity",
    "layer_grid": "compute.measures.nulls",  # the grid, or with null=n_perm its per-cell null
    "MEASURES": "compute.measures.registry",
    "dimensionality": "compute.measures.dimensionality",
    "mds": "compute.measures.embed",
    "mds_stress": "compute.measures.embed",
    "confusion_matrix": "compute.measures.confusion",
    "fit_srm": "compute.measures.srm",
    "bootstrap": "compute.measures.stats",
    "permutation_test": "compute.measures.stats",
    "grid_null": "compute.measures.nulls",
    "model_rdm_null": "compute.measures.nulls",
    "noise_ceiling": "compute.measures.stats",
    "evaluate_models": "compute.measures.evaluation",
    "fdr_bh": "compute.measures.stats",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'compute' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
