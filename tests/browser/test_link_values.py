"""A link with values the server does not have (issue 15, item 10): the page is drawn with the
defaults and a visible note naming what was ignored, instead of a blank page."""
from urllib.parse import parse_qs, urlparse

from tests.browser.support import wait_for_figures


def test_a_link_naming_no_such_set_model_layer_or_method_draws_the_defaults_with_a_note(app_server, page):
    page.goto(app_server.url + "/rdm?set=no-such-set&model=no-such-model&layer=no-such-layer&rdm=no-such-method"
              "&pooling=nope")
    heatmap, mds = wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    assert sum(len(t["x"]) for t in mds) == 500  # the digits, the default set
    note = page.locator("#link-note")
    note.wait_for(state="visible", timeout=60_000)
    text = note.inner_text()
    for ignored in ("set=no-such-set (no such stimulus set)", "model=no-such-model", "layer=no-such-layer",
                    "rdm=no-such-method", "pooling=nope"):
        assert ignored in text, text
    assert "digits" in page.inner_text("#selection-set")
    query = parse_qs(urlparse(page.url).query)  # the view rewrote the link with what it shows
    assert "set" not in query and query.get("layer", ["penultimate"]) == ["penultimate"]
    assert query.get("rdm", ["correlation"]) == ["correlation"]
    page.wait_for_timeout(1500)  # the note stays while the page settles
    assert note.is_visible() and "set=no-such-set" in note.inner_text()


def test_a_link_without_odd_values_shows_no_note(app_server, page):
    page.goto(app_server.url + "/rdm?rdm=euclidean")
    wait_for_figures(page, "input-rdm", ("heatmap", "mds"))
    assert not page.locator("#link-note").is_visible()
    assert page.inner_text("#link-note") == ""
