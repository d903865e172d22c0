"""``python -m compute.zoo build --dataset digits [--force]``: build the built-in model zoo.

A thin command-line shim; the recipe lives in :mod:`compute.sources.zoo`.
"""
from __future__ import annotations

import sys

from compute.sources.zoo import main

if __name__ == "__main__":
    sys.exit(main())
