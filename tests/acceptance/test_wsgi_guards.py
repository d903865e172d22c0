"""The WSGI app as gunicorn serves it (``from app import server``), requests made in-process: a
client's address is the environ's REMOTE_ADDR, so no traffic leaves 127.0.0.0/8."""
import base64
import json
import logging
import sys

import pytest

from compute.settings import get_settings
from dashboard.security import answer_to
from dashboard.app import VIEWS  # every page the app serves
from tests.acceptance.dash_requests import callback_body

CREDENTIALS = "alice:correct horse"
OUTSIDER = {"REMOTE_ADDR": "10.1.2.3"}
SETTINGS = ("REPSCOPE_AUTH", "REPSCOPE_AUTH_FILE", "REPSCOPE_ALLOWED_HOSTS", "REPSCOPE_HOST",
            "REPSCOPE_MAX_REQUEST_BYTES", "REPSCOPE_URL_PREFIX")
# A callback the app always has: the page frame drawing a path no view has (cheap, no zoo).
RENDER = {"output": "..page.children...link-note.children..",
          "outputs": [{"id": "page", "property": "children"}, {"id": "link-note", "property": "children"}],
          "inputs": [{"id": "url", "property": "pathname", "value": "/no-such-page"},
                     {"id": "selection", "property": "data", "value": None}],
          "state": [{"id": "url", "property": "search", "value": ""}], "changedPropIds": ["url.pathname"]}


