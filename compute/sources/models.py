"""Models: the registry (zoo, torchvision, uploads), safe weight loading, and layer listing.

A model's identity is the sha256 of its weights (:func:`weights_key`), never its file name.
Weights are read only as tensors: ``.safetensors``, or a ``.pt``/``.pth`` state_dict through
``torch.load(weights_only=True)``. TorchScript archives, whole pickled modules and anything
else are code, and are refused.

Registered (non-zoo) models live in ``<cache_dir>/models/registry.json``; uploaded weights are
kept as ``<cache_dir>/models/weights/<key>.safetensors``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ACCEPTED_FORMATS = (".safetensors, or .pt/.pth holding a state_dict saved with "
                    "torch.save(model.state_dict(), path)")
_MAX_LISTED = 10


@dataclass
class ModelInfo:
    """What the UI and the engine know of a model without loading it.

    ``architecture`` is a zoo architecture (``"mlp"``, ``"cnn"``) or ``"torchvision:<name>"``;
    ``accuracy``/``top5`` are fractions in [0, 1] on ``stimulus_set``, None when the model's
    outputs do not match its labels ("accuracy n/a").
    """

    name: str
    key: str
    architecture: str
    source: str  # "zoo", "torchvision" or "upload"
    tags: dict
    accuracy: float | None
    top5: float | None
    num_classes: int | None
    hparams: dict = field(default_factory=dict)
    stimulus_set: str | None = None
    train_accuracy: float | None = None
    weights: str | None = None  # path of the weights file, when there is one


@dataclass(frozen=True)
class LayerInfo:
    """One named module: ``kind`` its class name; ``default`` in the default selection;
    ``penultimate`` the layer whose output feeds the final classifier."""

    name: str
    kind: str
    default: bool
    penultimate: bool


# --- weights --------------------------------------------------------------------------------

def weights_key(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted tensor names, each with its dtype, shape and raw bytes."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"{path.name}: {why}. Accepted formats: {ACCEPTED_FORMATS}")


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} dict, unwrapping one level of {"state_dict"|"model"|...: {...}}."""
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise _refuse(path, f"holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise _refuse(path, f"entries that are not named tensors: {_listed(bad)}")
    return dict(obj)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a {name: tensor} dict on the CPU, executing no code from it.

    Raises ``ValueError`` (naming the file and the accepted formats) for TorchScript archives,
    whole pickled modules or custom objects, ``.pkl`` and any other format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise _refuse(path, f"is not a readable safetensors file ({error})") from None
    if suffix not in (".pt", ".pth"):
        raise _refuse(path, f"the format {suffix or '(no extension)'!r} is not accepted"
                      + (" (pickles can run code)" if suffix in (".pkl", ".pickle") else ""))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise _refuse(path, "is a TorchScript archive (torch.jit.save), which holds code and is refused; "
                          "save model.state_dict() instead")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message advises weights_only=False; ours must not: quote only the offending global.
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(error))
        if found is None:
            raise _refuse(path, "is not a readable torch checkpoint (not a pickle of tensors)") from None
        raise _refuse(path, f"holds Python objects other than tensors ({found.group(1)}; e.g. a whole "
                      "pickled module), which weights-only loading refused; save model.state_dict() "
                      "instead") from None
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        raise _refuse(path, f"is not a readable torch checkpoint ({error})") from None
    return _unwrap(obj, path)


