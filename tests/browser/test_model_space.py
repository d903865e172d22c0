"""The model RDM & MDS page in headless Chromium, on the built-in zoo."""
from urllib.parse import parse_qsl, urlparse

from tests.browser.support import AppServer, PLOT_DATA, choose, wait_for_figures, wait_for_title
from tests.support import free_port
from compute.sources.models import list_models

def test_mds_has_one_point_per_model_and_heatmap_matches(app_server, page):
    page.goto(app_server.url + "/")
    scatter, heatmap = wait_for_figures(page)
    count = len(list_models("digits"))
    assert sum(len(trace["x"]) for trace in scatter) == count
    assert len(heatmap[0]["z"]) == count and all(len(row) == count for row in heatmap[0]["z"])
    assert page.locator(".alert-error").count() == 0


def test_view_state_lives_in_the_url_and_survives_a_restart(app_server, page):
    page.goto(app_server.url + "/?compare=euclidean")
    _, heatmap = wait_for_figures(page)
    assert "distance" in page.inner_text("#model-space-heatmap")
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
