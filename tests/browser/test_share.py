"""Sharing a view in headless Chromium: the copied link reopens the same figures in a fresh
browser, "Download data" gives the figure's numbers, "Show code" shows a compute snippet."""
import io
import zipfile

import numpy as np
from playwright.sync_api import expect

from tests.browser.support import wait_for_figures, wait_for_title

_STATE = "/?compare=pearson&mds=classical"


def test_copied_link_opens_the_same_view_in_a_new_browser_context(app_server, page, browser):
    page.goto(app_server.url + _STATE)
    scatter, heatmap = wait_for_figures(page)
    page.wait_for_function("() => (document.querySelector('#model-space-link') || {}).textContent"
                           " && document.querySelector('#model-space-link').textContent.includes('mds=classical')")
    link = page.inner_text("#model-space-link")
    assert link.startswith(app_server.url + "/?") and "compare=pearson" in link and "mds=classical" in link
    # The clipboard button copies exactly that text.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server.url)
    page.click("#model-space-copy-link")
    page.wait_for_function("async link => (await navigator.clipboard.readText()) === link", arg=link)
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        fresh = other.new_page()
        fresh.goto(link)
        scatter2, heatmap2 = wait_for_figures(fresh)
        expect(fresh.locator("#model-space-heatmap")).to_contain_text("1 − Pearson r", timeout=30_000)
        assert heatmap2[0]["z"] == heatmap[0]["z"]
        assert [(t["name"], t["x"], t["y"]) for t in scatter2] == [(t["name"], t["x"], t["y"]) for t in scatter]
    finally:
        other.close()


def test_download_data_gives_the_figures_numbers(app_server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(app_server.url + _STATE)
        scatter, heatmap = wait_for_figures(page)
        with page.expect_download(timeout=60_000) as info:
            page.click("#model-space-download-button")
        download = info.value
        assert download.suggested_filename == "model-space-data.zip"
        with zipfile.ZipFile(download.path()) as archive:
            assert {"matrix.npy", "mds.npy", "view.json"} <= set(archive.namelist())
            matrix = np.load(io.BytesIO(archive.read("matrix.npy")), allow_pickle=False)
            coords = np.load(io.BytesIO(archive.read("mds.npy")), allow_pickle=False)
            assert b'"compare": "pearson"' in archive.read("view.json")
            np.testing.assert_allclose(np.loadtxt(io.BytesIO(archive.read("matrix.csv")), delimiter=","), matrix,
                                       rtol=1e-6)
        np.testing.assert_allclose(matrix, np.array(heatmap[0]["z"]), rtol=1e-6, atol=1e-6)
        got = np.concatenate([np.column_stack([t["x"], t["y"]]) for t in scatter])
        assert coords.shape == got.shape
        # The scatter groups points by family; every plotted point is a row of the downloaded MDS.
        for point in got:
            assert np.min(np.abs(coords - point).max(axis=1)) < 1e-5
        with page.expect_download(timeout=60_000) as info:
            page.click("#model-space-svg")
        assert info.value.suggested_filename.endswith(".svg")
        assert b"<svg" in open(info.value.path(), "rb").read(2000)
    finally:
        context.close()


def test_show_code_reveals_a_compute_snippet_for_the_view(app_server, page):
    page.goto(app_server.url + _STATE)
    wait_for_figures(page)
    page.click("#model-space-code-box summary")
    code = page.inner_text("#model-space-code")
    compile(code, "<snippet>", "exec")
    assert "compute.model_rdm(rdms, method='pearson')" in code
    assert "compute.mds(matrix, method='classical')" in code


def test_clicking_a_model_in_the_mds_opens_its_input_rdm(app_server, page):
    page.goto(app_server.url + "/")
    scatter, _ = wait_for_figures(page)
    # Click the first point of the first trace where Plotly drew it.
    point = page.locator("#model-space-mds .scatterlayer .trace").first.locator(".point").first
    name = page.evaluate("() => document.querySelector('#model-space-mds .js-plotly-plot')._fullData[0].customdata[0]")
    point.click(force=True)
    wait_for_title(page, "input-rdm-heatmap", f"{name}, layer penultimate")
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    assert "/rdm" in page.url and f"model={name}" in page.url
