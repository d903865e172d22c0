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


def rdm_scale_words(method: str) -> str:
    """An input RDM's dissimilarity in words with its direction, for a figure's subtitle
    (e.g. "1 - Pearson correlation: higher = more different")."""
    return f"{RDM_METHODS[method].description.split(' between ')[0]}: higher = more different"


def rdm_scale_title(method: str) -> str:
    """An input RDM's colour-bar title, as narrow as its name (the words go in the subtitle)."""
    return f"{method}<br>dissimilarity"
