"""Precomputed activations (or brain data) as a model: kept in a stimulus set's order and
registered with ``source: activations``, so every view uses them like a network.

:func:`register_activations` reads a file or a dict of arrays (:mod:`compute.sources.activation_files`
says what they hold), checks it against the stimulus set and stores it canonically: float32, in
the set's order, every layer (R, N, ...) with its repeats kept (R = 1 when measured once), the
logits beside them, as ``<cache>/models/activations/<key>.safetensors``. ``key`` is the sha256 of
that content and the set's content key. The model's ``hparams`` list each layer's shape (N, ...)
and repeats; its layers are the file's, in order, the first 8 and the last selected by default,
the last being the "penultimate" layer (the file's deepest layer, or IT among ROIs). Views see the
mean over repeats; :func:`repeated_activations` gives every repeat (for cross-validated RDMs).
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np

from compute.errors import Cancelled
from compute.sources.activation_files import Activations, FileContent, check_activations, read_activation_file
from compute.sources.models import ModelInfo, add_model, get_model_info, list_models, model_file
from compute.sources.representations import NoScores, resolve

SOURCE = "activations"
MAX_DEFAULT_LAYERS = 8
_LOGITS = "logits"  # reserved in the files, so never a layer's name
_TAG = re.compile(r"[\w.-]{1,80}")


def pooled(array: np.ndarray, pooling: str = "none") -> np.ndarray:
    """One layer's activations (N, ...) pooled as :func:`compute.sources.activations.extract`
    pools a module's output: flattened, averaged over spatial axes (or tokens), or projected with
    the same fixed matrix, so a file and the network it came from agree. float32 N x D."""
    import torch

    from compute.sources.activations import _reduce, parse_pooling, projection_matrix

    kind, k = parse_pooling(pooling)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    width = int(np.prod(tensor.shape[1:]))
    if kind == "avg" or (kind == "proj" and width > k):
        tensor = _reduce(tensor, kind)
        if kind == "proj":
            tensor = tensor @ projection_matrix(width, k)
    else:
        tensor = tensor.reshape(tensor.shape[0], -1)
    return np.ascontiguousarray(tensor.numpy(), dtype=np.float32)


def pooled_width(shape, pooling: str) -> int:
    """Width D of :func:`pooled` for a layer of ``shape`` (N, ...), from the shape alone."""
    from compute.sources.activations import parse_pooling

    kind, k = parse_pooling(pooling)
    flat = int(np.prod(shape[1:], dtype=np.int64))
    if kind == "avg" and len(shape) >= 3:
        return int(shape[1] if len(shape) >= 4 else shape[-1])
    return min(flat, k) if kind == "proj" else flat


# --- the representation -------------------------------------------------------------------------

class ActivationsRepresentation:
    """A registered activations file: layers and widths from its ``hparams``, arrays read from
    its file one layer at a time, only for the stimulus set it was registered for."""

    def __init__(self, info: ModelInfo):
        self.info = info
        self._shapes = info.hparams["layers"]

    def layers(self):
        from compute.sources.layers import LayerInfo

        names = list(self._shapes)
        chosen = set(names[:MAX_DEFAULT_LAYERS]) | {names[-1]}

        def kind(name):
            entry = self._shapes[name]
            shape = "×".join(str(d) for d in entry["shape"][1:])
            return shape if entry["repeats"] == 1 else f"{entry['repeats']} repeats of {shape}"

        return [LayerInfo(name, kind(name), name in chosen, name == names[-1]) for name in names]

    def _check(self, stimuli) -> None:
        if stimuli.key != self.info.hparams["stimulus_key"]:
            raise ValueError(f"model {self.info.name!r} holds activations for stimulus set {self.info.stimulus_set!r}, "
                             f"not for {stimuli.name!r} (its images or order differ); choose "
                             f"{self.info.stimulus_set!r} in the selection")

    def _known(self, layers) -> list[str]:
        unknown = [name for name in layers if name not in self._shapes]
        if unknown:
            raise ValueError(f"model {self.info.name!r} has no layers {', '.join(map(repr, unknown))}; its layers: "
                             f"{', '.join(self._shapes)}")
        return list(dict.fromkeys(layers))

    def read(self, layers) -> dict[str, np.ndarray]:
        """{layer: float32 (R, N, ...)} as stored, every repeat."""
        from safetensors import safe_open

        with safe_open(self.info.weights, framework="numpy") as handle:
            return {name: handle.get_tensor(name) for name in self._known(layers)}

    def extract(self, stimuli, layers, pooling="none", *, device=None, progress=None, should_stop=None):
        self._check(stimuli)
        names = self._known(layers)
        out = {}
        for done, name in enumerate(names, 1):
            if should_stop is not None and should_stop():
                raise Cancelled(f"reading activations cancelled after {done - 1} of {len(names)} layers")
            (data,) = self.read([name]).values()
            mean = data[0] if data.shape[0] == 1 else data.mean(axis=0, dtype=np.float64).astype(np.float32)
            out[name] = pooled(mean, pooling)
            if progress is not None:
                progress(done / len(names))
        return {name: out[name] for name in layers}

    def width(self, stimuli, layer, pooling):
        return pooled_width(self._shapes[self._known([layer])[0]]["shape"], pooling)

    def scores(self, stimuli):
        self._check(stimuli)
        if not self.info.num_classes:
            raise NoScores(f"model {self.info.name!r} has no output scores: its file held no 'logits' (N, C) array")
        from safetensors import safe_open

        with safe_open(self.info.weights, framework="numpy") as handle:
            return handle.get_tensor(_LOGITS)


def open_activations(info: ModelInfo, device=None) -> ActivationsRepresentation:
    """The opener of ``source: activations`` (``compute.sources.representations.OPENERS``)."""
    return ActivationsRepresentation(info)


def repeated_activations(name: str, layer: str) -> np.ndarray:
    """Every repeated measurement of a layer of a registered activations model, float32
    (R, N, D) in its stimulus set's order, trailing axes flattened (R = 1 when measured once)."""
    info = get_model_info(name)
    if info.source != SOURCE:
        raise ValueError(f"model {name!r} is not precomputed activations (its source is {info.source!r}); "
                         "only those have repeated measurements")
    model = open_activations(info)
    (data,) = model.read([resolve(model, layer)]).values()
    return data.reshape(data.shape[0], data.shape[1], -1)


