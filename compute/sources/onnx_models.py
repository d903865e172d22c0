"""ONNX models: registered from an uploaded ``.onnx`` and run with onnxruntime (source ``"onnx"``).

The graph is checked first (:func:`compute.sources.onnx_graphs.check_graph`: no custom operator
domains, no external data, one image input); nothing of the file is ever run as Python. Layers are
the graph's intermediate tensors; to extract some, a copy of the graph lists them as outputs and
one onnxruntime session serves every layer per batch, reduced with the torch models' pooling
(:func:`compute.sources.activations.reduce_output`), so an export gives the torch model's numbers.

The stimuli (float32 in [0, 1], N x C x H x W) are prepared as the upload said (``hparams``):
channels converted (grey repeated to 3, RGB averaged to 1), resized (bilinear) to ``size``, then
``(x - mean) / std`` per channel. The defaults take channels and size from the graph's input
(the stimuli's own where the graph leaves them open) and mean 0, std 1: the pixels in [0, 1] as
RepScope's sets hold them, which is what the zoo and random-init torchvision models see. A model
trained on ImageNet-normalised input needs mean 0.485,0.456,0.406 and std 0.229,0.224,0.225.
"""
from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compute.errors import Cancelled
from compute.sources.models import ModelInfo, add_model, model_file
from compute.sources.onnx_graphs import ImageInput, check_graph, image_input, infer, list_graph_layers
from compute.sources.representations import NoScores

if TYPE_CHECKING:
    import onnx
    import torch

    from compute.sources.layers import LayerInfo

MAX_SIDE = 4096
BATCH = 256


def read_onnx(data: bytes, shown: str) -> onnx.ModelProto:
    """The checked graph from a file's bytes (external data never loaded); ``ValueError`` naming
    ``shown`` for anything that is not a model RepScope may run."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{shown}: not an ONNX model (the protobuf does not parse: {error})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ValueError(f"{shown}: not an ONNX model (it holds no graph)")
    check_graph(model, shown)
    return model


def _numbers(value, what: str) -> list[float] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    items = value.replace(",", " ").split() if isinstance(value, str) else (
        list(value) if isinstance(value, (list, tuple)) else [value])
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers separated by commas, got {value!r}") from None
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{what} must be finite numbers, got {value!r}")
    return numbers


def preprocessing(graph_input: ImageInput, *, size=None, mean=None, std=None, channels=None) -> dict:
    """The checked preprocessing ``{"size": [H, W] | None, "mean", "std", "channels"}`` for a graph
    with ``graph_input``. ``size``: an int or "H,W" (default: the graph's, None when open);
    ``mean``/``std``: one number or one per channel (default 0 and 1); ``channels``: 1 or 3
    (default: the graph's). Values the graph fixes must agree with it."""
    _, fixed_c, fixed_h, fixed_w = graph_input.shape
    if channels in (None, ""):
        channels = fixed_c
    else:
        try:
            channels = int(channels)
        except (TypeError, ValueError):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}") from None
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if fixed_c is not None and channels != fixed_c:
            raise ValueError(f"channels {channels} disagrees with the graph's input, which takes {fixed_c}")
    side = _numbers(size, "size")
    if side is None:
        side = [fixed_h, fixed_w] if None not in (fixed_h, fixed_w) else None
    else:
        if len(side) == 1:
            side = side * 2
        if len(side) != 2 or not all(v == int(v) and 1 <= v <= MAX_SIDE for v in side):
            raise ValueError(f"size must be one or two whole numbers of pixels in [1, {MAX_SIDE}] "
                             f"(\"224\" or \"224,224\"), got {size!r}")
        side = [int(v) for v in side]
        if (fixed_h, fixed_w) != (None, None) and any(f is not None and f != v for f, v in zip((fixed_h, fixed_w), side)):
            raise ValueError(f"size {side[0]}x{side[1]} disagrees with the graph's input, which takes "
                             f"{fixed_h or '?'}x{fixed_w or '?'}")
    stats = {}
    for what, given, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        values = _numbers(given, what) or [default]
        if channels is not None and len(values) not in (1, channels):
            raise ValueError(f"{what} needs one value or one per channel ({channels}), got {len(values)}")
        if channels is None and len(values) not in (1, 3):
            raise ValueError(f"{what} needs one value or three, got {len(values)}")
        stats[what] = values
    if any(v <= 0 for v in stats["std"]):
        raise ValueError(f"std must be positive, got {stats['std']}")
    return {"size": side, "mean": stats["mean"], "std": stats["std"], "channels": channels}


def prepare(images: torch.Tensor, prep: dict) -> torch.Tensor:
    """A batch of stimuli (float32 N x C x H x W in [0, 1]) as the graph takes it (``prep`` from
    :func:`preprocessing`): channels, then size (bilinear), then ``(x - mean) / std``."""
    import torch
    import torch.nn.functional as F

    wanted = prep["channels"] or images.shape[1]
    if images.shape[1] != wanted:
        if images.shape[1] == 1 and wanted == 3:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] == 3 and wanted == 1:
            images = images.mean(dim=1, keepdim=True)
        else:
            raise ValueError(f"the stimuli have {images.shape[1]} channels and the model takes {wanted}; "
                             "only grey -> RGB and RGB -> grey are converted")
    if prep["size"] is not None and list(images.shape[2:]) != list(prep["size"]):
        images = F.interpolate(images, size=tuple(prep["size"]), mode="bilinear", align_corners=False)
    mean = torch.tensor(prep["mean"], dtype=images.dtype).reshape(1, -1, 1, 1)
    std = torch.tensor(prep["std"], dtype=images.dtype).reshape(1, -1, 1, 1)
    return ((images - mean) / std).contiguous()


