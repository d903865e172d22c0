"""The dashboard's server side: a cached view at N = 10,000 stimuli (the input RDM view's poll
callback: job status, the arrays it draws, the figures, their JSON, with every artifact in the
store, as a user opening a shared link gets it); the cold start of the home page (112 zoo
models, nothing cached); the cold reference page (its point estimates, then its intervals), and
the zoo's build (full runs only)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.harness import ROOT, Case, Prepared


def _image_folder(root: Path, n: int, classes: int = 10) -> str:
    """A folder stimulus set of ``n`` tiny PNGs in ``classes`` class folders under ``root``, made
    a data root (``REPSCOPE_DATA_ROOTS``) of this process; its name."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / "images" / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    os.environ["REPSCOPE_DATA_ROOTS"] = str(root)
    return f"folder:{root.name}/images?size=8"


def cached_view_case(n: int) -> Case:
    def prepare(quick: bool) -> Prepared:
        import plotly.io

        from compute.measures.blocks import sorted_blocks
        from compute.sources.stimuli import get_stimulus_set
        from dashboard import compute_panel, services
        from dashboard.selection import Selection
        from dashboard.views import input_rdm

        root = tempfile.TemporaryDirectory(prefix="repscope-bench-")
        previous = os.environ.get("REPSCOPE_CACHE_DIR")
        os.environ["REPSCOPE_CACHE_DIR"] = str(Path(root.name) / "cache")
        services.backend.cache_clear()
        store = services.backend().store  # made now, on the private cache; later rows see theirs
        if previous is None:
            os.environ.pop("REPSCOPE_CACHE_DIR")
        else:
            os.environ["REPSCOPE_CACHE_DIR"] = previous
        name = _image_folder(Path(root.name), n)
        stimuli = get_stimulus_set(name)
        selection = Selection(stimulus_set=name)
        model = SimpleNamespace(key="b" * 64, name="bench-model")  # artifacts are stored below
        view = {"model": model.name, "layer": "penultimate", "rdm": "correlation", "mds": "classical"}
        specs = input_rdm.specs(model, stimuli, view, "none", 1000)
        condensed = np.random.default_rng(1).random(n * (n - 1) // 2, dtype=np.float32)
        store.put("rdm", specs["rdm"].key, condensed, {})
        store.put("rdm_blocks", specs["blocks"].key, sorted_blocks(condensed, stimuli.labels, 1000)[0], {})
        store.put("mds", specs["mds"].key, np.random.default_rng(2).normal(size=(n, 2)).astype(np.float32), {})
        store.put("mds_stress", specs["stress"].key, np.array([0.1]), {})
        del condensed
        view["zoom"] = ""
        context = {"view": view, "max_side": 1000, "rdm": specs["rdm"].to_json()}

        def plan(selection, *values):  # the view's plan, for the fake model stored above
            return specs, ["stress", "blocks"], context, None

        job = {**compute_panel.start(specs, ["stress", "blocks"]),
               **compute_panel.view_state(selection.url_params(), [])}

        def callback():
            root  # keeps the directory alive as long as the case
            *figures, progress, stop, early = compute_panel.poll(job, 2, input_rdm.draw, plan, "input-rdm")
            assert stop and figures[0] is not compute_panel.no_update, progress
            return [plotly.io.to_json(figure) for figure in figures]

        sizes = [len(text) for text in callback()]
        return Prepared(repscope=callback, notes=[
            f"figures' JSON {sum(sizes) / 2**20:.1f} MiB (RDM drawn as 1000 x 1000 blocks, {n:,}-point MDS); "
            "the first call in a process also checks the arrays' SHA-256"])

    return Case("dashboard", f"cached input-RDM view callback, N={n:,} (poll + figures + JSON)", prepare,
                target="latency:0.15", memory=False, timeout_s=600)


def _zoo_dir() -> str:
    """The zoo the benchmarks read: ``REPSCOPE_ZOO_DIR``, ``REPSCOPE_TEST_ZOO_DIR`` (the tests'),
    else the settings' (built there, untimed, when missing)."""
    from compute.settings import get_settings

    return os.environ.get("REPSCOPE_ZOO_DIR") or os.environ.get("REPSCOPE_TEST_ZOO_DIR") or str(get_settings().zoo_dir)


def _phases(store, start: float) -> dict[str, float]:
    """Seconds after ``start`` at which the cold job's artifacts were written, from the store's
    records: the kinds' last (``<kind> done``), and the seconds spent in the RDMs (each one
    written right after its model's activations: the gap between the two) and in the
    extraction (the rest of the activations' span)."""
    records = sorted((record["created"], record["kind"]) for record in
                     (json.loads(path.read_text()) for path in store.root.glob("*/??/*.json")))
    phases: dict[str, float] = {}
    previous, rdm_s = None, 0.0
    for created, kind in records:
        phases[f"{kind} done"] = created - start
        if kind == "rdm" and previous is not None and previous[1] == "activations":
            rdm_s += created - previous[0]
        previous = (created, kind)
    if "activations done" in phases:
        phases["rdm seconds"] = rdm_s
        phases["extraction seconds (job start included)"] = max(phases.get("rdm done", 0.0), phases["activations done"]) - rdm_s
    return phases


def cold_view(view, prefix: str, n_figures: int, values, setup=None, early=(), until: str = "done") -> dict:
    """One view drawn from an empty private cache as a fresh ``make run`` draws it: a new
    embedded backend (its job process spawned and importing), the view's submit callback
    (estimate, auto-start; the Compute button pressed at once when the page asks for it), then
    its poll callback every 400 ms until the figures are drawn. ``setup()`` runs on the new
    cache first (e.g. storing an upload) and may return values to prepend to ``values``.

    Returns seconds: ``early`` (the view's early drawing, when it names ``early`` targets),
    ``done`` (not measured with ``until="early"``: the polls stop at the early drawing and the
    rest of the work is killed with the backend); ``asked`` the estimate the page showed with its Compute button (None when it
    started by itself); ``phases`` (:func:`_phases`)."""
    from dashboard import compute_panel, services
    from dashboard.selection import Selection

    previous = os.environ.get("REPSCOPE_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="repscope-cold-") as root:
        os.environ["REPSCOPE_CACHE_DIR"] = root
        services.backend.cache_clear()
        try:
            values = [*(setup() if setup else ()), *values]
            start = time.perf_counter()
            wall = time.time()
            job, _ = compute_panel.submit(view.plan, Selection().url_params(), values)
            asked = job.get("confirm")
            if asked:
                job, _ = compute_panel.press_compute(view.plan, 1, job)
            found, drawn = {"asked": asked}, None
            while True:
                *figures, progress, stop, marker = compute_panel.poll(
                    job, n_figures, view.draw, view.plan, prefix, None, early, drawn)
                if marker and marker is not compute_panel.no_update:  # as the page keeps it
                    drawn = marker
                    if not marker.startswith(compute_panel.PENDING_MARK):  # "Computing…" is no drawing
                        found["early"] = time.perf_counter() - start
                if stop or until in found:
                    break
                time.sleep(compute_panel.POLL_MS / 1000)
            if until == "early":
                found["phases"] = _phases(services.backend().store, wall)
                return found
            found["done"] = time.perf_counter() - start
            if not all(hasattr(figure, "to_dict") for figure in figures):
                raise RuntimeError(f"the page {prefix!r} drew no figures: {job}, {progress}")
            found["phases"] = _phases(services.backend().store, wall)
            return found
        finally:
            services.close()
            services.backend.cache_clear()
            if previous is None:
                os.environ.pop("REPSCOPE_CACHE_DIR", None)
            else:
                os.environ["REPSCOPE_CACHE_DIR"] = previous


def _zoo_models() -> int:
    """The zoo's digits models (the zoo built first, untimed, when missing)."""
    from compute.sources.models import list_models

    os.environ["REPSCOPE_ZOO_DIR"] = _zoo_dir()
    return len(list_models("digits"))


def cold_start_case() -> Case:
    """The home page (dashboard/views/model_space.py, default view: 112 zoo models' penultimate
    RDMs, their model RDM and MDS) from an empty private cache to its two figures
    (:func:`cold_view`)."""
    def prepare(quick: bool) -> Prepared:
        from dashboard.views import model_space

        models = _zoo_models()
        values = [model_space.DEFAULTS[name] for name in ("rdm", "compare", "mds", "sort", "null", "show")]
        return Prepared(repscope=lambda: cold_view(model_space, "model-space", 2, values)["done"], self_timed=True,
                        notes=[f"{models} models: {2 * models + 2} artifacts; each call from a new empty cache and "
                               "backend (its job process spawned and importing torch); the web side's first estimate "
                               "in a process also imports torch"])

    return Case("dashboard", "cold start: home page (112 zoo models)", prepare, target="latency:8",
                memory=False, timeout_s=900, calm_check=False)


REFERENCE_SUBJECTS = 5


def _bench_reference():
    """Store, in the current cache's uploads, a reference of ``REFERENCE_SUBJECTS`` subjects'
    Euclidean RDMs of random 5-d features over the digits stimuli (as an upload does); its key."""
    from scipy.spatial.distance import pdist

    from compute.sources.references import save_reference
    from compute.sources.stimuli import get_stimulus_set

    digits = get_stimulus_set("digits")
    rng = np.random.default_rng(0)
    rdms = np.stack([pdist(rng.normal(size=(len(digits), 5))) for _ in range(REFERENCE_SUBJECTS)])
    return [save_reference(rdms, "bench", digits).key]


def reference_cases() -> list[Case]:
    """The reference page (dashboard/views/reference.py) in its default view (every zoo model's
    penultimate layer, Euclidean input RDMs, Spearman, 100 resamples) from an empty cache: one
    row to the point estimates' bars (its early drawing), one to the bootstrap's intervals and
    pairwise tests (:func:`cold_view`). Full runs only (minutes); ``python -m benchmarks --only
    reference`` runs just these."""
    def case(what: str, field: str, target: float) -> Case:
        def prepare(quick: bool) -> Prepared:
            from dashboard.views import reference

            models = _zoo_models()
            values = [reference.DEFAULTS[name] for name in ("rdm", "compare", "layers", "boot")] + [[]] + [
                reference.DEFAULTS[name] for name in ("show", "score")]
            seen: list[dict] = []

            def callback() -> float:
                seen.append(cold_view(reference, reference.PATH.strip("/"), 3, values, _bench_reference, ("fit",),
                                      until=field))
                return seen[-1][field]

            def after(result, peers) -> dict:
                phases = seen[0]["phases"]
                asked = seen[0]["asked"]
                return {"notes": [
                    f"{models} zoo models (the page's default selection; no uploaded models), a {REFERENCE_SUBJECTS}-"
                    "subject reference over the 500 digits; each call from a new empty cache and backend",
                    "first call's phases (s from submit, from the store's records): " + ", ".join(
                        f"{name} {seconds:.1f}" for name, seconds in phases.items()),
                    f"the page asked for the Compute button ({asked}), pressed at once" if asked else
                    "the page started the work by itself"]}

            return Prepared(repscope=callback, self_timed=True, after=after)

        return Case("dashboard", f"cold start: reference page, {what} (112 zoo models)", prepare,
                    target=f"latency:{target:g}", memory=False, timeout_s=1200, calm_check=False)

    return [case("point estimates", "early", 30), case("95 % CIs and pairwise tests (100 resamples)", "done", 120)]


def zoo_build_case() -> Case:
    """``python -m compute.zoo build --force``: the digits zoo (112 models) trained into an empty
    folder, as the command runs it (its own process, imports included). No target: it runs
    once per installation, before the first page."""
    def prepare(quick: bool) -> Prepared:
        def callback() -> float:
            with tempfile.TemporaryDirectory(prefix="repscope-zoo-") as root:
                env = {**os.environ, "REPSCOPE_ZOO_DIR": root}
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "compute.zoo", "build", "--dataset", "digits", "--force",
                                "--quiet"], check=True, env=env, capture_output=True, cwd=ROOT)
                return time.perf_counter() - start

        return Prepared(repscope=callback, self_timed=True, notes=["full runs only (over a minute)"])

    return Case("dashboard", "zoo build: digits, 112 models (python -m compute.zoo build)", prepare,
                memory=False, timeout_s=900, calm_check=False)


def cases(quick: bool) -> list[Case]:
    return [cached_view_case(10000), cold_start_case()] + ([] if quick else [*reference_cases(), zoo_build_case()])
