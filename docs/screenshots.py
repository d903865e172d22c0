"""Regenerate the README's screenshots: every view of the app on the built-in zoo, in headless
Debian Chromium. ``python docs/screenshots.py`` (needs the dev extras; takes a few minutes)."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (file, path, figure id prefix, figures to wait for)
SHOTS = [
    ("model-space", "/", "model-space", ("heatmap", "mds")),
    ("input-rdm", "/rdm?layer=fc2&model=cnn-w16-s0-e25", "input-rdm", ("heatmap", "mds")),
    ("layer-grid", "/layers?measure=cka_linear", "layer-grid", ("heatmap",)),
    ("confusion", "/confusion", "confusion", ("rdm", "top1", "top5")),
    ("curves", "/curves", "curves", ("curves",)),
    ("reference", "/reference?where=group:trained;epochs:25", "reference", ("bars",)),
    ("training", "/training", "training", ("curves",)),
    ("shared-space", "/srm", "srm", ("variance", "agreement")),
    ("models", "/models", None, ()),
    ("jobs", "/jobs", None, ()),
]
# What a page without figures shows once it is drawn (its "loading…" gone).
READY = {"models": "#models-table .ag-row", "jobs": ".jobs-table tbody tr"}


def _brain_like_reference(cache: Path) -> str:
    """A two-subject reference made from a model's RDM plus noise (stands in for brain data)."""
    import numpy as np

    os.environ["REPSCOPE_CACHE_DIR"] = str(cache)
    import compute
    from compute.sources.activations import extract
    from compute.sources.layers import list_layers
    from compute.sources.models import load_model
    from compute.sources.references import save_reference
    from compute.sources.stimuli import get_stimulus_set

    stimuli = get_stimulus_set("digits")
    model = load_model("cnn-w8-s0-e25")
    layer = next(info.name for info in list_layers(model) if info.penultimate)
    rdm = compute.rdm(extract(model, stimuli.images, [layer])[layer], method="euclidean", condensed=True)
    noise = np.random.default_rng(0).normal(size=(2, rdm.size)) * rdm.std()
    return save_reference(np.abs(rdm[None] + noise), "brain-like", stimuli).key


def main(out: Path = ROOT / "docs") -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser.support import AppServer, wait_for_figures

    work = Path(tempfile.mkdtemp(prefix="repscope-shots-"))
    zoo = os.environ.get("REPSCOPE_ZOO_DIR", str(work / "zoo"))
    reference = _brain_like_reference(work / "cache")
    server = AppServer(work / "cache", zoo, work)
    server.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            for name, path, prefix, figures in SHOTS:
                path = path.replace("/reference?", f"/reference?ref={reference}&")
                page.goto(server.url + path)
                if prefix:
                    wait_for_figures(page, prefix, figures, timeout=1_200_000)
                else:
                    page.wait_for_selector(READY[name], timeout=120_000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / f"{name}.png"))
                print("wrote", out / f"{name}.png", flush=True)
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
