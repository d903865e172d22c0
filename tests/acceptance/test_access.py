"""Access control against a real app process: auth over every route, no debugger, safe binds."""
import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.browser.support import AppServer
from tests.support import ROOT

CREDENTIALS = "alice:correct horse"
PREFIX = "/repscope/"


@pytest.fixture(scope="module")
def server(zoo_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("app")
    app = AppServer(directory / "cache", zoo_dir, directory,
                    env={"REPSCOPE_AUTH": CREDENTIALS, "REPSCOPE_URL_PREFIX": PREFIX})
    app.url += PREFIX.rstrip("/")  # AppServer polls <url>/health: the prefixed probe
    app.start()
    yield app
    app.stop()


def request(url, data=None, credentials=None, content_type="application/json"):
    headers = {"Content-Type": content_type}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=120) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


RENDER_MODELS_PAGE = json.dumps({
    "output": "..page.children...link-note.children..",
    "outputs": [{"id": "page", "property": "children"}, {"id": "link-note", "property": "children"}],
    "inputs": [{"id": "url", "property": "pathname", "value": PREFIX + "models"},
               {"id": "selection", "property": "data", "value": None}],
    "state": [{"id": "url", "property": "search", "value": ""}], "changedPropIds": ["url.pathname"],
}).encode()


def test_every_route_needs_credentials_under_the_url_prefix(server):
    base = server.url + "/"
    routes = [(base, None), (base + "models", None), (base + "_dash-layout", None),
              (base + "_dash-dependencies", None), (base + "_dash-update-component", RENDER_MODELS_PAGE),
              (base + "assets/upload.js", None), (base + "upload/start", b"")]
    for url, data in routes:
        assert request(url, data)[0] == 401, url
        assert request(url, data, "alice:wrong password")[0] == 401, url
        status, body = request(url, data, CREDENTIALS)
        assert status == 200, (url, body[:300])
    assert "Upload a checkpoint" in request(base + "_dash-update-component", RENDER_MODELS_PAGE, CREDENTIALS)[1]
    assert request(base + "health")[0] == 200  # the liveness probe alone is public
    assert request(server.url.rsplit(PREFIX.rstrip("/"), 1)[0] + "/_dash-layout", None, CREDENTIALS)[0] == 404


def test_no_debugger_is_reachable_and_public_binds_need_auth(server, tmp_path):
    base = server.url + "/"
    status, body = request(base + "console", None, CREDENTIALS)  # Dash's page, as for any unknown path
    assert "_dash-config" in body and "Werkzeug" not in body and "__debugger__" not in body
    status, body = request(base + "_dash-update-component", b"{}", CREDENTIALS)  # a malformed callback
    assert status == 400 and "Werkzeug" not in body and "Traceback" not in body and "__debugger__" not in body
    assert "Werkzeug" not in request(base + "?__debugger__=yes&cmd=resource&f=debugger.js", None, CREDENTIALS)[1]

    def refusal(args, env):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "REPSCOPE_CACHE_DIR": str(tmp_path / "cache"),
               "REPSCOPE_ZOO_DIR": str(server.env["REPSCOPE_ZOO_DIR"]), **env}
        done = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True,
                              timeout=300, text=True)
        assert done.returncode != 0, done.stderr[-2000:]
        return done.stderr

    assert "refusing to listen on 0.0.0.0" in refusal(["--host", "0.0.0.0"], {})
    assert "allowed on 127.0.0.1 only" in refusal(["--host", "0.0.0.0", "--debug"], {"REPSCOPE_AUTH": CREDENTIALS})
    assert "SECRET_KEY is not set" in refusal([], {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert "SECRET_KEY is not set" in refusal([], {"REPSCOPE_WORKERS": "2"})
