"""Access control for a shared server, held in the WSGI app itself whatever server runs it.

``REPSCOPE_AUTH`` (``user:password``) or ``REPSCOPE_AUTH_FILE`` (a file holding that line)
turns on HTTP basic auth over every route but the health probe. Without it only clients on this
machine are served (others get 403) and ``python app.py`` refuses to listen beyond it. Every
request must name a host the server answers to (DNS rebinding), and every answer carries the
security headers.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import os
import threading
import time
from collections import deque
from pathlib import Path

from werkzeug.datastructures import Authorization
from werkzeug.wrappers import Response

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# A request relayed by a proxy comes from the proxy's address, often loopback: one that says so
# is not from this machine.
FORWARDING_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST", "HTTP_X_REAL_IP")
# Set in the WSGI environ when the client may see everything (authenticated, or on this machine).
TRUSTED = "repscope.trusted"
NO_AUTH_MESSAGE = ("RepScope serves only clients on its own machine until authentication is configured: "
                   "its operator sets REPSCOPE_AUTH=user:password (or REPSCOPE_AUTH_FILE) to serve others")

log = logging.getLogger("repscope")


def configured_credentials() -> tuple[str, str] | None:
    """``(user, password)`` from the environment, or ``None`` when auth is off."""
    raw = os.environ.get("REPSCOPE_AUTH", "")
    path = os.environ.get("REPSCOPE_AUTH_FILE", "")
    if not raw and path:
        raw = Path(path).read_text().strip()
    if not raw:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or len(password) < 8:
        raise ValueError("REPSCOPE_AUTH must be 'user:password' with a password of at least 8 characters")
    return user, password


def check_bind(host: str) -> None:
    """Refuse to listen beyond this machine unless authentication is configured."""
    if host not in LOOPBACK and configured_credentials() is None:
        raise SystemExit(
            f"refusing to listen on {host}: anyone who can reach it could use this server. "
            "Set REPSCOPE_AUTH=user:password (or REPSCOPE_AUTH_FILE) first, or bind 127.0.0.1"
        )


def require_secret_key(settings) -> str:
    """``SECRET_KEY``, required when more than one process must agree on it (Dash signs job
    handles with it): under gunicorn, with ``REPSCOPE_WORKERS`` > 1 or with ``REDIS_URL``."""
    key = os.environ.get("SECRET_KEY", "")
    shared = (settings.redis_url or settings.workers > 1
              or "gunicorn" in os.environ.get("SERVER_SOFTWARE", ""))
    if not key and shared:
        raise SystemExit("SECRET_KEY is not set: with several processes (gunicorn, REPSCOPE_WORKERS > 1 "
                         "or REDIS_URL) every one must share it. Set SECRET_KEY to one long random "
                         "string, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`")
    return key


def is_loopback(address: str) -> bool:
    """Whether ``address`` is an IP address of this machine's loopback (127.0.0.0/8, ::1)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def from_this_machine(environ: dict) -> bool:
    """A client on a loopback address that no proxy relayed. Behind a reverse proxy every client
    has the proxy's address, so a proxy that adds no forwarding header passes: set auth there."""
    return is_loopback(environ.get("REMOTE_ADDR") or "") and not any(h in environ for h in FORWARDING_HEADERS)