def _providers(device) -> list[str]:
    """CUDA first when asked for (or by default) on a machine with a GPU and an onnxruntime that has it."""
    import onnxruntime

    if device is None or str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available() and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@lru_cache(maxsize=8)
def _load(path: str, digest: str) -> onnx.ModelProto:
    """The stored graph with shapes inferred, its content checked against ``digest`` once per process."""
    import onnx

    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"the ONNX file {Path(path).name} changed on disk (its hash differs from the "
                         "registered one); register the model again")
    return infer(onnx.load_model_from_string(data))


class OnnxRepresentation:
    """An ONNX graph run by onnxruntime: layers are its tensors, scores its first output."""

    def __init__(self, info: ModelInfo, graph: onnx.ModelProto | None = None):
        self.info = info
        self.graph = graph if graph is not None else _load(info.weights, info.hparams["sha256"])
        self.input = image_input(self.graph, info.name)

    def layers(self) -> list[LayerInfo]:
        return list_graph_layers(self.graph)

    def _session(self, outputs: list[str], device):
        import onnx
        import onnxruntime

        graph = onnx.ModelProto()
        graph.CopyFrom(self.graph)
        known = {v.name: v for v in list(graph.graph.value_info) + list(graph.graph.output)}
        del graph.graph.output[:]
        graph.graph.output.extend(known.get(name) or onnx.helper.make_empty_tensor_value_info(name)
                                  for name in outputs)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            return onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=_providers(device))
        except Exception as error:  # onnxruntime's own exception classes
            raise ValueError(f"onnxruntime cannot run {self.info.name!r}: {str(error).strip()[:400]}") from None

    def _run(self, stimuli, outputs: list[str], device=None, progress=None, should_stop=None):
        """Yield (start, stop, [arrays of ``outputs``]) per batch of the prepared stimuli; a graph
        with a fixed batch size gets batches of that size, the last one padded."""
        import torch

        session = self._session(outputs, device)
        images = torch.as_tensor(stimuli.images if hasattr(stimuli, "images") else stimuli, dtype=torch.float32)
        n, fixed = images.shape[0], self.input.shape[0]
        step = fixed or BATCH
        for start in range(0, n, step):
            if should_stop is not None and should_stop():
                raise Cancelled(f"extraction cancelled after {start} of {n} images")
            stop = min(start + step, n)
            batch = prepare(images[start:stop], self.info.hparams)
            if fixed and stop - start < fixed:
                batch = torch.cat([batch, batch[-1:].expand(fixed - (stop - start), *batch.shape[1:])])
            try:
                arrays = session.run(outputs, {self.input.name: batch.numpy().astype(self.input.dtype)})
            except Exception as error:
                raise ValueError(f"onnxruntime failed on {self.info.name!r} for images {start}-{stop - 1}: "
                                 f"{str(error).strip()[:400]}") from None
            yield start, stop, [a[: stop - start] for a in arrays]
            if progress is not None:
                progress(stop / n)

    def extract(self, stimuli, layers, pooling="none", *, device=None, progress=None, should_stop=None,
                seed: int = 0):
        import torch

        from compute.sources.activations import _unknown_layers, parse_pooling, projection_matrix, reduce_output

        kind, k = parse_pooling(pooling)
        layers = list(dict.fromkeys(layers))
        known = [info.name for info in self.layers()]
        unknown = [name for name in layers if name not in known]
        if not layers or unknown:
            raise _unknown_layers(unknown or ["(none)"], known)
        results: dict[str, np.ndarray] = {}
        for start, stop, arrays in self._run(stimuli, layers, device, progress, should_stop):
            for name, array in zip(layers, arrays):
                out = reduce_output(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), kind, k,
                                    lambda width: projection_matrix(width, k, seed))
                out = out.reshape(out.shape[0], -1).numpy()
                if name not in results:
                    results[name] = np.empty((len(stimuli.images), out.shape[1]), dtype=np.float32)
                elif results[name].shape[1] != out.shape[1]:
                    raise ValueError(f"layer {name} changed width between batches ({results[name].shape[1]} "
                                     f"then {out.shape[1]}); use pooling='avg' or 'proj:<k>'")
                results[name][start:stop] = out
        return results

    def width(self, stimuli, layer, pooling):
        from compute.sources.activations import parse_pooling

        kind, k = parse_pooling(pooling)
        shape = next((info.shape for info in self.layers() if info.name == layer), None)
        if shape is not None and None not in shape[1:]:
            full = math.prod(shape[1:])
            if kind == "avg":
                return int(shape[1] if len(shape) >= 4 else shape[-1])
            return int(min(full, k) if kind == "proj" else full)
        # Symbolic shapes: one image, on the CPU (this runs in the web process).
        return int(self.extract(_first(stimuli), [layer], pooling, device="cpu")[layer].shape[1])

    def scores(self, stimuli) -> np.ndarray:
        first = self.graph.graph.output[0].name
        parts = [arrays[0].reshape(arrays[0].shape[0], -1) for _, _, arrays in self._run(stimuli, [first])]
        scores = np.concatenate(parts).astype(np.float32)
        if scores.shape[1] < 2:
            raise NoScores(f"model {self.info.name!r}: its first output {first!r} has {scores.shape[1]} value "
                           "per image, no class scores")
        return scores


