"""Timing, peak memory, the GEMM roofline, the case runner and the result tables.

Every case runs in its own Python process (``python -m benchmarks --worker GROUP NAME``), so its peak memory is measured from a clean start and a case that crashes or hangs
takes only its own row with it (``--quick``: the cases share one process, whose start-up would
otherwise dominate; a group judged on peak memory gets its own). Inside that process RepScope
and its peers see the same data, one after another, on the same cores.

Honesty rules the code below keeps:

* Time: one warm-up call, then repeats; the median is reported with the half-range
  (max - min) / 2 of the repeats. Slow calls (``SLOW_S``) count their first call as a repeat
  (n = 3), very slow ones (``VERY_SLOW_S``) run once (n = 1, marked); the table says which.
* Memory: the peak resident set (VmHWM) during the first RepScope call minus the resident
  set just before it, with the high-water mark reset through ``/proc/self/clear_refs``.
  tracemalloc misses torch's allocations and ``ru_maxrss`` cannot be reset.
* A peer predicted to take more than ``PEER_LIMIT_S`` is skipped and its time estimated
  from its largest smaller measurement in this run, scaled by the case's cost model; the
  table marks estimates with "~" and says which measurement they come from.
* The GEMM bound of a row is its GEMM flop count divided by the float32 GEMM rate (the faster
  of ``torch.mm`` and numpy's BLAS) measured for the row's dominant GEMM shape in this run, on
  this machine (its fastest call);
  rows of the same shape share one measurement (the orchestrator hands it to later workers).
  The row's floor adds the float64 LAPACK factorisations it cannot avoid (``Prepared.lapack``:
  the same calls at the row's sizes, timed in the same worker, their fastest call).
* The machine may be shared: each row records the share of CPU time other processes used
  while it ran (``/proc/stat`` minus this process), and the table flags rows above 10 %.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmarks import device

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
RAW = Path(__file__).resolve().parent / "out"  # raw records of the last runs (git-ignored)
# Hand-written analysis of the missed targets, appended to RESULTS.md.
MISSED = Path(__file__).resolve().parent / "MISSED.md"

GROUPS = ("rdm", "model_rdm", "similarity", "layer_grid", "nulls", "evaluation", "extraction", "mds", "memory",
          "store", "dashboard")
PEER_LIMIT_S = 10.0
SMALL_N = 2000  # rows with at most this many stimuli must run within 2x of their floor
QUICK_PEER_LIMIT_S = 3.0  # --quick must finish in 3 minutes
SLOW_S = 5.0  # from here the warm-up call counts as a repeat
VERY_SLOW_S = 20.0  # from here a call runs once
PEER_SLOW_S = 2.0  # a peer call from here runs twice (n = 2)
PEER_ONCE_S = 5.0  # ... and from here once: a peer's time needs less precision than ours
_MARK = "@@BENCH-RESULT@@"
LOADED = 0.1  # flag a row when other processes used more than this share of the CPUs
RERUNS = 1  # extra runs of a row measured under load
RERUN_WAIT_S = 5.0
RERUN_UNDER_S = 30.0
# Reruns stop once the whole run has taken this long, so that a busy machine cannot push the
# full run past 20 minutes (quick: 3 minutes).
RERUN_BUDGET_S = {False: 300.0, True: 60.0}


# ---- measuring ----

@dataclass
class Timing:
    """Seconds per call: median and half-range over ``n`` calls."""

    median: float
    spread: float
    n: int
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> "Timing":
        ordered = sorted(samples)
        n = len(ordered)
        median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
        return cls(median, (ordered[-1] - ordered[0]) / 2, n, list(samples))

    def to_json(self) -> dict:
        return {"median": self.median, "spread": self.spread, "n": self.n, "samples": self.samples}


def _call_seconds(fn: Callable[[], Any], self_timed: bool) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    return result, (float(result) if self_timed else elapsed)


def measure(
    fn: Callable[[], Any],
    quick: bool = False,
    self_timed: bool = False,
    first: tuple[Any, float] | None = None,
    max_repeats: int | None = None,
    peer: bool = False,
) -> tuple[Any, Timing]:
    """Call ``fn`` (warm-up, then repeats) and return its first result and the timing.

    ``first`` is an already made first call ``(result, seconds)``, e.g. the one whose
    memory was measured. With ``self_timed`` the function returns its own duration in
    seconds (for latencies measured between two processes).
    """
    result, t0 = first if first is not None else _call_seconds(fn, self_timed)
    if t0 >= VERY_SLOW_S or (peer and t0 >= PEER_ONCE_S):
        return result, Timing.of([t0])
    if peer and t0 >= PEER_SLOW_S:
        # A slow peer's time needs less precision than ours: its first call and one more.
        return result, Timing.of([t0, _call_seconds(fn, self_timed)[1]])
    if t0 >= SLOW_S:
        samples, extra = [t0], 2
    elif t0 >= 1.0:
        samples, extra = [], 3
    else:
        budget = 0.5 if quick else 2.5
        samples, extra = [], int(min(15 if not quick else 5, max(3, budget / max(t0, 1e-6))))
    if max_repeats is not None:
        extra = min(extra, max_repeats)
    for _ in range(extra):
        samples.append(_call_seconds(fn, self_timed)[1])
    return result, Timing.of(samples)


def best_seconds(fn: Callable[[], Any], max_repeats: int = 7) -> float:
    """Fastest of a call's timed repeats: a floor is the best the machine does."""
    return min(measure(fn, max_repeats=max_repeats)[1].samples)


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_during(fn: Callable[[], Any]) -> tuple[Any, float, int | None, str]:
    """Call ``fn`` once; return ``(result, seconds, extra peak RSS in bytes, how measured)``.

    The extra peak is VmHWM after the call minus VmRSS before it, the high-water mark having
    been reset to the current RSS just before the call: memory the call itself made resident,
    its output included.
    """
    gc.collect()
    before = _status_kib("VmRSS")
    exact = _reset_high_water_mark()
    high_before = _status_kib("VmHWM")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    high_after = _status_kib("VmHWM")
    if before is None or high_after is None:
        return result, seconds, None, "unavailable"
    if exact:
        return result, seconds, max(0, high_after - before) * 1024, "VmHWM reset"
    # Without a reset only a new high-water mark is visible: a lower bound.
    return result, seconds, max(0, high_after - max(before, high_before or 0)) * 1024, "lower bound"