def _listed(items) -> str:
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def validate_state_dict(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming every missing or extra key, shape or dtype mismatch, and
    tensor holding NaN or inf, so a wrong architecture or a broken checkpoint is told apart."""
    expected = module.state_dict()
    problems = []
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if extra:
        problems.append(f"unexpected keys: {_listed(extra)}")
    shapes = [f"{k} (expected {tuple(v.shape)}, got {tuple(state_dict[k].shape)})"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if shapes:
        problems.append(f"shape mismatches: {_listed(shapes)}")
    dtypes = [f"{k} (expected {v.dtype}, got {state_dict[k].dtype})"
              for k, v in expected.items() if k in state_dict and state_dict[k].dtype != v.dtype]
    if dtypes:
        problems.append(f"dtype mismatches: {_listed(dtypes)}")
    nonfinite = [k for k, v in state_dict.items()
                 if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        problems.append(f"NaN or inf values in: {_listed(nonfinite)}")
    if problems:
        raise ValueError("the weights do not fit the architecture " f"{type(module).__name__}: " + "; ".join(problems))


def load_weights(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Validate, load strictly, and return ``module`` in eval mode."""
    validate_state_dict(module, state_dict)
    module.load_state_dict(state_dict, strict=True)
    return module.eval()


# --- torchvision ----------------------------------------------------------------------------

def torchvision_architectures() -> list[str]:
    """Names of torchvision's image classification models (``torchvision.models.list_models``)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _tv_weights(arch: str):
    import torchvision

    if arch not in torchvision_architectures():
        raise ValueError(f"unknown torchvision classification model {arch!r}; see torchvision_architectures()")
    return torchvision.models.get_model_weights(arch).DEFAULT


def hub_weights_path(arch: str) -> Path:
    """Where torch hub keeps ``arch``'s default pretrained weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_tv_weights(arch).url)


def preprocessing(arch: str, pretrained: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The batch transform a torchvision model needs for stimuli in [0, 1] (N x C x H x W).

    Grayscale is repeated to 3 channels; pretrained weights add their own transforms (resize,
    centre crop, ImageNet normalisation).
    """
    transform = _tv_weights(arch).transforms() if pretrained else None

    def prepare(images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 4 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return transform(images) if transform is not None else images

    return prepare


def load_torchvision(arch: str, pretrained: bool = False, num_classes: int | None = None,
                     seed: int = 0, download: bool = False) -> nn.Module:
    """A torchvision classifier in eval mode, with its preprocessing as a forward pre-hook.

    ``pretrained`` loads the default weights from the torch hub cache only (``download=True``
    fetches them when missing); otherwise the weights are random, seeded by ``seed``, with
    ``num_classes`` outputs (default 1000). Layer names stay torchvision's.
    """
    import torchvision

    weights = _tv_weights(arch)
    if pretrained:
        categories = len(weights.meta.get("categories") or [])
        if num_classes is not None and num_classes != categories:
            raise ValueError(f"pretrained {arch} has {categories} classes, not num_classes={num_classes}; "
                             "use pretrained=False for another class count")
        path = hub_weights_path(arch)
        if not path.exists():
            if not download:
                raise FileNotFoundError(
                    f"pretrained weights for {arch} are not in the torch hub cache: looked for {path}. "
                    f"Download them once (torchvision.models.get_model({arch!r}, weights='DEFAULT') "
                    "or download=True), or set TORCH_HOME to a cache that has them")
            weights.get_state_dict(progress=True)
        torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None)
        load_weights(model, load_state_dict_file(path))
    else:
        torch.manual_seed(seed)
        kwargs = {"num_classes": num_classes} if num_classes is not None else {}
        if arch.startswith(("googlenet", "inception")):
            kwargs["aux_logits"], kwargs["init_weights"] = False, True
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    prepare = preprocessing(arch, pretrained)
    model.register_forward_pre_hook(lambda module, args: (prepare(args[0]), *args[1:]))
    return model.eval()


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


@contextlib.contextmanager
def _registry_lock():
    import fcntl

    directory = _models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".registry.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _split_arch(architecture: str) -> tuple[str, str]:
    """("zoo", "mlp") or ("torchvision", "resnet18") from "mlp" / "torchvision:resnet18" / "resnet18"."""
    from compute.sources import zoo

    if architecture.startswith("torchvision:"):
        return "torchvision", architecture.split(":", 1)[1]
    if architecture in zoo.ARCHITECTURES:
        return "zoo", architecture
    if architecture in torchvision_architectures():
        return "torchvision", architecture
    raise ValueError(f"unknown architecture {architecture!r}: use a zoo architecture "
                     f"({', '.join(sorted(zoo.ARCHITECTURES))}) or a torchvision name (torchvision_architectures())")


def _build(kind: str, arch: str, hparams: dict) -> nn.Module:
    """A fresh module to load uploaded weights into: zoo hparams, or torchvision's num_classes."""
    from compute.sources import zoo

    if kind == "zoo":
        return zoo.build_architecture(arch, **hparams)
    return load_torchvision(arch, num_classes=hparams.get("num_classes"))


def model_accuracy(model: nn.Module, stimuli) -> tuple[float | None, float | None]:
    """(top-1, top-5) of ``model`` on a StimulusSet; (None, None) when its outputs do not match
    the set's classes (the model is still usable, shown as "accuracy n/a")."""
    from compute.sources.activations import predict
    from compute.sources.zoo import topk_accuracy

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

    ``architecture``: a zoo architecture with ``hparams`` (``"cnn"``, ``{"channels": 8, ...}``)
    or a torchvision name (``"resnet18"`` or ``"torchvision:resnet18"``). ``weights``: a
    checkpoint path or a state_dict (source "upload"; stored as safetensors under the cache),
    or None for torchvision models: ``pretrained`` hub-cache weights or a random init from
    ``seed`` (source "torchvision"). With ``stimulus_set`` the top-1/top-5 accuracy on it is
    recorded. Nothing is written unless every check passes; names must be unique.
    """
    from safetensors.torch import save_file

    kind, arch = _split_arch(architecture)
    hparams = dict(hparams or {})
    if not name or not isinstance(name, str):
        raise ValueError("name must be a non-empty string")
    if kind == "zoo" and weights is None:
        raise ValueError(f"a zoo architecture ({arch}) needs weights: a checkpoint path or a state_dict")
    if weights is not None:
        state = load_state_dict_file(weights) if isinstance(weights, (str, Path)) else dict(weights)
        if num_classes is not None:
            hparams["num_classes"] = int(num_classes)
        model = load_weights(_build(kind, arch, hparams), state)
        source = "upload"
    else:
        model = load_torchvision(arch, pretrained=pretrained, num_classes=num_classes, seed=seed)
        source, hparams = "torchvision", {"pretrained": bool(pretrained), "seed": int(seed),
                                          "num_classes": num_classes}
    key = weights_key(model.state_dict())
    accuracy = top5 = None
    classes = _num_classes(model)
    if stimulus_set is not None:
        from compute.sources.stimuli import get_stimulus_set

        accuracy, top5 = model_accuracy(model, get_stimulus_set(stimulus_set))
    architecture = arch if kind == "zoo" else f"torchvision:{arch}"
    with _registry_lock():
        entries = _read_registry()
        taken = {e["name"] for e in entries} | {m.name for m in _zoo_infos(None)}
        if name in taken:
            raise ValueError(f"a model named {name!r} exists already; choose another name")
        file = None
        if source == "upload":
            weights_dir = _models_dir() / "weights"
            weights_dir.mkdir(parents=True, exist_ok=True)
            file = weights_dir / f"{key}.safetensors"
            if not file.exists():
                tmp = weights_dir / f".{key}.{os.getpid()}.tmp"
                save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
                os.replace(tmp, file)
        info = ModelInfo(name=name, key=key, architecture=architecture, source=source, tags=dict(tags or {}),
                         accuracy=accuracy, top5=top5, num_classes=classes, hparams=hparams,
                         stimulus_set=stimulus_set, weights=str(file) if file else None)
        entries.append(asdict(info))
        _write_atomic(_registry_path(), json.dumps({"models": entries}, indent=1).encode())
    return info


def _num_classes(model: nn.Module) -> int | None:
    final = _final_classifier(model)
    if final is None:
        return None
    module = dict(model.named_modules())[final]
    return getattr(module, "out_features", None) or getattr(module, "out_channels", None)


def _zoo_infos(dataset: str | None) -> list[ModelInfo]:
    """Zoo models of ``dataset``, or of every zoo (None); the digits zoo is built when missing,
    the others only listed when built (``python -m compute.zoo build --dataset ...``)."""
    from compute.sources import zoo

    if dataset is not None and dataset not in zoo.DATASETS:
        return []
    groups = [zoo.ensure_zoo("digits", progress=False) if d == "digits" else zoo.load_manifest(zoo.zoo_path(d)) or []
              for d in (zoo.DATASETS if dataset is None else (dataset,))]
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


def load_model(name_or_key: str | ModelInfo, device: str | torch.device = "cpu") -> nn.Module:
    """The model, weights checked against its key, in eval mode on ``device``."""
    info = name_or_key if isinstance(name_or_key, ModelInfo) else get_model_info(name_or_key)
    kind, arch = _split_arch(info.architecture)
    if info.source == "torchvision":
        model = load_torchvision(arch, pretrained=bool(info.hparams.get("pretrained")),
                                 num_classes=info.hparams.get("num_classes"), seed=int(info.hparams.get("seed", 0)))
    else:
        model = load_weights(_build(kind, arch, info.hparams), load_state_dict_file(info.weights))
    if weights_key(model.state_dict()) != info.key:
        raise ValueError(f"the weights of {info.name!r} changed on disk (their hash differs from the "
                         "registered key); rebuild the zoo or register the model again")
    from compute.measures.validate import resolve_device

    return model.to(resolve_device(device)).eval()


# --- layers -----------------------------------------------------------------------------------

_PASSIVE = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten)


def _final_classifier(model: nn.Module) -> str | None:
    """The last Linear leaf in registration order (the last Conv2d when there is none, as in
    squeezenet); auxiliary heads come earlier in torchvision, so they are never chosen."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    for kinds in ((nn.Linear,), (nn.Conv2d,)):
        found = [n for n, m in leaves if isinstance(m, kinds)]
        if found:
            return found[-1]
    return None


def _penultimate(model: nn.Module, final: str | None) -> str | None:
    """The leaf before the final classifier in registration order, skipping dropout/identity/
    flatten; raised to its enclosing block when that block ends with it but is no Sequential
    (squeezenet's Fire concatenates two branches: its output, not the last branch, is the input)."""
    if final is None:
        return None
    modules = dict(model.named_modules())
    leaves = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
    found = next((n for n in reversed(leaves[:leaves.index(final)]) if not isinstance(modules[n], _PASSIVE)), None)
    while found and "." in found:
        parent = found.rsplit(".", 1)[0]
        last_leaf = [n for n in leaves if n.startswith(parent + ".")][-1]
        if (isinstance(modules[parent], nn.Sequential) or last_leaf != found
                or final.startswith(parent + ".")):
            break
        found = parent
    return found


_BODIES = ("features", "trunk_output", "encoder", "layers", "blocks", "stages")


def _default_blocks(model: nn.Module, final: str | None) -> list[str]:
    """Top-level stages: descend while one container holds the network, then take its
    sub-containers (auxiliary heads and the classifier's container left out), expanding a body
    container (regnet's trunk_output, maxvit's blocks) beside a stem; when those are all leaves
    (vgg, alexnet), take the pooling layers that end each stage."""

    def blocks_of(prefix: str, container: nn.Module) -> list[tuple[str, nn.Module]]:
        return [(prefix + n, m) for n, m in container.named_children()
                if any(True for _ in m.children()) and "aux" not in n.lower()
                and not (final and (prefix + n == final or final.startswith(prefix + n + ".")))]

    prefix, container = "", model
    while True:
        blocks = blocks_of(prefix, container)
        if len(blocks) == 1:
            prefix, container = blocks[0][0] + ".", blocks[0][1]
            continue
        if blocks:
            bodies = [b for b in blocks if b[0].rsplit(".", 1)[-1] in _BODIES]
            if len(bodies) == 1 and len(blocks_of(bodies[0][0] + ".", bodies[0][1])) > 1:
                inner = [n for n, _ in blocks_of(bodies[0][0] + ".", bodies[0][1])]
                return [i for n, _ in blocks for i in (inner if n == bodies[0][0] else [n])]
            return [n for n, _ in blocks]
        pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
        return [prefix + n for n, m in container.named_children() if isinstance(m, pools)]


def list_layers(model: nn.Module) -> list[LayerInfo]:
    """Every named module (leaves and blocks) in registration order, with a default selection
    (the zoo's activation layers after each block; torchvision's stages) and the penultimate
    layer (whose output feeds the final classifier) marked and selected."""
    final = _final_classifier(model)
    penultimate = _penultimate(model, final)
    declared = getattr(model, "default_layers", None)
    defaults = set(declared) if declared is not None else set(_default_blocks(model, final))
    if penultimate:
        defaults.add(penultimate)
    return [LayerInfo(name, type(module).__name__, name in defaults, name == penultimate)
            for name, module in model.named_modules() if name]


def resolve_layer(model: nn.Module, layer: str) -> str:
    """The module name ``layer`` stands for: itself, or for ``"penultimate"`` the layer whose
    output feeds the final classifier."""
    if layer != "penultimate":
        return layer
    return next(info.name for info in list_layers(model) if info.penultimate)
