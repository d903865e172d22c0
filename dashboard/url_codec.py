"""A view's values <-> the URL's query string, so that a link restores exactly what its sender saw."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Mapping
from urllib.parse import parse_qsl, urlencode

# The (name, value) pairs of a link a page ignored, while :func:`noting_ignored` is open.
_ignored: ContextVar[list | None] = ContextVar("ignored", default=None)


def decode(search: str | None, defaults: Mapping[str, str], choices: Mapping[str, tuple] = {}) -> dict:
    """Read ``?a=1&b=2`` into a dict over ``defaults``' keys; unknown keys and values not in
    ``choices`` (where given) fall back to the defaults, so an edited link never breaks a page
    (the values it ignores are noted, see :func:`noting_ignored`)."""
    values = dict(defaults)
    for name, value in parse(search):
        if name in values and (name not in choices or value in choices[name]):
            values[name] = value
        elif name in values:
            note_ignored(name, value)
    return values


@contextmanager
def noting_ignored() -> Iterator[list[tuple[str, str]]]:
    """A list that collects, while open, the (name, value) pairs of a link that :func:`decode`
    (or a view, with :func:`note_ignored`) falls back from, to tell the user."""
    token = _ignored.set([])
    try:
        yield _ignored.get()
    finally:
        _ignored.reset(token)


def note_ignored(name: str, value: str) -> None:
    """Record that a link's ``name=value`` was ignored (nothing happens outside :func:`noting_ignored`)."""
    noted = _ignored.get()
    if noted is not None and (name, value) not in noted:
        noted.append((name, value))


def parse(search: str | None) -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string, in order."""
    return parse_qsl((search or "").lstrip("?"))


def join(*searches: str | None) -> str:
    """Several query strings as one (a later one's value wins for a name given twice)."""
    return _query(dict(pair for search in searches for pair in parse(search)))


def encode(values: Mapping[str, str], defaults: Mapping[str, str]) -> str:
    """The query string for ``values``: only what differs from the defaults, in a stable order."""
    return _query({k: values[k] for k in defaults if k in values and values[k] != defaults[k]})


def replace(search: str | None, name: str, value: str | None) -> str:
    """``search`` with ``name`` set to ``value`` (removed when ``value`` is empty or None)."""
    pairs = dict(parse(search))
    pairs.pop(name, None)
    if value:
        pairs[name] = value
    return _query(pairs)


def _query(pairs: Mapping[str, str]) -> str:
    """``?a=1&b=2`` in name order, or "" for no pairs."""
    return "?" + urlencode(sorted(pairs.items())) if pairs else ""


def check(values: Mapping[str, object], choices: Mapping[str, tuple]) -> None:
    """Raise ValueError naming the first of ``values`` that its ``choices`` do not offer.

    A callback's values are the client's (a crafted request may send any): a view's ``plan``
    checks them so that only what the view offers is ever computed."""
    for name, offered in choices.items():
        if name in values and values[name] not in offered:
            shown = repr(values[name])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ValueError(f"{name} must be one of {', '.join(map(str, offered))}, not {shown}")