_GEMM_RATES: dict[tuple[int, int, int], float] = {}


def _learn_rates(records: list[dict]) -> None:
    """Keep the GEMM rates these records measured, for the workers started after them."""
    for record in records:
        if "gemm" in record:
            _GEMM_RATES.setdefault(tuple(record["gemm"]["shape"]), record["gemm"]["rate"])


def _rates_argument() -> list[str]:
    """The GEMM rates measured so far, for a worker's command line (``--rates``)."""
    return ["--rates", json.dumps([[list(shape), rate] for shape, rate in _GEMM_RATES.items()])]


def gemm_rate(shape: tuple[int, int, int], quick: bool = False) -> float:
    """Best float32 flop/s for an (m x k) @ (k x n) product into a preallocated output: the
    faster of ``torch.mm`` and numpy's BLAS (torch's MKL is far slower on some skinny shapes)."""
    shape = tuple(int(s) for s in shape)
    if device.is_cuda():  # on a GPU every row is judged against the device's float32 peak
        return device.f32_peak()
    if shape not in _GEMM_RATES:
        import numpy as np
        import torch

        m, k, n = shape
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(m, k, generator=generator)
        b = torch.randn(k, n, generator=generator)
        out = torch.empty(m, n)
        _, timing = measure(lambda: torch.mm(a, b, out=out), quick=quick)
        an, bn, outn = a.numpy(), b.numpy(), out.numpy()
        _, host = measure(lambda: np.matmul(an, bn, out=outn), quick=quick)
        # The limit is the best the machine did: the fastest call, not the median.
        _GEMM_RATES[shape] = 2.0 * m * k * n / min(timing.samples + host.samples)
        del a, b, out
    return _GEMM_RATES[shape]


# ---- cases ----

@dataclass
class Prepared:
    """What a case's ``prepare`` returns: callables over data built once, in the worker."""

    repscope: Callable[[], Any]
    peers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # (RepScope result, peer name, peer result) -> max abs difference (or None: not comparable)
    agree: Callable[[Any, str, Any], float | None] | None = None
    self_timed: bool = False
    # Extra facts measured while preparing (e.g. layer counts), shown in the notes column.
    notes: list[str] = field(default_factory=list)
    # Called after timing with the results (RepScope's, peers' by name); returns a dict with
    # optional "notes" (list) and "agreement" (name -> max abs diff), e.g. an untimed float64 check.
    after: Callable[[Any, dict[str, Any]], dict] | None = None
    # The row's GEMM work when only the prepared data tells it (overrides ``Case.gemm``).
    gemm: tuple[float, tuple[int, int, int]] | None = None
    # Best seconds of the float64 LAPACK factorisations the row needs at its sizes (part of
    # its floor, with the GEMMs), measured in the worker after the timings.
    lapack: Callable[[], float] | None = None


