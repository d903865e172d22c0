"""The chunked upload route: checkpoints, stimulus zips and reference RDMs sent in pieces by assets/upload.js.

``POST <prefix>upload/start`` -> ``{"upload_id", "chunk_bytes", "max_bytes"}`` (a random token);
``POST <prefix>upload/<id>/<index>`` with raw bytes, chunks in order; ``POST <prefix>upload/<id>/finish``
with JSON ``{"filename", "kind": "checkpoint"|"stimuli"|"reference", "architecture", "num_classes",
"stimulus_set"?, "name"?, "twin_of"?}`` (a reference needs only ``stimulus_set`` and ``name``; ``stimulus_set``
is a name of the registry, :mod:`compute.sources.stimulus_names`) checks the file in
a limited worker process and answers
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. A chunk over ``CHUNK_LIMIT`` or an
upload over ``REPSCOPE_MAX_UPLOAD_BYTES`` gets 413 and its partial file is removed.

Unfinished uploads are bounded: a client (its remote address) may have
``REPSCOPE_PARTIAL_UPLOADS_PER_CLIENT`` of them (another start gets 429), and all of them together
may hold ``REPSCOPE_PARTIAL_UPLOAD_BYTES`` (a start or a chunk past that gets 507, and that chunk's
upload is removed). One without progress for ``EXPIRE_AFTER_S`` is deleted, swept under a lock at
every start and chunk, so nothing needs a cron job.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

CHUNK_BYTES = 8 * 2**20  # what upload.js sends
CHUNK_LIMIT = 16 * 2**20  # what one request may carry
EXPIRE_AFTER_S = 3600  # an unfinished upload without a new chunk for this long is deleted
_ID = re.compile(r"[A-Za-z0-9_-]{32}")
# Upload kind -> the finish request's fields its check takes, with their defaults (anything else
# the client sends is dropped; the worker's task validates every value).
FIELDS = {
    "checkpoint": {"architecture": None, "num_classes": None, "stimulus_set": "digits", "name": None,
                   "twin_of": None},
    "stimuli": {},
    "reference": {"stimulus_set": "digits", "name": None},
    "activations": {"stimulus_set": "digits", "name": None, "brain": False, "repeated": False, "series": None,
                    "step": None},
    "onnx": {"stimulus_set": "digits", "name": None, "size": None, "mean": None, "std": None, "channels": None},
}


def _tmp_dir() -> Path:
    from compute.settings import private_dir, upload_dir

    return private_dir(upload_dir() / "tmp")


def _paths(upload_id: str) -> tuple[Path, Path]:
    """(partial file, its state file) of a valid upload id; KeyError for an unknown one."""
    if not _ID.fullmatch(upload_id):
        raise KeyError(upload_id)
    part = _tmp_dir() / f"{upload_id}.part"
    if not part.exists():
        raise KeyError(upload_id)
    return part, part.with_suffix(".json")


def _discard(upload_id: str) -> None:
    for suffix in (".part", ".json"):
        (_tmp_dir() / f"{upload_id}{suffix}").unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(state_path: Path):
    """The upload's state ``{"next": chunk index, "bytes": received, "client"}``, held exclusively,
    and a ``save()`` that writes it back (called under :func:`_partials`' lock, which reads it)."""
    import fcntl

    with open(state_path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        state = json.load(handle)

        def save() -> None:
            handle.seek(0)
            handle.truncate()
            json.dump(state, handle)
            handle.flush()

        yield state, save


@contextlib.contextmanager
def _partials():
    """Every unfinished upload as ``{id: (client, bytes)}``, the expired ones deleted first, under
    a lock on the folder: starts and chunks that check the bounds do so one at a time."""
    import fcntl

    tmp = _tmp_dir()
    lock = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)  # the folder itself: no lock file to leave behind
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found, now = {}, time.time()
        for state_path in tmp.glob("*.json"):
            upload_id, part = state_path.stem, state_path.with_suffix(".part")
            try:
                latest = max(state_path.stat().st_mtime, part.stat().st_mtime)
                client = json.loads(state_path.read_text()).get("client")
            except FileNotFoundError:  # half removed
                latest, client = 0.0, None
            except (json.JSONDecodeError, AttributeError):  # not ours to read: it only expires
                client = None
            if latest < now - EXPIRE_AFTER_S:
                _discard(upload_id)
                continue
            with contextlib.suppress(FileNotFoundError):
                found[upload_id] = (client, part.stat().st_size)
        for part in tmp.glob("*.part"):  # a part file whose state file is gone
            if part.stem not in found and _ID.fullmatch(part.stem):
                with contextlib.suppress(FileNotFoundError):
                    if part.stat().st_mtime < now - EXPIRE_AFTER_S:
                        part.unlink()
        yield found
    finally:
        os.close(lock)  # closing releases the lock


def _over_total(held: int, more: int) -> str | None:
    """Why ``more`` bytes would take the unfinished uploads past their total bound, if they would."""
    from compute.settings import format_bytes, get_settings

    bound = get_settings().partial_upload_bytes
    if bound and held + more > bound:
        return (f"the server holds {format_bytes(held)} of unfinished uploads, and takes at most "
                f"{format_bytes(bound)} (REPSCOPE_PARTIAL_UPLOAD_BYTES); try again when other uploads "
                f"have finished, or within {EXPIRE_AFTER_S // 60} minutes when abandoned ones expire")
    return None


def _create_private(path: Path, text: str = "") -> None:
    """Write a new file readable by the server's user only (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _error(status: int, message: str):
    return jsonify(ok=False, error=message), status


def _too_large(upload_id: str, limit: int, what: str):
    from compute.settings import format_bytes

    _discard(upload_id)
    return _error(413, f"the {what} is larger than the {format_bytes(limit)} limit; the partial upload was removed")


def blueprint() -> Blueprint:
    """The upload routes, to mount under the app's URL prefix."""
    routes = Blueprint("uploads", __name__)

    @routes.post("/start")
    def start():
        from compute.settings import get_settings

        client, per_client = request.remote_addr, get_settings().partial_uploads_per_client
        with _partials() as partials:
            mine = sum(1 for owner, _ in partials.values() if owner == client)
            if per_client and mine >= per_client:
                return _error(429, f"you have {mine} unfinished uploads, the most one client may have "
                              f"(REPSCOPE_PARTIAL_UPLOADS_PER_CLIENT={per_client}); finish one, or wait: "
                              f"an upload without progress for {EXPIRE_AFTER_S // 60} minutes is removed")
            full = _over_total(sum(size for _, size in partials.values()), 1)
            if full:
                return _error(507, full)
            upload_id = secrets.token_urlsafe(24)
            _create_private(_tmp_dir() / f"{upload_id}.part")
            _create_private(_tmp_dir() / f"{upload_id}.json", json.dumps({"next": 0, "bytes": 0, "client": client}))
        return jsonify(ok=True, upload_id=upload_id, chunk_bytes=CHUNK_BYTES, max_bytes=_max_bytes(),
                       max_size=_max_size())

    @routes.post("/<upload_id>/<int:index>")
    def chunk(upload_id: str, index: int):
        try:
            part, state_path = _paths(upload_id)
        except KeyError:
            return _error(404, "unknown upload id; start the upload again")
        request.max_content_length = CHUNK_LIMIT
        limit = _max_bytes()
        with _locked(state_path) as (state, save):
            if index != state["next"]:
                return _error(409, f"expected chunk {state['next']}, got chunk {index}")
            if state["bytes"] + (request.content_length or 0) > limit:
                return _too_large(upload_id, limit, "upload")
            try:
                data = request.get_data(cache=False)
            except RequestEntityTooLarge:
                return _too_large(upload_id, CHUNK_LIMIT, "chunk")
            if state["bytes"] + len(data) > limit:
                return _too_large(upload_id, limit, "upload")
            with _partials() as partials:
                if upload_id not in partials:  # expired while this chunk was on its way
                    return _error(404, "unknown upload id; start the upload again")
                full = _over_total(sum(size for _, size in partials.values()), len(data))
                if full:
                    _discard(upload_id)
                    return _error(507, full + "; this upload was removed")
                with open(part, "ab") as handle:
                    handle.write(data)
                state["next"], state["bytes"] = index + 1, state["bytes"] + len(data)
                save()
        return jsonify(ok=True, received=state["bytes"])

    @routes.post("/<upload_id>/finish")
    def finish(upload_id: str):
        from compute.sources.stimulus_names import UnknownStimulusSet
        from compute.sources.stimulus_names import resolve as resolve_stimuli
        from compute.sources.upload_worker import UploadError, run_in_worker

        try:
            part, _ = _paths(upload_id)
        except KeyError:
            return _error(404, "unknown upload id; start the upload again")
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return _error(400, 'finish needs a JSON object {"filename", "kind", ...}')
        kind, filename = fields.get("kind"), str(fields.get("filename") or "")
        arguments = {field: default if fields.get(field) in (None, "") else fields.get(field)
                     for field, default in FIELDS.get(kind, {}).items()}
        try:
            if "stimulus_set" in arguments:  # a name of the registry, never a path: refused before any file is read
                resolve_stimuli(arguments["stimulus_set"])
            result = run_in_worker(kind, path=str(part), filename=filename, **arguments)
        except (UploadError, UnknownStimulusSet) as error:
            return _error(422, str(error))
        finally:
            _discard(upload_id)
        result.pop("stored", None)  # where the server keeps it is not the client's business
        return jsonify(ok=True, **result)

    @routes.errorhandler(RequestEntityTooLarge)
    def too_large(_):
        from compute.settings import format_bytes

        return _error(413, f"a request may carry at most {format_bytes(CHUNK_LIMIT)}")

    return routes


def _max_bytes() -> int:
    from compute.settings import get_settings

    return get_settings().max_upload_bytes


def _max_size() -> str:
    from compute.settings import format_bytes

    return format_bytes(_max_bytes())


def register_uploads(server: Flask, prefix: str = "/") -> None:
    """Mount the upload routes at ``<prefix>upload``."""
    server.register_blueprint(blueprint(), url_prefix=f"{prefix}upload")
