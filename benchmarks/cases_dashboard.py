"""The dashboard's server side for a cached view at N = 10,000 stimuli: the input RDM view's
poll callback (job status, the arrays it draws, the figures, their JSON) with every artifact
in the store, as a user opening a shared link gets it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Case, Prepared


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
        del condensed
        job = compute_panel.start(specs, ["mds", "blocks"], {"view": view, "max_side": 1000,
                                                            "selection": selection.url_params()})

        def callback():
            root  # keeps the directory alive as long as the case
            *figures, progress, stop = compute_panel.poll(job, 2, input_rdm.draw, "input-rdm", ("blocks", "mds"))
            return [plotly.io.to_json(figure) for figure in figures]

        sizes = [len(text) for text in callback()]
        return Prepared(repscope=callback, notes=[
            f"figures' JSON {sum(sizes) / 2**20:.1f} MiB (RDM drawn as 1000 x 1000 blocks, {n:,}-point MDS); "
            "the first call in a process also checks the arrays' SHA-256"])

    return Case("dashboard", f"cached input-RDM view callback, N={n:,} (poll + figures + JSON)", prepare,
                target="latency:0.15", memory=False, timeout_s=600)


def cases(quick: bool) -> list[Case]:
    return [cached_view_case(10000)]