@pytest.fixture
def serve(monkeypatch, tmp_path, zoo_dir):
    """``serve(**env)``: the ``server`` that ``app.py`` exports, made with these settings."""
    def make(**env):
        for name in SETTINGS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("REPSCOPE_CACHE_DIR", str(tmp_path / "cache"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("app", None)
        from app import server

        return server
    yield make
    sys.modules.pop("app", None)


def basic(credentials):
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def every_route(client):
    """(method, path, body) of every route the app serves, pages of every view included."""
    upload_id = "A" * 32
    routes = [("GET", view.PATH, None) for view in VIEWS]
    routes += [("GET", "/_dash-layout", None), ("GET", "/_dash-dependencies", None),
               ("POST", "/_dash-update-component", json.dumps(RENDER)), ("GET", "/_reload-hash", None),
               ("GET", "/_favicon.ico", None), ("GET", "/assets/style.css", None), ("GET", "/assets/upload.js", None),
               ("POST", "/upload/start", b""), ("POST", f"/upload/{upload_id}/0", b"x"),
               ("POST", f"/upload/{upload_id}/finish", b"{}"), ("GET", "/health", None)]
    bundle = client.get("/").get_data(as_text=True).split('src="/_dash-component-suites/')[1].split('"')[0]
    return routes + [("GET", "/_dash-component-suites/" + bundle, None)]


def call(client, method, path, body=None, **kwargs):
    return client.open(path, method=method, data=body, content_type="application/json", **kwargs)


def test_without_auth_every_route_is_refused_to_a_client_beyond_this_machine(serve, caplog):
    with caplog.at_level(logging.WARNING, logger="repscope"):
        server = serve()
    client = server.test_client()
    routes = every_route(client)
    for method, path, body in routes:
        answer = call(client, method, path, body, environ_base=OUTSIDER)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "REPSCOPE_AUTH" in answer.get_data(as_text=True), path
        # A proxy on this machine relays others: its requests are refused too.
        assert call(client, method, path, body, headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 403, path
    for method, path, body in routes:  # the same routes serve this machine
        if "/upload/" not in path or path.endswith("start"):
            assert call(client, method, path, body).status_code == 200, path
        assert call(client, method, path, body, environ_base={"REMOTE_ADDR": "::1"}).status_code != 403, path
    assert [r for r in caplog.records if "REPSCOPE_AUTH" in r.getMessage()], "no reason logged at start"


def test_with_auth_a_client_beyond_this_machine_is_served_once_it_logs_in(serve):
    client = serve(REPSCOPE_AUTH=CREDENTIALS).test_client()
    assert client.get("/", environ_base=OUTSIDER).status_code == 401
    assert client.get("/", environ_base=OUTSIDER, headers=basic(CREDENTIALS)).status_code == 200
    # The public probe tells an anonymous client only whether the app is up.
    assert client.get("/health", environ_base=OUTSIDER).get_json() == {"status": "ok"}
    assert client.get("/health", environ_base=OUTSIDER, headers=basic(CREDENTIALS)).get_json()["backend"] == "embedded"


def test_only_the_hosts_the_server_answers_to_are_served(serve):
    client = serve().test_client()
    for host in ("localhost", "localhost:8050", "127.0.0.1:8050", "[::1]:8050", "127.0.1.1"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    for method, path, body in every_route(client):  # a DNS-rebinding page's requests
        answer = call(client, method, path, body, headers={"Host": "rebind.attacker.example:8050"})
        assert answer.status_code == 400, path
        assert "REPSCOPE_ALLOWED_HOSTS" in answer.get_data(as_text=True)

    client = serve(REPSCOPE_ALLOWED_HOSTS="repscope.lab.example, Lab-Server", REPSCOPE_HOST="10.0.0.7",
                   REPSCOPE_AUTH=CREDENTIALS).test_client()
    for host in ("repscope.lab.example", "lab-server:443", "10.0.0.7:8050", "localhost"):
        assert client.get("/", headers={"Host": host, **basic(CREDENTIALS)}).status_code == 200, host
    assert client.get("/", headers={"Host": "other.example", **basic(CREDENTIALS)}).status_code == 400

    server = serve(REPSCOPE_AUTH=CREDENTIALS)  # `python app.py --host 10.0.0.8` answers to its address
    assert server.test_client().get("/", headers={"Host": "10.0.0.8", **basic(CREDENTIALS)}).status_code == 400
    answer_to(server, get_settings(), "10.0.0.8")
    assert server.test_client().get("/", headers={"Host": "10.0.0.8:8050", **basic(CREDENTIALS)}).status_code == 200


def test_request_bodies_are_capped_but_upload_chunks_go_through(serve):
    client = serve().test_client()
    huge = json.dumps({**RENDER, "padding": "x" * 50 * 2**20})
    answer = call(client, "POST", "/_dash-update-component", huge)
    assert answer.status_code == 413 and "REPSCOPE_MAX_REQUEST_BYTES" in answer.get_data(as_text=True)
    assert call(client, "POST", "/_dash-update-component", json.dumps(RENDER)).status_code == 200
    upload_id = client.post("/upload/start").get_json()["upload_id"]
    chunk = client.post(f"/upload/{upload_id}/0", data=b"\0" * 8 * 2**20, content_type="application/octet-stream")
    assert chunk.status_code == 200 and chunk.get_json()["received"] == 8 * 2**20

    client = serve(REPSCOPE_MAX_REQUEST_BYTES=str(2**16)).test_client()
    padded = json.dumps({**RENDER, "padding": "x" * 2**16})
    assert call(client, "POST", "/_dash-update-component", padded).status_code == 413


def test_every_answer_carries_the_security_headers(serve):
    client = serve().test_client()
    answers = [client.get("/"), client.get("/_dash-layout"), client.get("/assets/style.css"),
               call(client, "POST", "/_dash-update-component", json.dumps(RENDER)),
               client.get("/", environ_base=OUTSIDER), client.get("/", headers={"Host": "evil.example"})]
    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        policy = dict(part.strip().split(" ", 1) for part in answer.headers["Content-Security-Policy"].split(";"))
        assert policy["frame-ancestors"] == "'self'" and policy["object-src"] == "'none'"
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]


MALFORMED = {
    "empty object": {}, "a list": [RENDER], "a string": "page.children", "null": None,
    "unknown output": {**RENDER, "output": "nothing.children"}, "output not a string": {**RENDER, "output": 5},
    "inputs not a list": {**RENDER, "inputs": "url.pathname"}, "too few inputs": {**RENDER, "inputs": RENDER["inputs"][:1]},
    "inputs of numbers": {**RENDER, "inputs": [1, 2]}, "state an object": {**RENDER, "state": {}},
    "outputs a string": {**RENDER, "outputs": "page"}, "changedPropIds a number": {**RENDER, "changedPropIds": 5},
    "input without property": {**RENDER, "inputs": [{"id": "url", "value": "/"}, RENDER["inputs"][1]]},
    "a number for a path": {**RENDER, "inputs": [{**RENDER["inputs"][0], "value": 5}, RENDER["inputs"][1]]},
    "a selection store of the wrong type": {**RENDER, "inputs": [{**RENDER["inputs"][0], "value": "/rdm"},
                                                                  {**RENDER["inputs"][1], "value": [1, {"x": 2}]}]},
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_callback_body_is_a_bad_request(serve, name):
    client = serve().test_client()
    answer = call(client, "POST", "/_dash-update-component", json.dumps(MALFORMED[name]))
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400, (name, text[:300])
    assert text.startswith("bad callback request: ") and "Traceback" not in text


@pytest.mark.parametrize("depth", [150, 100_000])
def test_deeply_nested_callback_bodies_are_bad_requests(serve, depth):
    client = serve().test_client()
    nested = json.dumps(RENDER)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    answer = call(client, "POST", "/_dash-update-component", nested)
    assert answer.status_code == 400 and "nested" in answer.get_data(as_text=True)
    assert call(client, "POST", "/_dash-update-component", "{not json").status_code == 400


def test_repeated_login_failures_slow_that_client_down_only(serve):
    client = serve(REPSCOPE_AUTH=CREDENTIALS).test_client()
    for _ in range(5):
        assert client.get("/", environ_base=OUTSIDER, headers=basic("alice:wrong guess")).status_code == 401
    for credentials in ("alice:wrong guess", CREDENTIALS):  # no more guesses checked for a while
        answer = client.get("/", environ_base=OUTSIDER, headers=basic(credentials))
        assert answer.status_code == 429 and 1 <= int(answer.headers["Retry-After"]) <= 60
    colleague = {"REMOTE_ADDR": "10.9.9.9"}
    assert client.get("/", environ_base=colleague, headers=basic(CREDENTIALS)).status_code == 200
    assert client.get("/", environ_base=colleague, headers=basic("alice:typo")).status_code == 401


@pytest.mark.parametrize("record", [5, "x", [1, 2], {"values": "nope"}, {"values": [1] * 50, "selection": 7},
                                    {"spec": {"kind": "reference_fit", "params": {"n_boot": 20000}}}],
                         ids=["number", "string", "list", "values not a list", "wrong values", "a spec"])
def test_a_crafted_job_record_is_never_a_server_error(serve, record):
    """Every callback reading a view's job store (submit, Compute, poll, download) answers a
    record the page never wrote with a message or a 400, never a 500."""
    client = serve().test_client()
    dependencies = client.get("/_dash-dependencies").get_json()
    readers = [d for d in dependencies if not d.get("clientside_function") and any(
        f"{i['id']}.{i['property']}".endswith("-job.data") for i in d["inputs"] + d["state"])]
    assert len(readers) >= 10  # a few per computed view
    for dependency in readers:
        values = {f"{i['id']}.{i['property']}": record for i in dependency["inputs"] + dependency["state"]
                  if f"{i['id']}.{i['property']}".endswith("-job.data")}
        answer = call(client, "POST", "/_dash-update-component", json.dumps(callback_body(dependency, values)))
        assert answer.status_code in (200, 204, 400), (dependency["output"], answer.get_data(as_text=True)[:300])