# --- registering ---------------------------------------------------------------------------------

def _content(source) -> FileContent:
    if isinstance(source, FileContent):
        return source
    if isinstance(source, (str, Path)):
        from compute.sources.uploads import check_filename

        check_filename(SOURCE, Path(source).name)
        return read_activation_file(source)
    if not isinstance(source, dict):
        raise TypeError("source must be a file path or a dict of arrays (layer name -> array)")
    arrays = {}
    for name, value in source.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"layer names must be non-empty strings, got {name!r}")
        arrays[name] = np.asarray(value)
        if arrays[name].dtype.hasobject:
            raise ValueError(f"{name!r} holds Python objects; give numbers (and strings as str)")
    return FileContent(arrays)


def content_key(activations: Activations, stimuli) -> str:
    """sha256 of the stimulus set's content key, the layers' names, shapes and float32 values in
    order, and the logits."""
    digest = hashlib.sha256()
    shapes = [[name, list(layer.shape)] for name, layer in activations.layers.items()]
    logits = None if activations.logits is None else list(activations.logits.shape)
    digest.update(json.dumps({"stimuli": stimuli.key, "layers": shapes, "logits": logits}).encode())
    for array in [*activations.layers.values(), *([] if activations.logits is None else [activations.logits])]:
        digest.update(np.ascontiguousarray(array))  # the buffer itself: no copy of a large layer
    return digest.hexdigest()


def _accuracy(logits, stimuli) -> tuple[float | None, float | None]:
    if logits is None or logits.shape[1] != stimuli.num_classes:
        return None, None
    import torch

    from compute.measures.confusion import topk_accuracy

    scores = torch.from_numpy(logits)
    return topk_accuracy(scores, stimuli.labels, 1), topk_accuracy(scores, stimuli.labels, 5)


def _tags(tags: dict | None, brain: bool) -> dict:
    tags = dict(tags or {})
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG.fullmatch(key) or not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"tag {key!r}: {value!r} is not a tag: names are letters, digits, '-', '_' or '.', "
                             "values text or numbers")
    return {**tags, "kind": "brain"} if brain else tags