def host_name(host: str) -> str:
    """A Host header or host setting without its port: ``"[::1]:8050"`` -> ``"::1"``."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def allowed_hosts(settings, bound: str | None = None) -> frozenset[str]:
    """``localhost``, the bound address (``REPSCOPE_HOST``, or ``bound``) and ``REPSCOPE_ALLOWED_HOSTS``
    (loopback addresses are always allowed: no one else's page can have them as its origin)."""
    names = {"localhost", host_name(bound or settings.host), *(host_name(h) for h in settings.allowed_hosts)}
    return frozenset(names - {"", "0.0.0.0", "::"})


class FailureThrottle:
    """At most ``limit`` failed logins per client address in ``window_s`` seconds; after that the
    client waits (429) until its oldest failure is ``window_s`` old; a login clears its failures.
    Other clients are not slowed.
    Remembers at most ``clients`` addresses, forgetting those whose last failure is oldest."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, clients: int = 10_000):
        self.limit, self.window_s, self.clients = limit, window_s, clients
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds ``client`` must wait before its credentials are checked again; 0: none."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return 0
            while failures and failures[0] <= now - self.window_s:
                failures.popleft()
            if not failures:
                del self._failures[client]
                return 0
            if len(failures) < self.limit:
                return 0
            return max(1, math.ceil(failures[0] + self.window_s - now))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def failed(self, client: str) -> None:
        with self._lock:
            failures = self._failures.pop(client, None) or deque(maxlen=self.limit)
            failures.append(time.monotonic())
            self._failures[client] = failures  # last in the dict's order: the most recent
            while len(self._failures) > self.clients:
                del self._failures[next(iter(self._failures))]


def _refusal(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(message + "\n", status, headers, mimetype="text/plain")


class Gate:
    """WSGI middleware in front of the Flask app: Host allow-list (400), then access: with no
    credentials configured only clients on this machine (403), otherwise basic auth (401) with
    repeated failures slowed down (429). Every answer, refusals included, gets ``headers``."""

    def __init__(self, app, credentials: tuple[str, str] | None, hosts: frozenset[str],
                 public_paths: tuple[str, ...], headers: list[tuple[str, str]]):
        self.app, self.credentials, self.hosts = app, credentials, hosts
        self.public_paths, self.headers = public_paths, headers
        self.throttle = FailureThrottle()

    def __call__(self, environ, start_response):
        def with_headers(status, response_headers, exc_info=None):
            present = {name.lower() for name, _ in response_headers}
            response_headers.extend(h for h in self.headers if h[0].lower() not in present)
            return start_response(status, response_headers, exc_info)

        refusal = self._refusal(environ)
        return (refusal or self.app)(environ, with_headers)

    def _refusal(self, environ) -> Response | None:
        host = environ.get("HTTP_HOST")
        # No Host header, no browser: DNS rebinding needs a page's requests.
        if host is not None and not (host_name(host) in self.hosts or is_loopback(host_name(host))):
            return _refusal(400, "the Host header names a host this server does not answer to; its operator "
                                 "lists the server's names in REPSCOPE_ALLOWED_HOSTS")
        if self.credentials is None:
            if not from_this_machine(environ):
                return _refusal(403, NO_AUTH_MESSAGE)
            environ[TRUSTED] = True
            return None
        public = environ.get("PATH_INFO", "") in self.public_paths
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            return None if public else self._ask()
        client = environ.get("REMOTE_ADDR") or "unknown"
        wait = self.throttle.retry_after(client)
        if wait:
            return _refusal(429, f"too many failed logins from this address: try again in {wait} s",
                            {"Retry-After": str(wait)})
        if self._valid(Authorization.from_header(header)):
            self.throttle.succeeded(client)
            environ[TRUSTED] = True
            return None
        self.throttle.failed(client)
        return None if public else self._ask()

    def _valid(self, given: Authorization | None) -> bool:
        user, password = self.credentials
        return (given is not None and given.type == "basic"
                and hmac.compare_digest((given.username or "").encode(), user.encode())
                & hmac.compare_digest((given.password or "").encode(), password.encode()))

    @staticmethod
    def _ask() -> Response:
        return _refusal(401, "authentication required", {"WWW-Authenticate": 'Basic realm="RepScope"'})


def guard(server, settings, public_paths: tuple[str, ...], headers: list[tuple[str, str]]) -> None:
    """Put the :class:`Gate` in front of ``server`` (a Flask app) and say at start whom it serves."""
    credentials = configured_credentials()
    if credentials is None:
        log.warning("no REPSCOPE_AUTH or REPSCOPE_AUTH_FILE is set: only clients on this machine are served "
                    "(127.0.0.0/8, ::1, not relayed by a proxy); others get 403. Set one to serve others.")
    server.wsgi_app = Gate(server.wsgi_app, credentials, allowed_hosts(settings), public_paths, headers)


def answer_to(server, settings, bound: str) -> None:
    """Let the gate of ``server`` accept ``bound``, the address ``python app.py --host`` listens on."""
    server.wsgi_app.hosts = allowed_hosts(settings, bound) | server.wsgi_app.hosts