class _first:
    """The first image of a stimulus set, as a stimulus set."""

    def __init__(self, stimuli):
        self.images = stimuli.images[:1]


def open_onnx(info: ModelInfo, device=None) -> OnnxRepresentation:
    """The opener of ``OPENERS["onnx"]`` (the device is chosen per extraction)."""
    return OnnxRepresentation(info)


def onnx_accuracy(model: OnnxRepresentation, stimuli) -> tuple[float | None, float | None]:
    """(top-1, top-5) on a StimulusSet when the first output has one score per class, else (None, None)."""
    import torch

    from compute.measures.confusion import topk_accuracy

    try:
        scores = model.scores(stimuli)
    except NoScores:
        return None, None
    if scores.shape[1] != stimuli.num_classes:
        return None, None
    scores = torch.from_numpy(scores)
    return topk_accuracy(scores, stimuli.labels, 1), topk_accuracy(scores, stimuli.labels, 5)


def register_onnx(name: str, path: str | Path, stimulus_set: str | None = "digits", *, size=None, mean=None,
                  std=None, channels=None, tags: dict | None = None, shown: str | None = None) -> ModelInfo:
    """Check an ``.onnx`` file, run it once on ``stimulus_set`` and register it (source ``"onnx"``).

    ``size``/``mean``/``std``/``channels`` are the input preprocessing (:func:`preprocessing`),
    kept in ``hparams``. The file is kept by its sha256; the model's key hashes the file and its
    preprocessing (the same graph fed differently computes other activations). Accuracy is
    recorded when the first output has one score per class of the set."""
    from compute.sources.stimuli import stimulus_set_named

    if not name or not isinstance(name, str):
        raise ValueError("name must be a non-empty string")
    data = Path(path).read_bytes()
    shown = shown or Path(path).name
    graph = read_onnx(data, shown)
    prep = preprocessing(image_input(graph, shown), size=size, mean=mean, std=std, channels=channels)
    digest = hashlib.sha256(data).hexdigest()
    hparams = {**prep, "sha256": digest}
    key = hashlib.sha256(json.dumps(hparams, sort_keys=True).encode()).hexdigest()
    file = model_file("onnx", digest, ".onnx")
    label = graph.graph.name if graph.graph.name and graph.graph.name != "main_graph" else Path(shown).stem
    info = ModelInfo(name=name, key=key, architecture=f"onnx:{label}", source="onnx", tags=dict(tags or {}),
                     accuracy=None, top5=None, num_classes=None, hparams=hparams, stimulus_set=stimulus_set,
                     weights=str(file))
    model = OnnxRepresentation(info, infer(graph))
    if not model.layers():
        raise ValueError(f"{shown}: the graph computes no float tensor from its input {model.input.name!r}")
    output = model.graph.graph.output[0].type.tensor_type.shape.dim
    info.num_classes = (output[-1].dim_value or None) if len(output) >= 2 else None
    if stimulus_set is not None:
        # Runs the graph on every image: one that onnxruntime refuses or that fails on them is refused here.
        info.accuracy, info.top5 = onnx_accuracy(model, stimulus_set_named(stimulus_set))
    return add_model(info, lambda target: target.write_bytes(data))


def accept_onnx(path: str | Path, filename: str, stimulus_set: str = "digits", name: str | None = None,
                size=None, mean=None, std=None, channels=None) -> dict:
    """The upload task (in the limited worker): check and register an uploaded ``.onnx``.
    Returns ``{"model", "key", "architecture", "accuracy", "top5"}``."""
    from compute.sources.models import list_models
    from compute.sources.uploads import check_filename, display_name, file_sha256, model_name

    check_filename("onnx", filename)
    digest = file_sha256(Path(path))
    display = model_name(filename, name)
    if display in {m.name for m in list_models(None)}:
        display = f"{display}-{digest[:8]}"
    info = register_onnx(display, path, stimulus_set, size=size, mean=mean, std=std, channels=channels,
                         tags={"uploaded": digest[:12]}, shown=display_name(filename))
    return {"model": info.name, "key": info.key, "architecture": info.architecture,
            "accuracy": info.accuracy, "top5": info.top5}
