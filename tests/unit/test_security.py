"""Access control: basic auth over every route, and no public bind without it."""
import base64

import pytest

from dashboard.security import check_bind, configured_credentials


def test_no_auth_by_default(monkeypatch):
    monkeypatch.delenv("REPSCOPE_AUTH", raising=False)
    monkeypatch.delenv("REPSCOPE_AUTH_FILE", raising=False)
    assert configured_credentials() is None
    check_bind("127.0.0.1")
    with pytest.raises(SystemExit, match="refusing to listen on 0.0.0.0"):
        check_bind("0.0.0.0")


def test_auth_from_file_allows_a_public_bind(monkeypatch, tmp_path):
    path = tmp_path / "auth"
    path.write_text("alice:correct horse\n")
    monkeypatch.setenv("REPSCOPE_AUTH_FILE", str(path))
    assert configured_credentials() == ("alice", "correct horse")
    check_bind("0.0.0.0")


@pytest.mark.parametrize("value", ["nopassword", "alice:short", ":password123"])
def test_weak_or_malformed_auth_is_refused(monkeypatch, value):
    monkeypatch.setenv("REPSCOPE_AUTH", value)
    with pytest.raises(ValueError, match="user:password"):
        configured_credentials()


def test_every_route_asks_for_credentials(monkeypatch):
    monkeypatch.setenv("REPSCOPE_AUTH", "alice:correct horse")
    from dashboard.app import create_app

    client = create_app().server.test_client()
    good = {"Authorization": "Basic " + base64.b64encode(b"alice:correct horse").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()}
    for route in ["/", "/_dash-layout", "/_dash-dependencies", "/assets/style.css"]:
        assert client.get(route).status_code == 401, route
        assert client.get(route, headers=bad).status_code == 401, route
        assert client.get(route, headers=good).status_code == 200, route
    assert client.post("/_dash-update-component", json={}).status_code == 401
