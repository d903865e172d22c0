"""What a measure is: its name (the same in the API, the URL, the UI and cache keys) and its facts."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    """Facts about one measure that the UI and the docs show.

    ``kind`` is ``"similarity"`` (higher = more alike) or ``"distance"`` (lower = more alike);
    ``range`` is the closed interval of values it can take; ``invariances`` names the
    transformations of the inputs that leave it unchanged.
    """

    name: str
    kind: str
    range: tuple[float, float]
    invariances: tuple[str, ...] = ()
    description: str = ""
