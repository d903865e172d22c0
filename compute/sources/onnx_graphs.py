"""ONNX graphs read without running anything: the checks an uploaded ``.onnx`` must pass, its image
input, and its layers (the intermediate tensors) with their default selection.

A graph is data, not code, as long as every operator is one onnxruntime implements itself: nodes
and opset imports may only use the standard domains (``ALLOWED_DOMAINS``) or functions defined in
the file in terms of them. Custom-op domains (which would need a shared library of code) and
tensors kept in external files (which would name paths of the server) are refused.

Layers are the float tensors that nodes compute from the image, batch first, in graph order.
The default selection mirrors the torch models' "block outputs and the penultimate": the tensor
entering each downsampling (a node whose output is spatially smaller than its input: a strided
Conv, a pooling) and each fully connected layer (Gemm, or MatMul by a constant on N x D), traced
back through reshapes (Flatten, Reshape, Squeeze, Identity, Dropout, Cast); the penultimate is the
input of the final classifier (the last Gemm/MatMul before the first output, the last Conv when
there is none), traced back likewise. For the zoo MLP that is act1-act3; for the zoo CNN the conv
output before its max-pool and bn1-bn3; for a ResNet the stem, each stage's output and the pool.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from compute.sources.layers import LayerInfo

if TYPE_CHECKING:
    import onnx

# onnxruntime's own operator sets: the standard ones, and its contrib ops ("com.microsoft"),
# compiled into onnxruntime (exporters and its optimiser emit them), never loaded from a file.
ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
MAX_NODES = 50_000
PASSIVE = ("Flatten", "Reshape", "Squeeze", "Identity", "Dropout", "Cast")
_FLOATS = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
INPUT_DTYPES = {1: "float32", 10: "float16", 11: "float64"}


@dataclass(frozen=True)
class ImageInput:
    """The graph's one image input: its name, (N, C, H, W) with None for a symbolic dim, numpy dtype."""

    name: str
    shape: tuple
    dtype: str


def _walk_graphs(graph):
    """``graph`` and every subgraph of its nodes' attributes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from _walk_graphs(sub)


def _tensors(model):
    """Every TensorProto the file holds: initializers, sparse ones, node attributes (graphs and functions)."""
    graphs = list(_walk_graphs(model.graph))
    for function in model.functions:
        holder = type(model.graph)()
        holder.node.extend(function.node)
        graphs += list(_walk_graphs(holder))
    for graph in graphs:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        for node in graph.node:
            for attribute in node.attribute:
                yield from ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)


def _nodes(model):
    for graph in _walk_graphs(model.graph):
        yield from graph.node
    for function in model.functions:
        yield from function.node


def check_graph(model: onnx.ModelProto, shown: str) -> ImageInput:
    """Refuse what onnxruntime would need code or server files for, or RepScope cannot feed; return
    the image input. Messages name the file ``shown``, and the op, domain or tensor at fault."""
    import onnx

    external = next((t.name for t in _tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL), None)
    if external is not None:
        raise ValueError(f"{shown}: tensor {external!r} keeps its data in an external file, which is refused "
                         "(nothing an upload names is read from the server); export with the weights inside "
                         "the .onnx (onnx.save(model, path, save_as_external_data=False), under 2 GB)")
    local = {(f.domain, f.name) for f in model.functions}
    for node in _nodes(model):
        if node.domain not in ALLOWED_DOMAINS and (node.domain, node.op_type) not in local:
            raise ValueError(f"{shown}: custom operator domain {node.domain!r} (op {node.op_type!r}) is refused: "
                             "no code from an upload runs; use the standard ONNX operators "
                             f"(domains {', '.join(repr(d) for d in ALLOWED_DOMAINS)})")
    function_domains = {f.domain for f in model.functions}
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS and opset.domain not in function_domains:
            raise ValueError(f"{shown}: custom operator domain {opset.domain!r} (imported at version "
                             f"{opset.version}) is refused: no code from an upload runs")
    count = sum(1 for _ in _nodes(model))
    if count > MAX_NODES:
        raise ValueError(f"{shown}: the graph has {count:,} nodes; at most {MAX_NODES:,} are accepted")
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # onnx's ValidationError and friends
        raise ValueError(f"{shown}: not a valid ONNX model ({str(error).strip().splitlines()[0][:300]})") from None
    return image_input(model, shown)


def _dims(value) -> tuple | None:
    """A ValueInfo's shape: ints, None for a symbolic or unknown dim; None when its rank is unknown."""
    kind = value.type.tensor_type
    if not kind.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim)


