"""The model registry: every model the app knows (zoo, networks built by name, uploads) and loading one.

A model's identity is the sha256 of its weights (:func:`compute.sources.weights.weights_key`),
never its file name. Registered (non-zoo) models live in ``<cache_dir>/models/registry.json``;
uploaded weights are kept as ``<cache_dir>/models/weights/<key>.safetensors``. Listing models
reads only JSON manifests: torch is imported by the functions that build or load a model.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compute.settings import private_dir
from compute.sources.files import exclusive_lock, write_atomic
from compute.sources.architectures import architecture_name, build_module, split_architecture
from compute.sources.weights import load_state_dict_file, load_weights, weights_key
from compute.sources.zoo_cache import ensure_zoo
from compute.sources.zoo_manifest import DATASETS, load_manifest, zoo_path

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class ModelInfo:
    """What the UI and the engine know of a model without loading it.

    ``architecture`` is a registry name (:mod:`compute.sources.architectures`): a zoo
    architecture (``"mlp"``, ``"cnn"``), ``"torchvision:<name>"``, ``"lab:<name>"``, ...;
    ``accuracy``/``top5`` are fractions in [0, 1] on ``stimulus_set``, None when the model's
    outputs do not match its labels ("accuracy n/a").
    """

    name: str
    key: str
    architecture: str
    source: str  # "zoo", "upload", an architecture family built by name ("torchvision", "lab", "timm",
    # "hf") or another opener's (compute.sources.representations)
    tags: dict
    accuracy: float | None
    top5: float | None
    num_classes: int | None
    hparams: dict = field(default_factory=dict)
    stimulus_set: str | None = None
    train_accuracy: float | None = None
    weights: str | None = None  # path of the model's file (weights, graph, activations), when there is one



# --- the registry -----------------------------------------------------------------------------

def _models_dir() -> Path:
    from compute.settings import get_settings

    return get_settings().cache_dir / "models"


def _registry_path() -> Path:
    return _models_dir() / "registry.json"


def _read_registry() -> list[dict]:
    try:
        return json.loads(_registry_path().read_text())["models"]
    except FileNotFoundError:
        return []


def model_accuracy(model: nn.Module, stimuli) -> tuple[float | None, float | None]:
    """(top-1, top-5) of ``model`` on a StimulusSet; (None, None) when its outputs do not match
    the set's classes (the model is still usable, shown as "accuracy n/a")."""
    import torch

    from compute.measures.confusion import topk_accuracy
    from compute.sources.activations import predict

    try:
        scores = predict(model, stimuli.images)
    except RuntimeError:
        return None, None
    if scores.ndim != 2 or scores.shape[1] != stimuli.num_classes:
        return None, None
    scores = torch.from_numpy(scores)
    return topk_accuracy(scores, stimuli.labels, 1), topk_accuracy(scores, stimuli.labels, 5)


def register_model(name: str, architecture: str, *, weights: str | Path | dict | None = None,
                   hparams: dict | None = None, num_classes: int | None = None, pretrained: bool = False,
                   seed: int = 0, stimulus_set: str | None = None, tags: dict | None = None) -> ModelInfo:
    """Validate a model and add it to the registry; return its ModelInfo.

    ``architecture``: a registry name (:mod:`compute.sources.architectures`): a zoo architecture
    with ``hparams`` (``"cnn"``, ``{"channels": 8, ...}``), a torchvision name (``"resnet18"`` or
    ``"torchvision:resnet18"``), ``"lab:<name>"``, ``"timm:<name>"`` or ``"hf:<name>"`` (their
    ``hparams`` are the family's). ``weights``: a checkpoint path or a state_dict (source
    "upload"; stored as safetensors under the cache), or None for any architecture but the
    zoo's: ``pretrained`` weights from the local caches or a random init from ``seed`` (source:
    the family, e.g. "torchvision", "timm"). With ``stimulus_set`` the top-1/top-5 accuracy on it
    is recorded. Nothing is written unless every check passes; names must be unique.
    """
    from safetensors.torch import save_file

    kind, arch = split_architecture(architecture)
    hparams = dict(hparams or {})
    if not name or not isinstance(name, str):
        raise ValueError("name must be a non-empty string")
    if kind == "zoo" and weights is None:
        raise ValueError(f"a zoo architecture ({arch}) needs weights: a checkpoint path or a state_dict")
    if weights is not None:
        state = load_state_dict_file(weights) if isinstance(weights, (str, Path)) else dict(weights)
        if num_classes is not None:
            hparams["num_classes"] = int(num_classes)
        model = load_weights(build_module(kind, arch, hparams), state)
        source = "upload"
    else:
        hparams = {**hparams, "pretrained": bool(pretrained), "seed": int(seed), "num_classes": num_classes}
        model = build_module(kind, arch, hparams)
        source = kind
    key = weights_key(model.state_dict())
    accuracy = top5 = None
    classes = _num_classes(model)
    if stimulus_set is not None:
        from compute.sources.stimuli import get_stimulus_set

        accuracy, top5 = model_accuracy(model, get_stimulus_set(stimulus_set))
    architecture = architecture_name(kind, arch)
    file = None
    if source == "upload":
        file = model_file("weights", key, ".safetensors")

    def keep_weights(path: Path) -> None:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    info = ModelInfo(name=name, key=key, architecture=architecture, source=source, tags=dict(tags or {}),
                     accuracy=accuracy, top5=top5, num_classes=classes, hparams=hparams,
                     stimulus_set=stimulus_set, weights=str(file) if file else None)
    return add_model(info, keep_weights if file else None)


