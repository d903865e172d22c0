"""The app as a real process, and reading Plotly figures out of a real page."""
from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support import free_port, start_process, stop_process, wait_until


class AppServer:
    """The app as users run it: ``python app.py`` by default, or another command line."""

    def __init__(self, cache_dir, zoo_dir, log_dir, command=None, env=None):
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = command or [sys.executable, "app.py"]
        self.env = {"REPSCOPE_CACHE_DIR": str(cache_dir), "REPSCOPE_ZOO_DIR": str(zoo_dir),
                    "REPSCOPE_PORT": str(self.port), **(env or {})}
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.process = start_process(self.command, self.env, self.log_dir / f"app{self.starts}.log")

        def healthy():
            if self.process.poll() is not None:
                raise RuntimeError("app exited:\n" + self.log(tail=4000))
            try:
                return urllib.request.urlopen(self.url + "/health", timeout=2).status
            except urllib.error.HTTPError as error:
                return error.code
            except OSError:
                return None

        self.health_status = wait_until(healthy, 300, "the app's /health")

    def stop(self):
        stop_process(self.process)

    def log(self, tail: int | None = None):
        """The current run's log, or its last ``tail`` characters."""
        text = (self.log_dir / f"app{self.starts}.log").read_text(errors="replace")
        return text[-tail:] if tail else text



@contextmanager
def running_app(zoo_dir, directory, env=None):
    """The app started on a cache in ``directory`` (with extra ``env``), stopped afterwards."""
    server = AppServer(directory / "cache", zoo_dir, directory, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Plotly 6 ships arrays base64-encoded ("bdata"); _fullData holds them decoded, as typed arrays.
PLOT_DATA = """id => {
  const plain = v => (v && typeof v === 'object' && v.length !== undefined) ? Array.from(v, plain) : v;
  const el = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!el || !el._fullData) return null;
  return el._fullData.map(t => ({x: plain(t.x), y: plain(t.y), z: t.z ? plain(t.z) : null, name: t.name,
                                 meta: t.meta || null}));
}"""


# What a figure says in words: its title, axis titles and tick texts, its colour bars' titles and
# tick formats (a trace's own, a marker's, or the shared colour axis'), each trace's hover template.
FIGURE_WORDS = """id => {
  const el = document.querySelector('#' + id + ' .js-plotly-plot'), l = el._fullLayout;
  const text = t => (t && t.text !== undefined) ? t.text : (t || '');
  const bar = t => t.colorbar || (t.marker && t.marker.colorbar) || (l.coloraxis && l.coloraxis.colorbar) || null;
  return {title: text(l.title), x: text(l.xaxis.title), y: text(l.yaxis.title),
          xticks: Array.from(l.xaxis.ticktext || []), xformat: l.xaxis.tickformat || '',
          colorbars: el._fullData.map(t => bar(t) ? text(bar(t).title) : null),
          colorformats: el._fullData.map(t => bar(t) ? bar(t).tickformat || '' : null),
          hovers: el._fullData.map(t => t.hovertemplate || null)};
}"""


def figure_words(page, figure_id: str) -> dict:
    """The words the figure ``figure_id`` shows (see FIGURE_WORDS), read from the page."""
    return page.evaluate(FIGURE_WORDS, figure_id)


_DRAWN = """ids => ids.every(id => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
  const t = el && el._fullData && el._fullData[0];
  return !!t && (t._length > 0 || (!!t.z && t.z.length > 0)); })"""


def confirm_until(page, prefix, done, arg=None, timeout=240_000):
    """Wait until the page function ``done(arg)`` holds, or the view's job fails, pressing the
    view's Compute button whenever it asks (each view state it shows asks once; a press on the
    button of a state the controls have already left does nothing, and the new state's button
    is pressed in turn)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        page.wait_for_function(
            f"""([arg, progress, compute]) => !!document.querySelector('#' + progress + ' .status-failed')
                 || !!document.getElementById(compute) || ({done})(arg)""",
            arg=[arg, f"{prefix}-progress", f"{prefix}-compute"],
            timeout=max(1.0, deadline - time.monotonic()) * 1000,
        )
        button = page.locator(f"#{prefix}-compute")
        if page.query_selector(f"#{prefix}-progress .status-failed") or not button.count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the {prefix} view still asks for Compute after {timeout / 1000:.0f} s")
        try:
            button.click(timeout=5_000)
            page.wait_for_selector(f"#{prefix}-compute", state="detached", timeout=10_000)
        except PlaywrightTimeoutError:
            pass  # replaced by the button of the state the controls show now, or gone with its click


def wait_for_figures(page, prefix="model-space", figures=("mds", "heatmap"), timeout=240_000):
    """Wait until every figure ``<prefix>-<name>`` has data, failing at once with the page's
    message if the view's job fails; return each figure's traces (see PLOT_DATA) in order. Work
    the view asks to confirm (its estimate over the Compute gate's) is confirmed."""
    ids = [f"{prefix}-{name}" for name in figures]
    confirm_until(page, prefix, _DRAWN, ids, timeout)
    failed = page.query_selector(f"#{prefix}-progress .status-failed")
    assert failed is None, "the job failed: " + failed.inner_text()
    return tuple(page.evaluate(PLOT_DATA, figure_id) for figure_id in ids)


def double_click_to_autorange(page, figure_id, tries=3):
    """Double-click a figure's plot area until Plotly has autoranged it. Plotly tells a double
    click from two single clicks by the time between the two mousedown handlers (300 ms), so a
    busy page (a callback's response rendered between them) can split the gesture in two;
    the gesture is then repeated, as a user would."""
    autoranged = f"() => document.querySelector('#{figure_id} .js-plotly-plot')._fullLayout.xaxis.autorange === true"
    for _ in range(tries):
        page.dblclick(f"#{figure_id} .nsewdrag")
        try:
            page.wait_for_function(autoranged, timeout=5_000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"{tries} double clicks on {figure_id} never autoranged it")


def wait_for_title(page, figure_id, text, timeout=240_000):
    """Wait until the figure's title contains ``text`` (a redrawn figure after a control change)."""
    page.wait_for_function(
        """([id, text]) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
             const title = el && el.layout && el.layout.title;
             return !!title && String(title.text || title).includes(text); }""",
        arg=[figure_id, text],
        timeout=timeout,
    )


def choose(page, dropdown_id, text):
    """Pick the option whose label starts with ``text`` in a Dash 4 dropdown (searching first)."""
    page.click(f"#{dropdown_id}")
    search = page.locator(".dash-dropdown-content .dash-dropdown-search")
    if search.count():
        search.fill(text)
    page.locator(".dash-dropdown-content [role=option]", has_text=text).first.click()


# The Models page's grid (Dash AG Grid): its rows as the user sees them, filtered and sorted.
GRID_ROWS = """id => { const rows = [];
  dash_ag_grid.getApi(id).forEachNodeAfterFilterAndSort(node => rows.push(node.data)); return rows; }"""
MODELS_GRID = "#models-table .ag-row"  # present once the grid has drawn its rows


def model_cell(name: str, column: str) -> str:
    """The selector of the Models grid's cell of the model ``name`` in ``column`` (``row-id`` is the name)."""
    return f"#models-table .ag-row[row-id='{name}'] [col-id='{column}']"
