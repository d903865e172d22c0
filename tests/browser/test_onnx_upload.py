"""An ONNX export of a zoo CNN uploaded through the Models page, then seen where every model is:
in the model MDS (beside the torch model it came from, at distance 0), in a layer grid against
that model (its layers' CKA 1 on the diagonal) and ranked first against a reference made from it."""
import warnings

import numpy as np
import scipy.stats
import torch

from compute.sources.models import load_model
from compute.sources.references import save_reference
from compute.sources.stimuli import get_stimulus_set
from tests.browser.support import MODELS_GRID, model_cell, wait_for_figures
from tests.browser.test_reference_view import BARS, _rdm

SOURCE = "cnn-w8-s0-e25"
OTHER = "mlp-w16-s0-e25"


def test_an_uploaded_onnx_model_is_drawn_in_the_mds_a_layer_grid_and_the_reference_ranking(
        app_server, page, tmp_path, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(load_model(SOURCE), torch.zeros(2, 1, 8, 8), str(tmp_path / "my-onnx.onnx"), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    page.goto(app_server.url + f"/models?models={SOURCE},{OTHER}")
    page.wait_for_selector(MODELS_GRID, timeout=120_000)
    page.set_input_files("#models-onnx-file input[type=file]", str(tmp_path / "my-onnx.onnx"))
    page.click("#models-onnx-send")  # digits, the graph's size and channels, mean 0 and std 1: the defaults
    page.wait_for_selector("#models-onnx-message .status-done", timeout=240_000)
    assert "Registered model my-onnx (onnx:my-onnx)" in page.inner_text("#models-onnx-message")
    page.fill("#models-table-search", "my-onnx")
    page.wait_for_selector(model_cell("my-onnx", "source") + ":has-text('onnx')", timeout=30_000)
    selected = f"models={SOURCE}%2C{OTHER}%2Cmy-onnx"  # the panel's selection, the new model added
    assert page.get_attribute("#models-onnx-message a.open-a", "href") == f"/layers?a=my-onnx&{selected}"

    page.click("#models-onnx-message a.open-find")  # open in model MDS
    scatter, (heatmap,) = wait_for_figures(page)
    assert sum(len(trace["x"]) for trace in scatter if not trace["meta"]) == 3  # (not the uploaded one's ring)
    where = {name: i for i, name in enumerate(heatmap["y"])}
    assert set(where) == {"my-onnx", SOURCE, OTHER}
    assert abs(heatmap["z"][where["my-onnx"]][where[SOURCE]]) < 1e-4  # the same representation
    assert heatmap["z"][where["my-onnx"]][where[OTHER]] > 0.05

    page.goto(app_server.url + f"/layers?a=my-onnx&b={SOURCE}&measure=cka_linear")
    ((grid,),) = wait_for_figures(page, "layer-grid", ("heatmap",))
    rows = [label.removeprefix("A: ") for label in grid["y"]]
    columns = [label.removeprefix("B: ") for label in grid["x"]]
    assert rows == ["/conv1/Conv_output_0", "/bn1/BatchNormalization_output_0", "/bn2/BatchNormalization_output_0",
                    "/bn3/BatchNormalization_output_0"]
    for layer in ("bn1", "bn2", "bn3"):
        assert abs(grid["z"][rows.index(f"/{layer}/BatchNormalization_output_0")][columns.index(layer)] - 1) < 1e-5

    source = _rdm(SOURCE, "penultimate").astype(np.float64)
    rng = np.random.default_rng(0)
    subjects = np.stack([source + 0.3 * source.std() * rng.normal(size=source.shape) for _ in range(2)])
    monkeypatch.setenv("REPSCOPE_CACHE_DIR", app_server.env["REPSCOPE_CACHE_DIR"])
    reference = save_reference(subjects, "from-onnx", get_stimulus_set("digits"))
    page.goto(app_server.url + f"/reference?models=my-onnx,{OTHER}&layers=penultimate&ref={reference.key}")
    wait_for_figures(page, "reference", ("bars",), timeout=480_000)
    drawn = page.evaluate(BARS, "reference-bars")
    assert drawn["order"][0].startswith("my-onnx · ")
    bars = {label: x for trace in drawn["bars"] for label, x in zip(trace["y"], trace["x"])}
    expected = np.mean([scipy.stats.spearmanr(source, subject)[0] for subject in subjects])
    assert abs(bars[drawn["order"][0]] - expected) < 1e-3
