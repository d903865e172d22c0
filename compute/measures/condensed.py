"""A condensed RDM: the K = N(N-1)/2 entries above the diagonal of an N x N RDM, row by row
(scipy's ``squareform`` order). Pure arithmetic, no numpy: the web process uses it too."""
from __future__ import annotations

import math


def condensed_size(n: int) -> int:
    """K = N(N-1)/2, the entries above the diagonal of an N x N matrix."""
    return n * (n - 1) // 2


def side_from_length(k: int) -> int | None:
    """N for a condensed length K = N(N-1)/2, or None when K is no such number."""
    n = (1 + math.isqrt(1 + 8 * int(k))) // 2
    return n if condensed_size(n) == k else None


def side_of(condensed) -> int:
    """N for a condensed vector of N(N-1)/2 entries; a ``ValueError`` for any other length."""
    k = len(condensed)
    n = side_from_length(k)
    if n is None:
        raise ValueError(f"a condensed RDM has N(N-1)/2 entries; {k} is not such a number")
    return n