@dataclass
class Case:
    """One table row. Metadata here is cheap; ``prepare`` (run in the worker) does the work.

    ``cost`` maps a peer to ``(family, units)``: a peer's time is extrapolated from the
    largest smaller measurement of the same family, proportionally to ``units``.
    ``gemm`` is ``(flops, (m, k, n))``: the row's GEMM work and its dominant GEMM shape.
    ``target`` picks the target checked on this row (see ``judge``); ``size`` is its number of
    stimuli N (rows with N <= ``SMALL_N`` must also run within 2x of their floor);
    ``floor_peers`` are peers whose own time is the row's floor work (one BLAS GEMM; the same BLAS
    and LAPACK calls; the same forward passes): no kernel can be 10x them, so RepScope need only
    match them (>= 1x) and meet its floor rule;
    ``context_peers`` are columns for context only (another measure's time): no target reads them.
    """

    group: str
    name: str
    prepare: Callable[[bool], Prepared]
    peers: tuple[str, ...] = ()
    cost: dict[str, tuple[str, float]] = field(default_factory=dict)
    gemm: tuple[float, tuple[int, int, int]] | None = None
    target: str | None = None
    tolerance: float = 1e-5
    output_bytes: int | None = None
    memory: bool = True
    timeout_s: float = 600.0
    reuse_peers: str | None = None  # take the peers' timings from that earlier row of the group
    items: int | None = None  # things processed per call (images): adds a throughput note
    # False when the case's own child processes (a worker pool) would count as "others".
    calm_check: bool = True
    size: int | None = None
    floor_peers: tuple[str, ...] = ()
    context_peers: tuple[str, ...] = ()


def load_cases(group: str, quick: bool) -> list[Case]:
    module = importlib.import_module(f"benchmarks.cases_{group}")
    return module.cases(quick)


def run_case(case: Case, quick: bool = False, skip: dict[str, dict] | None = None,
             repeats: int | None = None) -> dict:
    """Run one case in this process; returns a JSON-able record (see ``render``)."""
    import numpy as np

    skip = skip or {}
    record: dict[str, Any] = {"group": case.group, "name": case.name, "peers": {}, "agreement": {},
                              "notes": [], "error": None}
    try:
        prepared = case.prepare(quick)
    except ImportError as error:
        record["error"] = f"not available: {error}"
        return record
    except Exception as error:  # noqa: BLE001 - a failing setup is a row, not a crash
        record["error"] = f"setup failed: {type(error).__name__}: {error}"
        return record
    record["notes"] += prepared.notes
    try:
        if case.memory:
            result, seconds, peak, how = peak_rss_during(prepared.repscope)
            record["peak_bytes"], record["peak_how"] = peak, how
            first = (result, float(result) if prepared.self_timed else seconds)
        else:
            first = None
        result, timing = measure(prepared.repscope, quick, prepared.self_timed, first, repeats)
        record["repscope"] = timing.to_json()
    except Exception as error:  # noqa: BLE001 - a failing measure is a row, not a crash
        record["error"] = f"{type(error).__name__}: {error}"
        return record
    peer_results: dict[str, Any] = {}
    for name, fn in prepared.peers.items():
        if name in skip:
            record["peers"][name] = {"skipped": True, **skip[name]}
            continue
        try:
            peer_result, peer_timing = measure(fn, quick, max_repeats=repeats, peer=True)
        except Exception as error:  # noqa: BLE001
            record["peers"][name] = {"error": f"{type(error).__name__}: {error}"}
            continue
        record["peers"][name] = peer_timing.to_json()
        peer_results[name] = peer_result
        if prepared.agree is not None:
            try:
                diff = prepared.agree(result, name, peer_result)
            except Exception as error:  # noqa: BLE001
                record["notes"].append(f"agreement with {name} failed: {error}")
                diff = None
            record["agreement"][name] = None if diff is None else float(np.max(np.abs(diff)))
    if prepared.after is not None:
        try:
            extra = prepared.after(result, peer_results)
            record["notes"] += extra.get("notes", [])
            record["agreement"].update(extra.get("agreement", {}))
        except Exception as error:  # noqa: BLE001
            record["notes"].append(f"extra check failed: {type(error).__name__}: {error}")
    del peer_results, result
    gc.collect()
    if (prepared.gemm or case.gemm) is not None:
        flops, shape = prepared.gemm or case.gemm
        rate = gemm_rate(shape, quick)
        record["gemm"] = {"flops": flops, "shape": list(shape), "rate": rate, "seconds": flops / rate}
    if prepared.lapack is not None:
        try:
            record["lapack_s"] = prepared.lapack()
        except Exception as error:  # noqa: BLE001
            record["notes"].append(f"LAPACK floor failed: {type(error).__name__}: {error}")
    return record


def floor_seconds(record: dict) -> float | None:
    """The row's floor: its GEMMs at the measured roofline plus its float64 LAPACK (None: no floor)."""
    if "gemm" not in record:
        return None
    return record["gemm"]["seconds"] + record.get("lapack_s", 0.0)


# ---- the worker process and the orchestrator ----

def _cpu_seconds() -> tuple[float, float, float] | None:
    """(wall, busy CPU seconds of the whole machine, CPU seconds of this process)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), (sum(fields[:8]) - idle) / ticks, own.user + own.system


def others_cpu_share(before, after) -> float | None:
    """Fraction of the machine's CPU time used by other processes between two samples."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, others / ((after[0] - before[0]) * (os.cpu_count() or 1)))


