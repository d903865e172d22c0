#!/usr/bin/env bash
# The GPU run of issue 20, prepared to run as is on one GPU machine (under 8 minutes on one H100):
#   1. finds a Python with the project's dependencies and a CUDA build of torch (below);
#   2. runs every CUDA test (tests/unit files that ask torch.cuda.is_available, tests named *cuda*):
#      it fails when any of them fails, skips, or none is found;
#   3. runs the GPU benchmark rows (`python -m benchmarks --device cuda`: the device's GEMM roofline,
#      kernels, extraction, layer grids), bounded to the time left, and writes benchmarks/RESULTS-gpu.md;
#   4. prints a summary: the tests' counts, the targets met and missed, the time taken.
# Results (RESULTS-gpu.md, the raw records, the test report and logs) go under $OUT when it is set,
# else benchmarks/out/gpu-check/ (RESULTS-gpu.md also in benchmarks/, to be committed).
#
# The machine needs no internet. The Python, first found wins:
#   $REPSCOPE_PYTHON; $REPSCOPE_VENV/bin/python; ./.venv/bin/python; the CI's venv
#   ($HOME/.cache/repscope/venv-<lock hash>, see .ci/run); a venv built now, offline, from a wheelhouse
#   ($REPSCOPE_WHEELS: pip install --no-index --find-links, with constraints.txt); python3 on PATH.
# Each must import torch (a CUDA build), torchvision, numpy, scipy, scikit-learn, pytest and hypothesis.
# A venv with torch is ~5 GB: it cannot travel with the checkout; the machine must have one (or wheels).
#
# Usage: benchmarks/gpu_check.sh            on the GPU machine
#        benchmarks/gpu_check.sh --dry-run  the same steps on the CPU at toy sizes, where there is no
#                                           GPU (CUDA tests then skip, as expected; nothing is
#                                           written to benchmarks/RESULTS-gpu.md)
# GPU_CHECK_BUDGET_S (default 450) bounds the whole run; the benchmark rows get what the tests left.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; elif [[ -n "${1:-}" ]]; then
  echo "usage: $0 [--dry-run]" >&2; exit 2
fi
budget=${GPU_CHECK_BUDGET_S:-450}
out=${OUT:-benchmarks/out/gpu-check}
mkdir -p "$out"
say() { echo "[gpu_check $((SECONDS - started)) s] $*"; }
fail() { say "FAILED: $*"; exit 1; }

# ---- 1. Python ----
needs="import torch, torchvision, numpy, scipy, sklearn, pytest, hypothesis"
lock=$(sha256sum constraints.txt | cut -c1-16)
python=""
for candidate in "${REPSCOPE_PYTHON:-}" "${REPSCOPE_VENV:+$REPSCOPE_VENV/bin/python}" .venv/bin/python \
                 "$HOME/.cache/repscope/venv-$lock/bin/python"; do
  if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" -c "$needs" 2>/dev/null; then
    python=$candidate; break
  fi
done
if [[ -z "$python" && -n "${REPSCOPE_WHEELS:-}" ]]; then
  say "building .venv offline from $REPSCOPE_WHEELS"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --no-index --find-links "$REPSCOPE_WHEELS" -c constraints.txt -e '.[dev]'
  python=.venv/bin/python
fi
if [[ -z "$python" ]] && command -v python3 >/dev/null && python3 -c "$needs" 2>/dev/null; then
  python=$(command -v python3)
fi
[[ -n "$python" ]] || fail "no Python with the dependencies ($needs). Set REPSCOPE_VENV or REPSCOPE_PYTHON to one, or REPSCOPE_WHEELS to a directory of wheels for constraints.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
say "python: $python ($("$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'))"

# ---- 2. The GPU ----
if ((dry)); then
  export REPSCOPE_BENCH_GPU_DRY_RUN=1
  say "dry run: the GPU rows on the CPU at toy sizes; the CUDA tests will skip"
else
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || fail "torch sees no CUDA device (a CPU-only torch, or no GPU): this script needs one (or --dry-run)"
fi

# ---- 3. The CUDA tests: none may skip ----
mapfile -t files < <(grep -l "cuda.is_available" tests/unit/*.py)
((${#files[@]})) || fail "no CUDA tests found under tests/unit"
say "CUDA tests in: ${files[*]}"
set +e
"$python" -m pytest -q -p no:cacheprovider -rs -k cuda --junitxml="$out/cuda-tests.xml" \
  "${files[@]}" 2>&1 | tee "$out/cuda-tests.log" | tail -n 25
tests_status=${PIPESTATUS[0]}
set -e
read -r total failed skipped < <("$python" - "$out/cuda-tests.xml" <<'EOF'
import os, sys, xml.etree.ElementTree as ET
if not os.path.exists(sys.argv[1]):
    sys.exit(print(0, 1, 0))  # pytest wrote no report: count it as a failure
suites = ET.parse(sys.argv[1]).getroot()
suites = [suites] if suites.tag == "testsuite" else list(suites)
count = lambda key: sum(int(s.get(key, 0)) for s in suites)
print(count("tests"), count("failures") + count("errors"), count("skipped"))
EOF
)
tests_line="CUDA tests: $total run, $failed failed, $skipped skipped (pytest exit $tests_status)"
say "$tests_line"
tests_ok=1
if ((total == 0 || failed > 0 || tests_status != 0)); then tests_ok=0; fi
if ((skipped > 0 && !dry)); then tests_ok=0; say "a CUDA test skipped on the GPU machine: that is a failure here"; fi
if ((dry)); then tests_ok=1; [[ $failed == 0 ]] || tests_ok=0; fi

# ---- 4. The GPU benchmark rows, in the time left ----
left=$((budget - (SECONDS - started) - 20))
((left > 60)) || fail "only $left s left for the benchmark rows (GPU_CHECK_BUDGET_S=$budget)"
export REPSCOPE_BENCH_GPU_BUDGET_S=$((left - 40))  # the roofline and the start-up take the rest
say "benchmark rows: $REPSCOPE_BENCH_GPU_BUDGET_S s for the rows"
bench=(--device cuda)
((dry)) && bench+=(--quick)
set +e
timeout $((left + 30)) "$python" -m benchmarks "${bench[@]}" > "$out/bench.log" 2>&1
bench_status=$?
set -e
results=benchmarks/RESULTS-gpu.md
raw=benchmarks/out/gpu-full.json
if ((dry)); then results=benchmarks/out/RESULTS-gpu-dry-run.md; raw=benchmarks/out/gpu-dry-run-quick.json; fi
if [[ "$out" != benchmarks/out/gpu-check ]] || ((dry)); then
  cp -f "$results" "$raw" "$out/" 2>/dev/null || true
fi

# ---- 5. Summary ----
echo
echo "==================== GPU check summary ===================="
echo "$tests_line"
if ((bench_status == 0)) && [[ -f "$results" ]]; then
  sed -n '/^## GEMM roofline/,/^Peak/p' "$results"
  sed -n '/^## Targets/,/^## /p' "$results" | sed '$d'
  echo "results: $results (copy in $out)"
else
  echo "benchmarks: FAILED (exit $bench_status); the last lines of $out/bench.log:"
  tail -n 15 "$out/bench.log"
fi
echo "took $((SECONDS - started)) s"
((tests_ok && bench_status == 0)) || exit 1