def register_activations(name: str, source, stimulus_set: str, *, brain: bool = False, tags: dict | None = None,
                         repeated: bool = False) -> ModelInfo:
    """Check activations against ``stimulus_set`` (a registry name), store them and register
    them as the model ``name``; return its ModelInfo.

    ``source``: an ``.npz``/``.h5``/``.hdf5``/``.safetensors`` path or a dict {layer: array},
    with the optional reserved entries ``stimulus_ids``, ``labels``, ``logits`` and ``repeated``
    (:mod:`compute.sources.activation_files`). ``repeated=True``: every layer is (R, N, ...).
    ``brain`` tags the model ``kind: brain``; ``tags`` are kept (``series``/``step`` place it in
    a checkpoint series of the Training view). Constant rows are warned about
    (``UserWarning``); every other problem raises ``ValueError`` naming the layer and rows.
    """
    info, notes = _register(name, source, stimulus_set, brain=brain, tags=tags, repeated=repeated)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return info


def _register(name, source, stimulus_set, *, brain=False, tags=None, repeated=False, stimuli=None):
    """(ModelInfo, warnings) of :func:`register_activations`."""
    from safetensors.numpy import save_file

    from compute.sources.stimuli import get_stimulus_set

    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    tags = _tags(tags, brain)
    stimuli = stimuli or get_stimulus_set(stimulus_set)
    activations = check_activations(_content(source), stimuli, repeats=bool(repeated))
    key = content_key(activations, stimuli)
    file = model_file(SOURCE, key, ".safetensors")
    accuracy, top5 = _accuracy(activations.logits, stimuli)
    hparams = {"layers": {layer: {"shape": list(array.shape[1:]), "repeats": int(array.shape[0])}
                          for layer, array in activations.layers.items()},
               "stimulus_key": stimuli.key}

    def write(path: Path) -> None:
        tensors = dict(activations.layers)
        if activations.logits is not None:
            tensors[_LOGITS] = activations.logits
        save_file(tensors, str(path), metadata={"layers": ",".join(activations.layers)})

    info = ModelInfo(name=name, key=key, architecture=SOURCE, source=SOURCE, tags=tags, accuracy=accuracy,
                     top5=top5, num_classes=None if activations.logits is None else int(activations.logits.shape[1]),
                     hparams=hparams, stimulus_set=stimuli.name, weights=str(file))
    return add_model(info, write), activations.warnings


# --- the upload --------------------------------------------------------------------------------

def _upload_tags(series, step) -> dict:
    """The Training view's tags from the form: ``series`` a name, ``step`` a whole number >= 0."""
    if series in (None, ""):
        if step not in (None, ""):
            raise ValueError("a training step needs its series: name the series the checkpoint belongs to")
        return {}
    if not isinstance(series, str) or not _TAG.fullmatch(series):
        raise ValueError("series must be a name of letters, digits, '-', '_' or '.' (at most 80)")
    text = str(step) if isinstance(step, int) and not isinstance(step, bool) else step
    if not isinstance(text, str) or not text.isdigit() or not 0 <= int(text) < 10**12:
        raise ValueError(f"step must be a whole number >= 0 (the checkpoint's training step), got {step!r}")
    return {"series": series, "step": int(text)}


def accept_activations(path: str | Path, filename: str, stimulus_set: str = "digits", name: str | None = None,
                       brain: bool = False, repeated: bool = False, series: str | None = None,
                       step: str | int | None = None) -> dict:
    """Check an uploaded activations file for ``stimulus_set`` and register it; runs in the
    upload worker. ``filename`` chooses the format and the default name. Returns ``{"model",
    "key", "architecture", "accuracy", "layers", "warnings"}``."""
    from compute.sources.stimuli import stimulus_set_named
    from compute.sources.uploads import check_filename, display_name, file_sha256, model_name

    suffix = check_filename(SOURCE, filename)
    for flag, value in (("brain", brain), ("repeated", repeated)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag} must be true or false, got {value!r}")
    tags = _upload_tags(series, step)
    stimuli = stimulus_set_named(stimulus_set)
    digest = file_sha256(Path(path))
    content = read_activation_file(path, suffix, display_name(filename))
    display = model_name(filename, name)
    if display in {m.name for m in list_models(None)}:
        display = f"{display}-{digest[:8]}"
    info, notes = _register(display, content, stimuli.name, brain=brain, repeated=repeated,
                            tags={"uploaded": digest[:12], **tags}, stimuli=stimuli)
    return {"model": info.name, "key": info.key, "architecture": info.architecture, "accuracy": info.accuracy,
            "layers": list(info.hparams["layers"]), "warnings": notes}
