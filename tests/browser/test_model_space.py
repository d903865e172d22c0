"""The model RDM & MDS page in headless Chromium, on the built-in zoo."""
import re
from urllib.parse import parse_qsl, urlparse

import numpy as np
import pytest
from playwright.sync_api import expect

import compute
from tests.browser.test_views import _activations
from tests.browser.support import AppServer, PLOT_DATA, choose, figure_words, wait_for_figures, wait_for_title
from tests.support import free_port
from compute.sources.models import list_models

def test_mds_has_one_point_per_model_and_heatmap_matches(app_server, page):
    page.goto(app_server.url + "/")
    scatter, heatmap = wait_for_figures(page)
    count = len(list_models("digits"))
    assert sum(len(trace["x"]) for trace in scatter) == count
    assert len(heatmap[0]["z"]) == count and all(len(row) == count for row in heatmap[0]["z"])
    assert page.locator(".alert-error").count() == 0
    # The MDS says how faithfully it draws the model RDM: its stress-1, from the drawn numbers.
    expect(page.locator("#model-space-mds")).to_contain_text(re.compile(r"Kruskal stress-1 \d"), timeout=30_000)
    title = page.inner_text("#model-space-mds")
    shown = re.search(r"Kruskal stress-1 (\d\.\d{3}), (excellent|good|fair|fair to poor|poor)", title)
    assert shown, title
    points = page.evaluate(_POINTS, "model-space-mds")
    at = {name: xy for trace in points for name, xy in zip(trace["names"] or (), trace["xy"])}
    names = heatmap[0]["x"]
    assert float(shown.group(1)) == pytest.approx(
        compute.mds_stress(np.array(heatmap[0]["z"]), np.array([at[name] for name in names])), abs=6e-4)


# Each scatter trace's points with their names (customdata), in the page's own numbers.
_POINTS = """id => Array.from(document.querySelector('#' + id + ' .js-plotly-plot')._fullData,
  t => ({names: t.customdata ? Array.from(t.customdata) : null, xy: Array.from(t.x, (x, i) => [x, t.y[i]])}))"""


def test_view_state_lives_in_the_url_and_survives_a_restart(app_server, page):
    page.goto(app_server.url + "/?compare=euclidean")
    _, heatmap = wait_for_figures(page)
    assert figure_words(page, "model-space-heatmap")["colorbars"][0] == \
        "Euclidean distance<br>(dissimilarity:<br>lower = more alike)"  # the measure in words, its direction
    app_server.stop()
    app_server.start()
    page.goto(app_server.url + "/?compare=euclidean")
    _, again = wait_for_figures(page)
    assert again[0]["z"] == heatmap[0]["z"]


def test_sorting_by_group_reorders_the_same_model_rdm(app_server, page):
    page.goto(app_server.url + "/")
    _, (before,) = wait_for_figures(page)
    choose(page, "model-space-sort-choice", "group")
    wait_for_title(page, "model-space-heatmap", "sorted by group")
    (after,) = page.evaluate(PLOT_DATA, "model-space-heatmap")
    assert dict(parse_qsl(urlparse(page.url).query))["sort"] == "group"
    families = [name.split("-")[0] for name in after["y"]]  # the zoo's names start with the family
    assert families == sorted(families) and sorted(after["y"]) == sorted(before["y"])
    where = {name: i for i, name in enumerate(before["y"])}
    moved = [where[name] for name in after["y"]]
    assert after["z"] == [[before["z"][i][j] for j in moved] for i in moved]
    # too many models to name: each family (the panel's group tag) named at its middle, lines between
    family = {m.name: m.tags.get("family", m.architecture) for m in list_models("digits")}
    groups, n = [family[name] for name in after["y"]], len(after["y"])
    starts = [i for i in range(n) if i == 0 or groups[i] != groups[i - 1]]
    assert n > 40 and len(starts) == len(set(groups)) > 1
    axes = page.evaluate(_GROUP_MARKS, "model-space-heatmap")
    middles = [after["y"][(a + b - 1) // 2] for a, b in zip(starts, starts[1:] + [n])]
    assert axes["x"] == axes["y"] == [[groups[a] for a in starts], middles]
    assert sorted(axes["lines"]) == sorted([[b - 0.5, b - 0.5, -0.5, n - 0.5] for b in starts[1:]]
                                           + [[-0.5, n - 0.5, b - 0.5, b - 0.5] for b in starts[1:]])


# The heatmap's tick labels (text, where) on both axes and its line shapes (x0, x1, y0, y1).
_GROUP_MARKS = """id => { const l = document.querySelector('#' + id + ' .js-plotly-plot')._fullLayout;
  const ticks = a => a.showticklabels ? [Array.from(a.ticktext || []), Array.from(a.tickvals || [])] : null;
  return {x: ticks(l.xaxis), y: ticks(l.yaxis),
          lines: l.shapes.filter(s => s.type === 'line').map(s => [s.x0, s.x1, s.y0, s.y1])}; }"""


def test_the_null_rings_the_entries_compute_finds_above_chance(app_server, page):
    """Four models, 100 permutations: the rings are the entries whose BH q < 0.05 in compute's
    model_rdm_null of the same input RDMs; calibrated values shown as asked; the page says what
    was permuted."""
    models = ("mlp-w4-s0-untrained", "mlp-w8-s0-e25", "cnn-w4-s0-e25", "mlp-w8-s1-e25")
    page.goto(app_server.url + f"/?models={','.join(models)}&null=100&show=calibrated")
    _, (heatmap, rings) = wait_for_figures(page)
    names = heatmap["y"]
    rdms = np.stack([compute.rdm(_activations(name, ["penultimate"])[0], method="correlation", condensed=True)
                     .astype(np.float32) for name in names])
    null = compute.model_rdm_null(rdms, "spearman", n_perm=100, seed=0)
    upper = np.triu_indices(len(names), 1)
    q = np.full(null.p.shape, np.nan)
    q[upper] = q.T[upper] = compute.fdr_bh(null.p[upper])
    with np.errstate(invalid="ignore"):
        expected = {(names[i], names[j]) for i, j in zip(*np.nonzero(q < 0.05))}
    assert expected and set(zip(rings["y"], rings["x"])) == expected and "BH-FDR" in rings["name"]
    np.testing.assert_allclose(np.array(heatmap["z"], dtype=float), null.calibrated, atol=1e-5)
    expect(page.locator("#model-space-heatmap")).to_contain_text("calibrated Spearman ρ", timeout=30_000)
    assert "stimuli of the second model's input RDM are permuted" in page.inner_text("body")


def test_redis_down_shows_a_clear_error_in_the_page_and_the_log(zoo_dir, tmp_path, page):
    dead = f"redis://:secret@127.0.0.1:{free_port()}/0"
    server = AppServer(tmp_path / "cache", zoo_dir, tmp_path, env={"REDIS_URL": dead, "SECRET_KEY": "x" * 64})
    server.start()
    try:
        assert server.health_status == 503
        page.goto(server.url + "/")
        alert = page.wait_for_selector(".alert-error", timeout=60_000)
        assert "Redis does not answer" in alert.inner_text()
        assert "Redis does not answer" in server.log()
        assert "secret" not in alert.inner_text()
    finally:
        server.stop()