def image_input(model, shown: str) -> ImageInput:
    """The graph's one input that is no initializer, which must be an (N, C, H, W) float tensor."""
    constants = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in constants]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise ValueError(f"{shown}: the graph takes {len(inputs)} inputs ({names}); RepScope feeds it one: "
                         "a batch of images (N, C, H, W)")
    value = inputs[0]
    shape = _dims(value)
    if shape is None or len(shape) != 4:
        raise ValueError(f"{shown}: the input {value.name!r} has shape {_shown(shape)}; RepScope feeds a batch "
                         "of images (N, C, H, W), so it needs 4 dimensions")
    elem = value.type.tensor_type.elem_type
    if elem not in INPUT_DTYPES:
        import onnx

        raise ValueError(f"{shown}: the input {value.name!r} is of type {onnx.TensorProto.DataType.Name(elem)}; "
                         "images are fed as float32 (float16 and float64 inputs are converted)")
    if shape[1] not in (None, 1, 3):
        raise ValueError(f"{shown}: the input {value.name!r} has {shape[1]} channels (shape {_shown(shape)}); "
                         "images have 1 or 3 (the input must be N, C, H, W)")
    return ImageInput(value.name, shape, INPUT_DTYPES[elem])


def _shown(shape) -> str:
    return "unknown" if shape is None else "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every tensor's type and shape that shape inference finds (``value_info``)."""
    from onnx import shape_inference

    try:
        return shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # a graph the ONNX inference cannot follow still runs; its shapes stay unknown
        return model


def _value_infos(model) -> dict:
    graph = model.graph
    return {v.name: v for v in list(graph.input) + list(graph.value_info) + list(graph.output)}


def list_graph_layers(model: onnx.ModelProto) -> list[LayerInfo]:
    """The float tensors the graph computes from its image input, batch dim first, in graph
    order (``model`` already through :func:`infer`): name = tensor name, kind = the op making it,
    ``shape`` from shape inference; default and penultimate chosen as the module docstring says."""
    source = image_input(model, "the model").name
    values = _value_infos(model)
    batch = values[source].type.tensor_type.shape.dim[0]
    producer, reached, layers = {}, {source}, {}
    for node in model.graph.node:
        if any(name in reached for name in node.input if name):
            for name in node.output:
                if not name:
                    continue
                reached.add(name)
                producer[name] = node
                value = values.get(name)
                elem = value.type.tensor_type.elem_type if value is not None else 0
                shape = _dims(value) if value is not None else None
                if elem in _FLOATS and shape and len(shape) >= 2 and _same_dim(value.type.tensor_type.shape.dim[0], batch):
                    layers[name] = (node.op_type, shape)
    penultimate = _penultimate(model, producer, layers)
    defaults = _defaults(model, producer, layers) | ({penultimate} if penultimate else set())
    outputs = {v.name for v in model.graph.output}
    return [LayerInfo(name, kind, name in defaults and name not in outputs, name == penultimate, shape)
            for name, (kind, shape) in layers.items()]


def _same_dim(dim, batch) -> bool:
    if batch.HasField("dim_param") and batch.dim_param:
        return dim.dim_param == batch.dim_param or not (dim.HasField("dim_value") or dim.dim_param)
    return dim.HasField("dim_value") and dim.dim_value == batch.dim_value


def _back(name: str | None, producer: dict, layers: dict) -> str | None:
    """``name`` traced back through reshapes to the tensor they reshape; None unless a layer
    (a Flatten of the graph's input is no layer of its own)."""
    while name in producer and producer[name].op_type in PASSIVE:
        name = producer[name].input[0]
    return name if name in layers else None


def _data_input(node, layers: dict) -> str | None:
    return next((name for name in node.input if name in layers), None)


def _penultimate(model, producer: dict, layers: dict) -> str | None:
    """The tensor feeding the final classifier: walk back from the first output to the last
    Gemm/MatMul (bias Adds, softmax and reshapes between), or to the last Conv when none."""
    if not model.graph.output:
        return None
    chain, name = [], model.graph.output[0].name
    while name in producer and len(chain) < 12:
        chain.append(producer[name])
        name = _data_input(producer[name], layers)
    for kinds in (("Gemm", "MatMul"), ("Conv",)):
        final = next((node for node in chain if node.op_type in kinds), None)
        if final is not None:
            return _back(_data_input(final, layers), producer, layers)
    return None


def _defaults(model, producer: dict, layers: dict) -> set[str]:
    """Tensors entering each downsampling and each fully connected layer (traced back)."""
    constants = {t.name for t in model.graph.initializer} | {
        n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    found = set()
    for node in model.graph.node:
        data = _data_input(node, layers)
        if data is None:
            continue
        shape_in = layers[data][1]
        shape_out = layers.get(node.output[0], (None, None))[1]
        dense = node.op_type == "Gemm" or (node.op_type == "MatMul" and len(shape_in) == 2
                                           and any(name in constants for name in node.input))
        smaller = (len(shape_in) == 4 and shape_out is not None and len(shape_out) == 4
                   and None not in shape_in[2:] + shape_out[2:]
                   and shape_out[2] * shape_out[3] < shape_in[2] * shape_in[3])
        if dense or smaller:
            traced = _back(data, producer, layers)
            if traced is not None:
                found.add(traced)
    return found
