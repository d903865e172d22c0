"""The chunked upload route: checkpoints, stimulus zips and reference RDMs sent in pieces by assets/upload.js.

``POST <prefix>upload/start`` -> ``{"upload_id", "chunk_bytes", "max_bytes"}`` (a random token);
``POST <prefix>upload/<id>/<index>`` with raw bytes, chunks in order; ``POST <prefix>upload/<id>/finish``
with JSON ``{"filename", "kind": "checkpoint"|"stimuli"|"reference", "architecture", "num_classes",
"stimulus_set"?, "name"?}`` (a reference needs only ``stimulus_set`` and ``name``; ``stimulus_set``
is a name of the registry, :mod:`compute.sources.stimulus_names`) checks the file in
a limited worker process and answers
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. A chunk over ``CHUNK_LIMIT`` or an
upload over ``REPSCOPE_MAX_UPLOAD_BYTES`` gets 413 and its partial file is removed.
"""
from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

CHUNK_BYTES = 8 * 2**20  # what upload.js sends
CHUNK_LIMIT = 16 * 2**20  # what one request may carry
STALE_AFTER_S = 24 * 3600
_ID = re.compile(r"[A-Za-z0-9_-]{32}")


def _tmp_dir() -> Path:
    from compute.settings import upload_dir

    directory = upload_dir() / "tmp"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


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
    """The upload's state ``{"next": chunk index, "bytes": received}``, held exclusively."""
    import fcntl

    with open(state_path, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        state = json.load(handle)
        yield state
        handle.seek(0)
        handle.truncate()
        json.dump(state, handle)


def _error(status: int, message: str):
    return jsonify(ok=False, error=message), status


def _too_large(upload_id: str, limit: int, what: str):
    _discard(upload_id)
    return _error(413, f"the {what} is larger than the {limit} byte limit; the partial upload was removed")


def blueprint() -> Blueprint:
    """The upload routes, to mount under the app's URL prefix."""
    routes = Blueprint("uploads", __name__)

    @routes.post("/start")
    def start():
        tmp = _tmp_dir()
        for old in tmp.iterdir():  # abandoned uploads
            with contextlib.suppress(FileNotFoundError):
                if old.stat().st_mtime < time.time() - STALE_AFTER_S:
                    old.unlink()
        upload_id = secrets.token_urlsafe(24)
        (tmp / f"{upload_id}.part").touch(mode=0o600)
        (tmp / f"{upload_id}.json").write_text(json.dumps({"next": 0, "bytes": 0}))
        return jsonify(ok=True, upload_id=upload_id, chunk_bytes=CHUNK_BYTES, max_bytes=_max_bytes())

    @routes.post("/<upload_id>/<int:index>")
    def chunk(upload_id: str, index: int):
        try:
            part, state_path = _paths(upload_id)
        except KeyError:
            return _error(404, "unknown upload id; start the upload again")
        request.max_content_length = CHUNK_LIMIT
        limit = _max_bytes()
        with _locked(state_path) as state:
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
            with open(part, "ab") as handle:
                handle.write(data)
            state["next"], state["bytes"] = index + 1, state["bytes"] + len(data)
        return jsonify(ok=True, received=state["bytes"])

    @routes.post("/<upload_id>/finish")
    def finish(upload_id: str):
        from compute.sources.stimulus_names import UnknownStimulusSet
        from compute.sources.stimulus_names import resolve as resolve_stimuli
        from compute.sources.uploads import UploadError, run_in_worker

        try:
            part, _ = _paths(upload_id)
        except KeyError:
            return _error(404, "unknown upload id; start the upload again")
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return _error(400, 'finish needs a JSON object {"filename", "kind", ...}')
        kind, filename = fields.get("kind"), str(fields.get("filename") or "")
        if kind == "checkpoint":
            arguments = {"architecture": fields.get("architecture"), "num_classes": fields.get("num_classes"),
                         "stimulus_set": fields.get("stimulus_set") or "digits", "name": fields.get("name")}
        elif kind == "reference":
            arguments = {"stimulus_set": fields.get("stimulus_set") or "digits", "name": fields.get("name")}
        else:
            arguments = {}
        try:
            if "stimulus_set" in arguments:  # a name of the registry, never a path: refused before any file is read
                resolve_stimuli(arguments["stimulus_set"])
            result = run_in_worker(kind, path=str(part), filename=filename, **arguments)
        except (UploadError, UnknownStimulusSet) as error:
            return _error(422, str(error))
        finally:
            _discard(upload_id)
        return jsonify(ok=True, **result)

    @routes.errorhandler(RequestEntityTooLarge)
    def too_large(_):
        return _error(413, f"a request may carry at most {CHUNK_LIMIT} bytes")

    return routes


def _max_bytes() -> int:
    from compute.settings import get_settings

    return get_settings().max_upload_bytes


def register_uploads(server: Flask, prefix: str = "/") -> None:
    """Mount the upload routes at ``<prefix>upload``."""
    server.register_blueprint(blueprint(), url_prefix=f"{prefix}upload")