def _worker(group: str, name: str, quick: bool, skip: dict) -> None:
    case = next(c for c in load_cases(group, quick) if c.name == name)
    before = _cpu_seconds()
    record = run_case(case, quick, skip)
    record["others_cpu"] = others_cpu_share(before, _cpu_seconds())
    print(_MARK + json.dumps(record), flush=True)


def _run_in_subprocess(case: Case, quick: bool, skip: dict) -> dict:
    command = [sys.executable, "-m", "benchmarks", "--worker", case.group, case.name,
               "--skip", json.dumps(skip)] + _rates_argument() + (["--quick"] if quick else [])
    base = {"group": case.group, "name": case.name, "peers": {}, "agreement": {}, "notes": []}
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=case.timeout_s)
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timed out after {case.timeout_s:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {**base, "error": f"worker exited {done.returncode}: {' | '.join(tail)}"}


def _contention(record: dict) -> float:
    return record.get("others_cpu") or 0.0


def _run_measured_calmly(case: Case, quick: bool, skip: dict, started: float | None = None) -> dict:
    """Run a case; while other processes took a share of the CPUs, wait and run it again.

    Two-thread BLAS slows down many times over when another process takes one core, so a row
    measured under load says little. Rows taking over ``RERUN_UNDER_S`` are not repeated (the
    full run must stay under 20 minutes); the least disturbed run is kept, its share noted.
    """
    best, attempts = None, 0
    while True:
        start = time.time()
        record = _run_in_subprocess(case, quick, skip)
        attempts += 1
        if best is None or _contention(record) < _contention(best):
            best = record
        if not case.calm_check:
            best.pop("others_cpu", None)
            break
        over_budget = started is not None and time.time() - started > RERUN_BUDGET_S[quick]
        if (_contention(best) <= LOADED or attempts > RERUNS or over_budget
                or time.time() - start > RERUN_UNDER_S or best.get("error")):
            break
        time.sleep(RERUN_WAIT_S / (3 if quick else 1))
    if attempts > 1:
        best["notes"].append(f"run {attempts} times for a calm machine; kept the calmest")
    return best


def plan_skips(case: Case, history: dict[str, list[tuple[float, float]]], quick: bool = False) -> dict[str, dict]:
    """Peers of ``case`` predicted to exceed ``PEER_LIMIT_S`` (quick: ``QUICK_PEER_LIMIT_S``)."""
    limit = QUICK_PEER_LIMIT_S if quick else PEER_LIMIT_S
    skip = {}
    for peer, (family, units) in case.cost.items():
        measured = [(u, t) for u, t in history.get(family, []) if u < units]
        if not measured:
            continue
        base_units, base_seconds = max(measured)
        estimate = base_seconds * units / base_units
        if estimate > limit:
            skip[peer] = {"estimate": estimate, "from": f"{base_seconds:.3g} s at {base_units / units:.3g}x the work"}
    return skip


def run_group(cases: list[Case], quick: bool, runner: Callable[[Case, dict], dict]) -> list[dict]:
    """Run a group's cases in order with ``runner(case, skip)``: skips, reused peers, history."""
    history: dict[str, list[tuple[float, float]]] = {}
    group_records: list[dict] = []
    for case in cases:
        skip = plan_skips(case, history, quick)
        t = time.time()
        record = runner(case, skip)
        if case.reuse_peers:
            source = next((r for r in group_records if r["name"] == case.reuse_peers), None)
            if source:
                record["peers"] = {**source["peers"], **record["peers"]}
                record["notes"].append(f"peer times from the row '{case.reuse_peers}'")
        record["target_kind"], record["tolerance"] = case.target, case.tolerance
        record["size"], record["floor_peers"] = case.size, list(case.floor_peers)
        record["context_peers"] = list(case.context_peers)
        record["output_bytes"], record["items"] = case.output_bytes, case.items
        _learn_rates([record])
        for peer, (family, units) in case.cost.items():
            timing = record["peers"].get(peer, {})
            if "median" in timing:
                history.setdefault(family, []).append((units, timing["median"]))
        group_records.append(record)
        print(f"  [{time.time() - t:6.1f} s] {case.group}: {case.name}", file=sys.stderr, flush=True)
    return group_records


def _group_worker(selection: dict[str, list[str]], quick: bool) -> None:
    """Run the named cases of each group, group by group, in this one process."""
    def runner(case: Case, skip: dict) -> dict:
        before = _cpu_seconds()
        record = run_case(case, quick, skip)
        record["others_cpu"] = others_cpu_share(before, _cpu_seconds()) if case.calm_check else None
        return record

    for group, names in selection.items():
        cases = [c for c in load_cases(group, quick) if c.name in names]
        for record in run_group(cases, quick, runner):
            print(_MARK + json.dumps(record), flush=True)


def _run_groups_in_subprocess(selected: dict[str, list[Case]], quick: bool) -> dict[str, list[dict]]:
    """Records of the selected cases, by group, from one worker process."""
    selection = {group: [c.name for c in cases] for group, cases in selected.items()}
    command = [sys.executable, "-m", "benchmarks", "--group-worker", json.dumps(selection)]
    command += _rates_argument() + (["--quick"] if quick else [])
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=sum(c.timeout_s for cases in selected.values() for c in cases))
        stdout, stderr = done.stdout, done.stderr
    except subprocess.TimeoutExpired as error:
        stdout, stderr = error.stdout or "", "timed out"
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
    sys.stderr.write(stderr if isinstance(stderr, str) else "")
    found = {}
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            record = json.loads(line[len(_MARK):])
            found[(record["group"], record["name"])] = record
    tail = " | ".join((stderr or "").strip().splitlines()[-3:]) if isinstance(stderr, str) else ""
    return {group: [found.get((group, c.name)) or {
                "group": group, "name": c.name, "peers": {}, "agreement": {}, "notes": [],
                "error": f"group worker failed: {tail}", "target_kind": c.target} for c in cases]
            for group, cases in selected.items()}


