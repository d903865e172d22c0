"""Access control for a shared server: optional HTTP basic auth over every route.

``REPSCOPE_AUTH`` (``user:password``) or ``REPSCOPE_AUTH_FILE`` (a file holding that line)
turns it on. Without it the app refuses to listen on anything but a loopback address.
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from flask import Flask, Response, request

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# A liveness probe for container healthchecks; it says nothing about the data.
PUBLIC_PATHS = ("/health",)


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


def require_auth(server: Flask, public_paths: tuple[str, ...] = PUBLIC_PATHS) -> None:
    """Ask every request but the health probe (``public_paths``) for the configured credentials."""
    credentials = configured_credentials()
    if credentials is None:
        return
    user, password = credentials

    @server.before_request
    def _authenticate():
        if request.path in public_paths:
            return None
        given = request.authorization
        if (
            given is not None
            and given.type == "basic"
            and hmac.compare_digest((given.username or "").encode(), user.encode())
            and hmac.compare_digest((given.password or "").encode(), password.encode())
        ):
            return None
        return Response("authentication required", 401, {"WWW-Authenticate": 'Basic realm="RepScope"'})
