"""Weights for a lab's installed architecture (the example package, found through its
``repscope.models`` entry point) uploaded through the Models page in headless Chromium, then
drawn as a model everywhere: the model MDS, a layer grid and the reference ranking."""
import numpy as np
import torch
from safetensors.torch import save_file

import compute
from compute.sources.references import save_reference
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import MODELS_GRID, choose, running_app, wait_for_figures
from tests.browser.test_activations_upload import BARS, NAMES

NAME, OTHER = "my-lab-cnn", "cnn-w8-s0-e25"


def test_a_lab_architecture_uploaded_in_the_page_is_a_model_in_every_view(lab_models, zoo_dir, tmp_path, page,
                                                                         monkeypatch):
    from repscope_lab_models import lab_cnn

    torch.manual_seed(0)
    save_file(lab_cnn(num_classes=10, image_shape=(1, 8, 8)).state_dict(), str(tmp_path / f"{NAME}.safetensors"))
    with running_app(zoo_dir, tmp_path) as app:  # started after the lab package is on PYTHONPATH
        page.goto(app.url + "/models")
        page.wait_for_selector(MODELS_GRID, timeout=120_000)
        choose(page, "models-architecture", "lab:lab_cnn")
        page.set_input_files("#models-checkpoint-file input[type=file]", str(tmp_path / f"{NAME}.safetensors"))
        page.click("#models-checkpoint-send")
        page.wait_for_selector("#models-checkpoint-message .status-done", timeout=240_000)
        assert f"Registered model {NAME} (lab:lab_cnn)" in page.inner_text("#models-checkpoint-message")

        models = f"models={OTHER},{NAME}"
        page.goto(app.url + f"/?{models},mlp-w16-s0-e25")
        wait_for_figures(page)
        assert NAME in page.evaluate(NAMES, "model-space-mds")

        page.goto(app.url + f"/layers?{models}&a={NAME}&b={OTHER}")
        (grid,) = wait_for_figures(page, "layer-grid", ("heatmap",))
        (trace,) = [t for t in grid if t["z"]]
        assert all(label.startswith("A: ") for label in trace["y"]) and np.isfinite(np.array(trace["z"], float)).all()

        digits = get_stimulus_set("digits")
        monkeypatch.setenv("REPSCOPE_CACHE_DIR", str(tmp_path / "cache"))  # the app's references
        noise = np.random.default_rng(0).normal(size=(2, len(digits), 5))
        reference = save_reference(np.stack([compute.rdm(x, "euclidean", condensed=True) for x in noise]), "noise",
                                   digits)
        page.goto(app.url + f"/reference?{models}&ref={reference.key}&boot=0")
        wait_for_figures(page, "reference", ("bars",), timeout=240_000)
        assert f"{NAME} · penultimate" in dict(page.evaluate(BARS, "reference-bars"))
        page.goto("about:blank")