def model_file(directory: str, key: str, suffix: str) -> Path:
    """Where a registered model's file lives: ``<cache>/models/<directory>/<key><suffix>``."""
    return private_dir(_models_dir() / directory) / f"{key}{suffix}"


def add_model(info: ModelInfo, write: Callable[[Path], None] | None = None) -> ModelInfo:
    """Add ``info`` to the registry under the registry's lock, refusing a name that is taken;
    ``write(path)`` first writes the model's file to ``info.weights`` (atomically, private to
    this user) unless a file of that content key is there already."""
    with _registry_lock():
        entries = _read_registry()
        _check_free(info.name, entries)
        if write is not None and not Path(info.weights).exists():
            file = Path(info.weights)
            tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
            write(tmp)
            os.chmod(tmp, 0o600)  # a user's model
            os.replace(tmp, file)
        entries.append(asdict(info))
        _write_registry(entries)
    return info


# A registered model's name, as uploads make them (compute.sources.uploads.model_name) and a
# rename must give: word characters, '.' and '-', at most 80.
NAME_PATTERN = re.compile(r"[\w.-]{1,80}", re.ASCII)
# The sources whose files a user sent (their own colour ring in the model map).
UPLOADED_SOURCES = ("upload", "onnx", "activations")


def _registry_lock():
    return exclusive_lock(private_dir(_models_dir()) / ".registry.lock")


def _write_registry(entries: list[dict]) -> None:
    data = json.dumps({"models": entries}, indent=1).encode()
    write_atomic(_registry_path(), lambda handle: handle.write(data))


def _check_free(name: str, entries: list[dict]) -> None:
    if name in {e["name"] for e in entries} | {m.name for m in _zoo_infos(None)}:
        raise ValueError(f"a model named {name!r} exists already; choose another name")


def _registered(name: str, entries: list[dict], doing: str) -> int:
    """The position of the registered model ``name``; ``ValueError`` for a zoo model or none."""
    for position, entry in enumerate(entries):
        if entry["name"] == name:
            return position
    if isinstance(name, str) and name in {m.name for m in _zoo_infos(None)}:
        raise ValueError(f"{name!r} is a zoo model: the zoo's models cannot be {doing} "
                         "(only uploaded or registered models can)")
    raise ValueError(f"no registered model named {str(name)[:80]!r}")


def aliases(key: str) -> list[str]:
    """Every name that the model of weights ``key`` is known by (uploads of the same content
    under new names keep them all), zoo names first."""
    return [m.name for m in list_models(None) if m.key == key]


def rename_model(name: str, new_name: str) -> ModelInfo:
    """Give the registered model ``name`` the name ``new_name`` (:data:`NAME_PATTERN`, not taken),
    under the registry's lock. Its weights key stays, so every cached artifact stays valid."""
    if not isinstance(new_name, str) or not NAME_PATTERN.fullmatch(new_name):
        raise ValueError("a model's name is 1 to 80 letters, digits, '_', '.' or '-'")
    with _registry_lock():
        entries = _read_registry()
        position = _registered(name, entries, "renamed")
        if new_name != name:
            _check_free(new_name, entries)
        entries[position] = {**entries[position], "name": new_name}
        _write_registry(entries)
    return ModelInfo(**entries[position])


