"""The app as a real process, and reading Plotly figures out of a real page."""
from __future__ import annotations

import sys
import urllib.error
import urllib.request

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



# Plotly 6 ships arrays base64-encoded ("bdata"); _fullData holds them decoded, as typed arrays.
PLOT_DATA = """id => {
  const plain = v => (v && typeof v === 'object' && v.length !== undefined) ? Array.from(v, plain) : v;
  const el = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!el || !el._fullData) return null;
  return el._fullData.map(t => ({x: plain(t.x), y: plain(t.y), z: t.z ? plain(t.z) : null, name: t.name}));
}"""


def wait_for_figures(page):
    """Wait for the model-space figures, failing at once with the page's message if its job fails."""
    page.wait_for_function(
        "() => { const el = document.querySelector('#model-space-mds .js-plotly-plot');"
        " const failed = document.querySelector('#model-space-progress .status-failed');"
        " return failed || (el && el._fullData && el._fullData.length > 0 && el._fullData[0]._length > 0); }",
        timeout=240_000,
    )
    failed = page.query_selector("#model-space-progress .status-failed")
    assert failed is None, "the job failed: " + failed.inner_text()
    return page.evaluate(PLOT_DATA, "model-space-mds"), page.evaluate(PLOT_DATA, "model-space-heatmap")
