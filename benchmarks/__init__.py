"""RepScope's benchmarks: its measures against their peers and the machine's GEMM limit.

Run ``python -m benchmarks [--quick] [--only NAME]`` (or ``make bench``); the tables go to
``benchmarks/RESULTS.md``. Peers (rsatoolbox, hoggorm, torch-cka) are benchmark-only
dependencies: ``pip install -e '.[bench]'``. Nothing here runs in the test suite.
"""