def delete_model(name: str) -> ModelInfo:
    """Remove the registered model ``name`` from the registry, under its lock, with its file
    under the registry's folder unless another entry (an alias) uses it. Cached artifacts are
    content-addressed and stay (those of other models, and this one's until the store evicts them)."""
    with _registry_lock():
        entries = _read_registry()
        removed = ModelInfo(**entries.pop(_registered(name, entries, "deleted")))
        _write_registry(entries)
        file = Path(removed.weights) if removed.weights else None
        if (file is not None and file.is_relative_to(_models_dir())
                and all(e.get("weights") != removed.weights for e in entries)):
            file.unlink(missing_ok=True)
    return removed


def _num_classes(model: nn.Module) -> int | None:
    from compute.sources.layers import final_classifier

    final = final_classifier(model)
    if final is None:
        return None
    module = dict(model.named_modules())[final]
    return getattr(module, "out_features", None) or getattr(module, "out_channels", None)


def _zoo_infos(dataset: str | None) -> list[ModelInfo]:
    """Zoo models of ``dataset``, or of every zoo (None); the digits zoo is built when missing,
    the others only listed when built (``python -m compute.zoo build --dataset ...``)."""
    if dataset is not None and dataset not in DATASETS:
        return []
    groups = [ensure_zoo("digits", progress=False) if d == "digits" else load_manifest(zoo_path(d)) or []
              for d in (DATASETS if dataset is None else (dataset,))]
    return [ModelInfo(name=e.name, key=e.key, architecture=e.architecture, source="zoo", tags=dict(e.tags),
                      accuracy=e.accuracy, top5=e.top5, num_classes=e.num_classes, hparams=dict(e.hparams),
                      stimulus_set=e.dataset, train_accuracy=e.train_accuracy, weights=str(e.path))
            for entries in groups for e in entries]


def list_models(stimulus_set: str | None = "digits") -> list[ModelInfo]:
    """The zoo models trained on ``stimulus_set`` plus the registered ones that fit it
    (registered for that set, or for none); ``None`` lists every model known."""
    registered = [ModelInfo(**e) for e in _read_registry()]
    if stimulus_set is None:
        return _zoo_infos(None) + registered
    registered = [m for m in registered if m.stimulus_set in (None, stimulus_set)]
    return _zoo_infos(stimulus_set.partition("?")[0]) + registered  # "mnist?n_per_class=20": mnist's zoo


def get_model_info(name_or_key: str) -> ModelInfo:
    """The model with that name or weights key; ``KeyError`` when there is none."""
    for info in _zoo_infos(None) + [ModelInfo(**e) for e in _read_registry()]:
        if name_or_key in (info.name, info.key):
            return info
    raise KeyError(f"no model named or keyed {name_or_key!r}; see list_models()")


def load_model(name_or_key: str | ModelInfo, device: str | torch.device = "cpu", shared: dict | None = None) -> nn.Module:
    """The model, weights checked against its key, in eval mode on ``device``.

    ``shared`` (a dict the caller keeps between calls) lends a module on: a model whose weights
    are a file (the zoo, uploads) loads them into the module the previous such model of the
    same architecture and hyperparameters was built as, instead of building one, and leaves its
    own there (one module at most). A module so lent is the last model's only until the next
    call (e.g. 112 zoo models of 8 architectures: 8 modules built, not 112)."""
    info = name_or_key if isinstance(name_or_key, ModelInfo) else get_model_info(name_or_key)
    from_file = info.source in ("zoo", "upload")
    signature = (info.architecture, json.dumps(info.hparams, sort_keys=True))
    lent = shared.get(signature) if shared is not None and from_file else None
    model = lent if lent is not None else build_module(*split_architecture(info.architecture), info.hparams)
    if from_file:
        model = load_weights(model, load_state_dict_file(info.weights))
        if shared is not None:
            shared.clear()
            shared[signature] = model
    if weights_key(model.state_dict()) != info.key:
        raise ValueError(f"the weights of {info.name!r} changed on disk (their hash differs from the "
                         "registered key); rebuild the zoo or register the model again")
    from compute.measures.validate import resolve_device

    return model.to(resolve_device(device)).eval()

