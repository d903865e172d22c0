"""The method names the views offer and accept from the URL, read from compute's registries
(never re-typed): a name is the same in the UI, the URL, the API and the cache key.

:mod:`compute.measures.registry` holds only name tables, so reading it loads neither torch nor
scipy in the web process. A view offering fewer names on purpose takes a subset of these.
"""
from __future__ import annotations

from compute.measures.registry import COMPARE_METHODS, MDS_METHODS, MEASURES, RDM_METHODS

RDM_CHOICES = tuple(RDM_METHODS)  # an input RDM's dissimilarity between stimuli
COMPARE_CHOICES = tuple(COMPARE_METHODS)  # comparing two RDMs
MEASURE_CHOICES = tuple(MEASURES)  # comparing two layers' activations
MDS_CHOICES = tuple(MDS_METHODS)  # embedding stimuli or models in the plane


def rdm_scale_title(method: str) -> str:
    """An input RDM's colour-bar title: its dissimilarity in words, and which way is more
    different (e.g. "1 - Pearson correlation (higher = more different)")."""
    words = RDM_METHODS[method].description.split(" between ")[0]
    return f"{words}<br>(dissimilarity: higher = more different)"
