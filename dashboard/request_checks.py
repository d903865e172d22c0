"""What a request must be before Dash reads it: a body of at most ``REPSCOPE_MAX_REQUEST_BYTES``
(413; the upload route raises it for its chunks), and a callback request shaped as Dash's renderer
sends it (400), so that a malformed one is refused with its problem, never answered 500. A
well-shaped request whose values a callback cannot use (a number where a path goes, a store that
is not what the page wrote) is a bad request too: 400, with the error logged on the server.
"""
from __future__ import annotations

import json
import logging

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger(__name__)

# What a callback raises on values it cannot use; anything else stays a server error (500).
VALUE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)

# Far deeper than any callback's inputs (a figure in a Store is about ten levels).
MAX_DEPTH = 100


def callback_body_problem(body, callbacks: dict) -> str | None:
    """What is wrong with a ``/_dash-update-component`` body for the app's ``callbacks``
    (Dash's ``callback_map``), or ``None`` when Dash can dispatch it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if _depth(body) > MAX_DEPTH:
        return f"the body is nested more than {MAX_DEPTH} levels deep"
    output = body.get("output")
    if not isinstance(output, str) or output not in callbacks:
        return "'output' names no callback of this app"
    for key in ("inputs", "state"):
        given, declared = body.get(key, []), callbacks[output][key]
        if not isinstance(given, list) or len(given) != len(declared) or not all(map(_dependency, given)):
            return f"'{key}' must list this callback's {len(declared)} {key}, each with an 'id' and a 'property'"
    outputs = body.get("outputs", [])
    if not (_value(outputs) or isinstance(outputs, list) and all(map(_dependency, outputs))):
        return "'outputs' must be an output or a list of outputs, each with an 'id' and a 'property'"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(name, str) for name in changed):
        return "'changedPropIds' must be a list of strings"
    return None


def _value(entry) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("id"), (str, dict)) and isinstance(entry.get("property"), str)


def _dependency(entry) -> bool:
    """One input, state or output, or a list of them (a pattern-matching ALL or ALLSMALLER)."""
    return _value(entry) or isinstance(entry, list) and all(map(_value, entry))


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def check_requests(server: Flask, callbacks: dict, dispatch_path: str, max_bytes: int) -> None:
    """Cap request bodies at ``max_bytes`` and refuse malformed bodies at ``dispatch_path``."""
    server.config["MAX_CONTENT_LENGTH"] = max_bytes

    @server.before_request
    def _callback_body():
        if request.path != dispatch_path or request.method != "POST" or not request.is_json:
            return None  # Dash answers 415 to a body that is not JSON
        try:
            body = json.loads(request.get_data(cache=True))
        except RecursionError:
            return _bad(f"the body is nested more than {MAX_DEPTH} levels deep")
        except ValueError:
            return _bad("the body is not JSON")
        problem = callback_body_problem(body, callbacks)
        return _bad(problem) if problem else None

    def _unusable_values(error: Exception):
        if request.path != dispatch_path:
            raise error  # not a callback: Flask answers 500 and logs it, as before
        log.exception("a callback could not use the values of its request")
        return _bad(f"the values sent do not fit this callback ({type(error).__name__})")

    for kind in VALUE_ERRORS:
        server.register_error_handler(kind, _unusable_values)

    @server.errorhandler(RequestEntityTooLarge)
    def _too_large(_):
        return Response(f"a request body may have at most {max_bytes} bytes (REPSCOPE_MAX_REQUEST_BYTES)\n",
                        413, mimetype="text/plain")


def _bad(problem: str) -> Response:
    return Response(f"bad callback request: {problem}\n", 400, mimetype="text/plain")
