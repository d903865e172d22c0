"""The Models view in headless Chromium: sort and search the registry's grid, upload a checkpoint
through the page, find it in the grid, the selection panel and the model MDS, select it in the grid
to rename and delete it; a bad one is refused."""
import shutil

from tests.browser.support import GRID_ROWS, MODELS_GRID, choose, model_cell, wait_for_figures


TRACES = """id => Array.from(document.querySelector('#' + id + ' .js-plotly-plot')._fullData,
  t => ({name: t.name, meta: t.meta || null, mode: t.mode, customdata: t.customdata ? Array.from(t.customdata) : [],
         text: Array.isArray(t.text) ? t.text : []}))"""


def test_an_upload_is_named_opened_marked_found_renamed_and_deleted(app_server, page, zoo_dir, tmp_path):
    """The upload flow of issue 19: the grid sorts by accuracy (shown in percent), keeps Name
    pinned, filters a column in percent and its search box narrows it; a name on the form, the
    expected keys on request, the grid and the selection panel list the new model without a
    reload, links open it in the model MDS (ringed and named as uploaded, found by the search box,
    grouped by source on request) and the layer grid with it selected, then the model selected in
    the grid is renamed and deleted (a zoo model selected cannot be)."""
    checkpoint = tmp_path / "file-name.safetensors"
    shutil.copy(zoo_dir / "digits" / "cnn-w4-s1-e25.safetensors", checkpoint)
    others = ("mlp-w4-s0-e25", "mlp-w8-s0-e25", "cnn-w4-s0-e25")
    page.goto(app_server.url + "/models?models=" + ",".join(others))
    page.wait_for_selector(MODELS_GRID, timeout=120_000)
    # the shared Mantine frame (widgets.page_frame): the forms in its panel, the grid in its main area
    assert page.locator(".view-frame .view-panel #models-checkpoint-send").count() == 1
    assert page.locator(".view-frame .main #models-table").count() == 1
    page.click("#models-table .ag-header-cell[col-id=accuracy] .ag-header-cell-label")  # sort, ascending
    page.wait_for_selector("#models-table .ag-header-cell[col-id=accuracy][aria-sort=ascending]", timeout=10_000)
    rows = page.evaluate(GRID_ROWS, "models-table")
    accuracies = [row["accuracy"] for row in rows]
    assert len(rows) == 112 and accuracies == sorted(accuracies, key=lambda a: (a is not None, a))
    first = page.inner_text("#models-table .ag-center-cols-container .ag-row[row-index='0'] [col-id=accuracy]")
    assert first.strip() == f"{100 * accuracies[0]:.1f}%"
    # Name pinned left (in view however far the grid scrolls sideways); a filter under every header,
    # comparing percentages as shown: "10" under Top-1 keeps the models shown as 10.0 %
    assert page.locator("#models-table .ag-pinned-left-cols-container [col-id=name]").count() == 25  # a page
    assert page.locator("#models-table .ag-center-cols-container [col-id=name]").count() == 0
    page.fill("#models-table .ag-floating-filter[col-id=accuracy] input", "10")
    page.wait_for_function("id => dash_ag_grid.getApi(id).getDisplayedRowCount() < 112", arg="models-table",
                           timeout=10_000)
    kept = [row["accuracy"] for row in page.evaluate(GRID_ROWS, "models-table")]
    assert len(kept) == sum(a is not None and f"{100 * a:.1f}" == "10.0" for a in accuracies) > 1
    page.fill("#models-table .ag-floating-filter[col-id=accuracy] input", "")
    page.wait_for_function("id => dash_ag_grid.getApi(id).getDisplayedRowCount() == 112", arg="models-table",
                           timeout=10_000)
    page.fill("#models-table-search", "mlp-w8")  # the quick search: every column, as one types
    page.wait_for_function("id => dash_ag_grid.getApi(id).getDisplayedRowCount() < 20", arg="models-table",
                           timeout=10_000)
    shown = [row["name"] for row in page.evaluate(GRID_ROWS, "models-table")]
    assert shown and all("mlp-w8" in name for name in shown)
    page.click(model_cell(shown[0], "architecture"))  # a zoo model: opened by links, never edited
    page.wait_for_selector(f"#models-table-chosen:has-text('{shown[0]}: open in model MDS')", timeout=30_000)
    assert "cannot be renamed or deleted" in page.inner_text("#models-table-chosen")

    choose(page, "models-architecture", "cnn-w4")
    page.click("#models-expected-send")
    assert "conv1.weight  (4, 1, 3, 3)" in page.wait_for_selector("#models-expected pre", timeout=60_000).inner_text()
    page.set_input_files("#models-checkpoint-file input[type=file]", str(checkpoint))
    page.fill("#models-checkpoint-name", "my-net")
    page.click("#models-checkpoint-send")
    message = page.wait_for_selector("#models-checkpoint-message [role=alert].status-done", timeout=240_000)
    assert "Registered model my-net (cnn)" in message.inner_text()
    assert page.get_attribute("#models-checkpoint-progress", "value") == "1"
    assert "also known as cnn-w4-s1-e25" in message.inner_text()  # the same weights as a zoo model: both names
    selected = "models=" + "%2C".join([*others, "my-net"])  # the panel's selection, the new model added
    assert page.get_attribute("#models-checkpoint-message a.open-a", "href") == f"/layers?a=my-net&{selected}"
    page.fill("#models-table-search", "my-net")  # the new row, and its alias's (the same weights)
    page.wait_for_selector(model_cell("my-net", "source") + ":has-text('upload')", timeout=30_000)
    assert {(row["name"], row["aliases"]) for row in page.evaluate(GRID_ROWS, "models-table")} == \
        {("my-net", "cnn-w4-s1-e25"), ("cnn-w4-s1-e25", "my-net")}

    page.click("#models-checkpoint-message a.open-find")  # open in model MDS (no reload)
    page.wait_for_selector("#model-space-mds", timeout=60_000)
    page.wait_for_selector("#selection-summary:has-text('4 of 113 models')", timeout=30_000)
    page.click("#selection-models")  # the panel offers it
    page.locator(".dash-dropdown-content .dash-dropdown-search").fill("my-net")
    page.wait_for_selector(".dash-dropdown-content [role=option]:has-text('my-net')", timeout=30_000)
    page.keyboard.press("Escape")
    wait_for_figures(page)
    page.wait_for_selector("#model-space-found:has-text('1 model found: my-net')", timeout=30_000)
    traces = page.evaluate(TRACES, "model-space-mds")
    assert [t["customdata"] for t in traces if t["meta"] == "uploaded"] == [["my-net"]]
    assert [(t["name"], t["mode"], t["text"]) for t in traces if t["meta"] == "uploaded"] == \
        [("uploaded (ringed)", "markers+text", ["my-net"])]  # ringed and named
    assert [t["customdata"] for t in traces if t["meta"] == "found"] == [["my-net"]]
    assert sorted(n for t in traces if not t["meta"] for n in t["customdata"]) == sorted([*others, "my-net"])
    page.fill("#model-space-find", "mlp-w8")
    page.press("#model-space-find", "Enter")
    page.wait_for_selector("#model-space-found:has-text('1 model found: mlp-w8-s0-e25')", timeout=30_000)
    assert [t["customdata"] for t in page.evaluate(TRACES, "model-space-mds") if t["meta"] == "found"] == \
        [["mlp-w8-s0-e25"]]
    choose(page, "selection-group", "source")  # the panel's group-by: one symbol (trace) per source
    page.wait_for_function("id => Array.from(document.querySelector('#' + id + ' .js-plotly-plot')._fullData,"
                           " t => t.name).includes('zoo')", arg="model-space-mds", timeout=60_000)
    assert "group=source" in page.url
    assert {t["name"]: sorted(t["customdata"]) for t in page.evaluate(TRACES, "model-space-mds") if not t["meta"]} \
        == {"zoo": sorted(others), "upload": ["my-net"]}

    page.goto(app_server.url + "/models")
    page.wait_for_selector(MODELS_GRID, timeout=120_000)
    page.fill("#models-table-search", "my-net")
    page.click(model_cell("my-net", "source"))  # selected in the grid: the form takes it (in the same answer)
    page.wait_for_selector("#models-table-chosen:has-text('my-net: open in')", timeout=30_000)
    assert page.get_attribute("#models-table-chosen a.open-find", "href") == "/?find=my-net"
    page.fill("#models-edit-name", "my-net.v2")
    page.click("#models-rename")
    page.wait_for_selector("#models-edit-message [role=alert]:has-text('Renamed my-net to my-net.v2')", timeout=30_000)
    # The form names the model by its new name in the edit's own answer: no later answer (to the
    # grid's new rows) clears it, nor a choice made meanwhile (a race that once made Delete refuse).
    page.wait_for_selector("#models-edit-choice:has-text('my-net.v2')", timeout=30_000)
    page.click(model_cell("my-net.v2", "source"))
    page.wait_for_selector("#models-table-chosen:has-text('my-net.v2: open in')", timeout=30_000)
    page.click("#models-delete")
    page.wait_for_selector("#models-edit-message [role=alert]:has-text('Deleted my-net.v2')", timeout=30_000)
    page.wait_for_selector("#models-table .ag-row[row-id='my-net.v2']", state="detached", timeout=30_000)
    assert page.evaluate(GRID_ROWS, "models-table") == []  # nor is it cnn-w4-s1-e25's alias any more


def test_a_bad_checkpoint_shows_the_reason_and_registers_nothing(app_server, page, zoo_dir, tmp_path):
    wrong = tmp_path / "wrong-architecture.safetensors"  # an MLP's weights offered as the default CNN
    shutil.copy(next((zoo_dir / "digits").glob("mlp-*.safetensors")), wrong)
    page.allowed_errors.append("status of 422")  # the refusal is the answer we provoke
    page.goto(app_server.url + "/models")
    page.wait_for_selector(MODELS_GRID, timeout=120_000)
    page.set_input_files("#models-checkpoint-file input[type=file]", str(wrong))
    page.click("#models-checkpoint-send")
    alert = page.wait_for_selector("#models-checkpoint-message [role=alert].alert-error", timeout=240_000)
    assert "Refused" in alert.inner_text()
    assert "wrong-architecture" not in {row["name"] for row in page.evaluate(GRID_ROWS, "models-table")}