def run_all(quick: bool, only: str | None = None, out: Path = RESULTS) -> list[dict]:
    started = time.time()
    machine = machine_info()
    machine.update(device.machine_extra())
    print(render_machine(machine, quick), flush=True)
    records: list[dict] = []
    selected = {}
    for group in device.groups(GROUPS):
        if only in device.groups(GROUPS) and only != group:
            continue
        cases = [c for c in load_cases(group, quick)
                 if not only or only == group or only.lower() in c.name.lower()]
        if cases:
            selected[group] = cases
    by_group: dict[str, list[dict]] = {}
    # On a GPU too: one process holds the CUDA context (host peaks are then indicative).
    shared_process = quick or device.is_cuda()
    if shared_process:
        # Quick sizes: the rows share one worker process (process start-up would dominate),
        # except a group judged on peak memory: memory freed by earlier rows would hide its peak.
        shared = {g: cases for g, cases in selected.items()
                  if not any((c.target or "").startswith("memory:") for c in cases)}
        for batch in [shared] + [{g: cases} for g, cases in selected.items() if g not in shared]:
            if batch:
                by_group.update(_run_groups_in_subprocess(batch, quick))
    for group, cases in selected.items():
        if shared_process:
            group_records = by_group[group]
        else:
            group_records = run_group(cases, quick, lambda case, skip: _run_measured_calmly(case, quick, skip, started))
        records += group_records
        print(render_group(group, group_records), flush=True)
    machine["elapsed_s"] = time.time() - started
    machine["load_after"] = _loadavg()
    saved = RAW / device.raw_name(quick)
    if only:
        # Rows of an earlier complete run of the same sizes keep their place; these replace theirs.
        if not saved.exists():
            return records
        previous = json.loads(saved.read_text())
        fresh = {(r["group"], r["name"]): r for r in records}
        records = [fresh.pop((r["group"], r["name"]), r) for r in previous["records"]] + list(fresh.values())
        rerun = f"{machine['date']}: rows matching '{only}'"
        earlier = previous["machine"].get("rerun")
        machine = {**previous["machine"], "rerun": f"{earlier}; {rerun}" if earlier else rerun}
    shares = [r["others_cpu"] for r in records if r.get("others_cpu") is not None]
    if shares:
        machine["others_cpu"] = {"mean": sum(shares) / len(shares), "max": max(shares)}
    RAW.mkdir(exist_ok=True)
    saved.write_text(json.dumps({"machine": machine, "records": records}))
    out.write_text(render_all(machine, records, quick))
    print(f"wrote {out.relative_to(ROOT)} in {time.time() - started:.0f} s", file=sys.stderr)
    return records


def render_all(machine: dict, records: list[dict], quick: bool) -> str:
    """The whole RESULTS.md: header, targets, roofline, one table per group, then MISSED.md."""
    if "gpu" in machine:
        return device.render_all(machine, records, quick)
    text = render_machine(machine, quick) + "\n" + render_summary(records) + render_roofline(records) + "\n".join(
        render_group(g, [r for r in records if r["group"] == g]) for g in GROUPS
        if any(r["group"] == g for r in records)
    )
    if MISSED.exists():
        text += "\n" + MISSED.read_text()
    return text


def rerender(quick: bool, out: Path = RESULTS) -> None:
    """Write RESULTS.md again from the saved raw records of the last run (no measuring)."""
    saved = json.loads((RAW / device.raw_name(quick)).read_text())
    out.write_text(render_all(saved["machine"], saved["records"], quick))


# ---- the machine ----

