"""The Models view in headless Chromium: upload a checkpoint through the page, find it in the
table, the selection panel and the model MDS, rename and delete it; a bad one is refused."""
import shutil

from tests.browser.support import choose, wait_for_figures


TRACES = """id => Array.from(document.querySelector('#' + id + ' .js-plotly-plot')._fullData,
  t => ({name: t.name, meta: t.meta || null, customdata: t.customdata ? Array.from(t.customdata) : [],
         text: Array.isArray(t.text) ? t.text : []}))"""


def test_an_upload_is_named_opened_marked_found_renamed_and_deleted(app_server, page, zoo_dir, tmp_path):
    """The upload flow of issue 19: a name on the form, the expected keys on request, the table
    and the selection panel list the new model without a reload, links open it in the model MDS
    (ringed as uploaded, found by the search box) and the layer grid with it selected, then
    rename and delete in the Models page."""
    checkpoint = tmp_path / "file-name.safetensors"
    shutil.copy(zoo_dir / "digits" / "cnn-w4-s1-e25.safetensors", checkpoint)
    others = ("mlp-w4-s0-e25", "mlp-w8-s0-e25", "cnn-w4-s0-e25")
    page.goto(app_server.url + "/models?models=" + ",".join(others))
    page.wait_for_selector("#models-table td", timeout=120_000)
    choose(page, "models-architecture", "cnn-w4")
    page.click("#models-expected-send")
    assert "conv1.weight  (4, 1, 3, 3)" in page.wait_for_selector("#models-expected pre", timeout=60_000).inner_text()
    page.set_input_files("#models-checkpoint-file input[type=file]", str(checkpoint))
    page.fill("#models-checkpoint-name", "my-net")
    page.click("#models-checkpoint-send")
    message = page.wait_for_selector("#models-checkpoint-message .status-done", timeout=240_000)
    assert "Registered model my-net (cnn)" in message.inner_text()
    assert page.get_attribute("#models-checkpoint-progress", "value") == "1"
    assert "also known as cnn-w4-s1-e25" in message.inner_text()  # the same weights as a zoo model: both names
    selected = "models=" + "%2C".join([*others, "my-net"])  # the panel's selection, the new model added
    assert page.get_attribute("#models-checkpoint-message a.open-a", "href") == f"/layers?a=my-net&{selected}"
    page.fill('#models-table th.dash-filter[data-dash-column="name"] input', "my-net")
    page.keyboard.press("Enter")
    page.wait_for_selector('#models-table td[data-dash-column="name"]:has-text("my-net")', timeout=30_000)
    assert page.locator("#models-table td[data-dash-column='source']").first.inner_text().strip() == "upload"

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
    assert [t["customdata"] for t in traces if t["meta"] == "found"] == [["my-net"]]
    assert sorted(n for t in traces if not t["meta"] for n in t["customdata"]) == sorted([*others, "my-net"])
    page.fill("#model-space-find", "mlp-w8")
    page.press("#model-space-find", "Enter")
    page.wait_for_selector("#model-space-found:has-text('1 model found: mlp-w8-s0-e25')", timeout=30_000)
    assert [t["customdata"] for t in page.evaluate(TRACES, "model-space-mds") if t["meta"] == "found"] == \
        [["mlp-w8-s0-e25"]]

    page.goto(app_server.url + "/models")
    page.wait_for_selector("#models-table td", timeout=120_000)
    choose(page, "models-edit-choice", "my-net")
    page.fill("#models-edit-name", "my-net.v2")
    page.click("#models-rename")
    page.wait_for_selector("#models-edit-message:has-text('Renamed my-net to my-net.v2')", timeout=30_000)
    choose(page, "models-edit-choice", "my-net.v2")
    page.click("#models-delete")
    page.wait_for_selector("#models-edit-message:has-text('Deleted my-net.v2')", timeout=30_000)
    page.fill('#models-table th.dash-filter[data-dash-column="name"] input', "my-net")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('#models-table').innerText.includes('my-net')",
                           timeout=30_000)


def test_a_bad_checkpoint_shows_the_reason_and_registers_nothing(app_server, page, zoo_dir, tmp_path):
    wrong = tmp_path / "wrong-architecture.safetensors"  # an MLP's weights offered as the default CNN
    shutil.copy(next((zoo_dir / "digits").glob("mlp-*.safetensors")), wrong)
    page.allowed_errors.append("status of 422")  # the refusal is the answer we provoke
    page.goto(app_server.url + "/models")
    page.wait_for_selector("#models-table td", timeout=120_000)
    page.set_input_files("#models-checkpoint-file input[type=file]", str(wrong))
    page.click("#models-checkpoint-send")
    alert = page.wait_for_selector("#models-checkpoint-message .alert-error", timeout=240_000)
    assert "Refused" in alert.inner_text() and "wrong-architecture" not in page.inner_text("#models-table")
