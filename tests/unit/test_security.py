"""Access control: basic auth over every route, and no public bind without it."""
import base64
import time

import pytest

from dashboard.security import FailureThrottle, check_bind, configured_credentials, host_name, is_loopback


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


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.1.2.3", False), ("::ffff:10.1.2.3", False), ("0.0.0.0", False), ("", False), ("localhost", False),
])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("host, name", [
    ("localhost:8050", "localhost"), ("[::1]:8050", "::1"), ("::1", "::1"), ("Lab.Example.", "lab.example"),
    ("10.0.0.7", "10.0.0.7"),
])
def test_host_names_drop_the_port(host, name):
    assert host_name(host) == name


def test_failed_logins_slow_one_client_for_the_window_only():
    throttle = FailureThrottle(limit=3, window_s=0.5, clients=2)
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert throttle.retry_after("a") == 1 and throttle.retry_after("b") == 0
    time.sleep(0.6)
    assert throttle.retry_after("a") == 0
    for _ in range(3):
        throttle.failed("a")
    throttle.succeeded("a")  # a login clears them
    assert throttle.retry_after("a") == 0
    for client in "abc":  # remembers at most two clients: the oldest is forgotten
        for _ in range(3):
            throttle.failed(client)
    assert [throttle.retry_after(c) for c in "abc"] == [0, 1, 1]