def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info() -> dict:
    import numpy
    import torch

    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_before": _loadavg(),
        "policy": {"slow": SLOW_S, "very_slow": VERY_SLOW_S, "peer_limit": PEER_LIMIT_S,
                   "peer_slow": PEER_SLOW_S, "peer_once": PEER_ONCE_S},
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["numpy_blas"] = "; ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, {p.get('threading_layer', '')})"
            for p in threadpool_info() if p.get("user_api") == "blas"
        ) or "unknown"
    except ImportError:
        info["numpy_blas"] = "unknown (threadpoolctl not installed)"
    config = torch.__config__.show()
    wanted = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "CPU capability")
    info["torch_blas"] = "; ".join(
        part.strip() for line in config.splitlines() for part in line.split(",")
        if any(key in part for key in wanted)
    )
    return info


def render_machine(info: dict, quick: bool) -> str:
    policy = info.get("policy", {"slow": SLOW_S, "very_slow": VERY_SLOW_S, "peer_limit": PEER_LIMIT_S})
    torch_blas = "; ".join(part.strip(" -") for part in info["torch_blas"].split(";"))
    lines = [
        "# RepScope benchmarks",
        "",
        f"Generated by `python -m benchmarks{' --quick' if quick else ''}` "
        f"({'quick sizes' if quick else 'full sizes'}); do not edit by hand.",
        "",
        f"- Date: {info['date']}" + (f"; run took {info['elapsed_s']:.0f} s" if "elapsed_s" in info else "")
        + (f"; rerun {info['rerun']}" if "rerun" in info else ""),
        f"- CPU: {info['cpu']}, {info['cores']} cores usable; load average "
        f"{info['load_before']} before" + (f", {info['load_after']} after" if "load_after" in info else ""),
        f"- torch {info['torch']}, {info['torch_threads']} threads; {torch_blas}",
        f"- numpy {info['numpy']}, BLAS: {info['numpy_blas']}; Python {info['python']}",
    ]
    if "others_cpu" in info:
        lines.append(
            f"- **The machine was shared with other work during this run**: other processes used "
            f"{info['others_cpu']['mean']:.0%} of the CPUs on average per row (at most "
            f"{info['others_cpu']['max']:.0%}); rows above {LOADED:.0%} are flagged in their notes."
        )
    lines += [
        "",
        "Times are the median over n calls after a warm-up, ± half the range (max - min) / 2;",
        f"calls over {policy['slow']:.0f} s count their first call (n = 3), calls over "
        f"{policy['very_slow']:.0f} s run once (n = 1); peer calls over {policy.get('peer_slow', SLOW_S):.0f} s "
        f"run twice (n = 2), over {policy.get('peer_once', policy['very_slow'] / 2):.0f} s once.",
        "A peer cell shows its time and, in brackets, peer time / RepScope time (higher = RepScope",
        f"faster). Peers predicted to exceed {policy['peer_limit']:.0f} s are skipped; `~` marks the estimate, scaled",
        "from that peer's largest smaller measurement in this run by the row's cost model.",
        "GEMM frac = (the row's GEMM flops / best f32 GEMM rate for its dominant shape: torch or numpy) / RepScope time:",
        "1.0 means as fast as a bare GEMM of that work; above 1 is possible for symmetric",
        "(upper-triangle) kernels, which need half the flops counted here.",
        "Floor = the row's bare GEMMs at that measured rate + the float64 LAPACK factorisations it needs",
        "(the same scipy/numpy calls at the row's sizes, one thread, fastest call, timed in the same",
        "worker); in brackets floor / RepScope time (1.0 = at the floor).",
        "Peak mem = peak resident memory added by RepScope's first call (output included).",
        "Agreement = max |RepScope - peer| over the answers (after converting to the same quantity).",
        "",
    ]
    return "\n".join(lines)


CPU_RULES = (
    "Kernel rows: floor frac (the row's floor / RepScope time) >= 0.7, and >= 0.5 (within 2x",
    f"of the floor) for rows of at most {SMALL_N:,} stimuli; 10x the fastest peer that is not itself",
    "one BLAS GEMM (against a one-GEMM peer, such as rsatoolbox's and scikit-learn's Euclidean",
    "RDMs, the floor rule stands in for 10x); and no peer faster than RepScope (>= 1x every peer).",
    f"Peer rows (10x) keep their ratio, add >= 1x every peer and, at N <= {SMALL_N:,}, 2x of the floor.",
)


def render_summary(records: list[dict], where: str = "", rules: tuple[str, ...] = CPU_RULES) -> str:
    """The targets section: ``rules`` in words, how many rows meet theirs, and every miss."""
    verdicts = [(r, judge(r)) for r in records if r.get("target_kind")]
    met = sum(verdict == "met" for _, verdict in verdicts)
    lines = [f"## Targets (issue 20{where})", "", *rules,
             "", f"{met} of {len(verdicts)} rows with a target meet it.", ""]
    lines += [f"- {r['group']} / {r['name']}: {verdict}" for r, verdict in verdicts if verdict != "met"]
    return "\n".join(lines) + "\n\n"


def render_roofline(records: list[dict]) -> str:
    shapes = {}
    for record in records:
        if "gemm" in record:
            shapes[tuple(record["gemm"]["shape"])] = record["gemm"]["rate"]
    if not shapes:
        return ""
    lines = ["## GEMM roofline (float32, the faster of torch `mm` and numpy's BLAS, this machine)", "",
             "| shape m x k x n | GFLOP/s |", "|---|---|"]
    for (m, k, n), rate in sorted(shapes.items()):
        lines.append(f"| {m} x {k} x {n} | {rate / 1e9:.0f} |")
    return "\n".join(lines) + "\n\n"


# ---- tables ----

def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def _timing_cell(timing: dict) -> str:
    text = f"{_seconds(timing['median'])} ±{_seconds(timing['spread'])}"
    return text + (f" (n={timing['n']})" if timing["n"] < 3 else "")


def _bytes(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


def peer_seconds(peer: dict) -> float | None:
    """A peer's measured median or its estimate (skipped), None when it failed."""
    if "median" in peer:
        return peer["median"]
    if peer.get("skipped"):
        return peer["estimate"]
    return None


def _peer_cell(peer: dict | None, repscope: float | None) -> str:
    if peer is None:
        return "—"
    if "error" in peer:
        return f"error: {peer['error'][:60]}"
    seconds = peer_seconds(peer)
    ratio = f" [{seconds / repscope:.3g}x]" if repscope else ""
    if peer.get("skipped"):
        return f"skipped (est. ~{_seconds(seconds)}, from {peer['from']}){ratio}"
    return _timing_cell(peer) + ratio


def _fraction(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def _agreement_cell(record: dict) -> str:
    parts = [f"{name}: {value:.2g}" for name, value in record["agreement"].items() if value is not None]
    return "; ".join(parts) or "—"


def judge(record: dict) -> str:
    """'met' / 'missed: why' for the issue-20 target of the row, '—' when it has none.

    ``kernel``: the floor fraction (floor / RepScope time) at least 0.7, or 0.5 (within 2x of
    the floor) for rows of at most ``SMALL_N`` stimuli; 10x the fastest peer that is not itself
    one BLAS GEMM; 1x every peer. ``peer10`` / ``grid10``: the same peer rules, and a small row
    with a floor within 2x of it. ``floor``: within 2x of the floor and 1x every peer.
    """
    kind = record.get("target_kind")
    if not kind:
        return "—"
    if kind.startswith("gpu-"):
        return device.judge(record)
    if record.get("error") or "repscope" not in record:
        return "missed: not measured"
    rep = record["repscope"]["median"]
    why = []
    tolerance = record.get("tolerance", 1e-5)
    # A peer's answers count as equal when any of its runs (e.g. its float64 variant) agrees.
    differing = [peer for peer in record["peers"]
                 if any(n.startswith(peer) for n in record["agreement"])
                 and all(v is None or v > tolerance for n, v in record["agreement"].items() if n.startswith(peer))]
    if kind in ("kernel", "peer10", "grid10", "floor") and differing:
        why.append(f"answers differ from {', '.join(differing)} (> {tolerance:g})")
    small = (record.get("size") or 0) and record["size"] <= SMALL_N
    floor = floor_seconds(record)
    if floor is not None and (kind == "kernel" or (small and kind in ("peer10", "grid10", "floor"))):
        least = 0.5 if small else 0.7
        if floor / rep < least:
            why.append(f"floor frac {floor / rep:.2f} < {least:g}")
    if kind in ("kernel", "peer10", "grid10", "floor"):
        times = {n: peer_seconds(p) for n, p in record["peers"].items()
                 if peer_seconds(p) and n not in record.get("context_peers", ())}
        if not times and kind in ("peer10", "grid10"):
            why.append("peer not measured")
        slower = [n for n, t in times.items() if t / rep < 1]
        if slower:
            why.append("slower than " + ", ".join(f"{n} ({times[n] / rep:.2g}x)" for n in slower))
        loops = {n: t for n, t in times.items() if n not in record.get("floor_peers", ())}
        if loops and kind != "floor":
            fastest = min(loops, key=loops.get)
            if 1 <= loops[fastest] / rep < 10:
                why.append(f"{loops[fastest] / rep:.2g}x vs {fastest} < 10x")
    elif kind == "extract":
        base = min((peer_seconds(p) for p in record["peers"].values() if peer_seconds(p)), default=None)
        if base and rep / base > 1.15:
            why.append(f"{rep / base:.2f}x a bare forward > 1.15x")
    elif kind.startswith("ratio:"):  # at most this many times the fastest peer's time
        limit = float(kind.split(":")[1])
        base = min((peer_seconds(p) for p in record["peers"].values() if peer_seconds(p)), default=None)
        if base is None:
            why.append("peer not measured")
        elif rep / base > limit:
            why.append(f"{rep / base:.2g}x the {min(record['peers'])} time > {limit:g}x")
    elif kind.startswith("latency:"):
        limit = float(kind.split(":")[1])
        if rep > limit:
            why.append(f"{_seconds(rep)} > {_seconds(limit)}")
    elif kind.startswith("memory:"):
        limit = float(kind.split(":")[1])
        peak, out = record.get("peak_bytes"), record.get("output_bytes")
        if peak is None or not out:
            why.append("peak not measured")
        elif peak / out > limit:
            why.append(f"peak {peak / out:.2f}x the condensed output > {limit:g}x")
    return "met" if not why else "missed: " + "; ".join(why)


_GROUP_TITLES = {
    "rdm": "RDMs (N stimuli x D features, float32 input; RepScope condensed float32 output)",
    "model_rdm": "Model RDM (M condensed RDMs over N stimuli -> M x M)",
    "similarity": "Similarity measures of two (N x D) activation matrices",
    "layer_grid": "Layer x layer grid, two random-init resnet18",
    "extraction": "Activation extraction, random-init resnet18",
    "mds": "MDS",
    "memory": "Memory: RDM peak resident memory vs its condensed float32 size",
    "store": "Artifact store and embedded jobs",
    "gpu_kernels": "Kernels on the GPU (N stimuli x D features; inputs already on the device)",
    "gpu_extraction": "Extraction on the GPU, random-init resnet18, 3 x 64 x 64 images",
    "gpu_grid": "Layer grids on the GPU, two random-init resnet18",
}


def render_group(group: str, records: list[dict]) -> str:
    peers: list[str] = []
    for record in records:
        for name in record["peers"]:
            if name not in peers:
                peers.append(name)
    head = ["case", "RepScope"] + peers + ["GEMM frac", "floor", "peak mem", "agreement (max abs diff)", "target",
                                           "notes"]
    lines = [f"## {_GROUP_TITLES.get(group, group)}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for record in records:
        rep = record.get("repscope")
        rep_s = rep["median"] if rep else None
        cells = [record["name"], _timing_cell(rep) if rep else f"**{record.get('error') or 'not run'}**"]
        cells += [_peer_cell(record["peers"].get(p), rep_s) for p in peers]
        gemm = record.get("gemm")
        cells.append(_fraction(gemm["seconds"] / rep_s) if gemm and rep_s else "—")
        floor = floor_seconds(record)
        cells.append(f"{_seconds(floor)} [{_fraction(floor / rep_s)}]" if floor and rep_s else "—")
        peak = record.get("peak_bytes")
        peak_text = _bytes(peak) + (" (lower bound)" if record.get("peak_how") == "lower bound" else "")
        if peak is not None and record.get("output_bytes"):
            peak_text += f" ({peak / record['output_bytes']:.2f}x out)"
        cells.append(peak_text)
        cells.append(_agreement_cell(record))
        cells.append(judge(record))
        notes = list(record["notes"])
        if gemm and "lapack_s" in record:
            notes.insert(0, f"floor = GEMMs {_seconds(gemm['seconds'])} + float64 LAPACK {_seconds(record['lapack_s'])}")
        if (record.get("others_cpu") or 0) > LOADED:
            notes.append(f"**other processes used {record['others_cpu']:.0%} of the CPUs during this row**")
        if record.get("items") and rep_s:
            rates = [f"RepScope {record['items'] / rep_s:.0f}"] + [
                f"{name} {record['items'] / peer_seconds(p):.0f}"
                for name, p in record["peers"].items() if peer_seconds(p)]
            notes.insert(0, "images/s: " + ", ".join(rates))
        cells.append("; ".join(notes))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under 3 minutes on 2 cores)")
    parser.add_argument("--only", help="a group name or part of a case name; its rows replace theirs "
                        "in RESULTS.md when a complete run of the same sizes was saved before")
    parser.add_argument("--render", action="store_true",
                        help="rewrite RESULTS.md from the last saved run without measuring")
    parser.add_argument("--device", choices=device.DEVICES, default=device.current(),
                        help="cpu (default): RESULTS.md; cuda: the GPU rows, RESULTS-gpu.md")
    parser.add_argument("--worker", nargs=2, metavar=("GROUP", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("--group-worker", metavar="SELECTION", help=argparse.SUPPRESS)
    parser.add_argument("--skip", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--rates", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device.configure(args.device)
    _GEMM_RATES.update({tuple(shape): rate for shape, rate in json.loads(args.rates)})
    if args.worker:
        _worker(args.worker[0], args.worker[1], args.quick, json.loads(args.skip))
        return 0
    if args.group_worker:
        _group_worker(json.loads(args.group_worker), args.quick)
        return 0
    if args.render:
        rerender(args.quick, device.results_path(RESULTS))
        return 0
    run_all(args.quick, args.only, device.results_path(RESULTS))
    return 0
