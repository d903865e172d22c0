"""Model weights: their identity (:func:`weights_key`) and their safe loading into a module.

A model's identity is the sha256 of its weights, never its file name. Weights are read only as
tensors: ``.safetensors``, or a ``.pt``/``.pth`` state_dict through
``torch.load(weights_only=True)``. TorchScript archives, whole pickled modules and anything else
are code, and are refused. torch is imported inside the functions, so the web process can read
:data:`ACCEPTED_FORMATS` without it.
"""
from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

ACCEPTED_FORMATS = (".safetensors, or .pt/.pth holding a state_dict saved with "
                    "torch.save(model.state_dict(), path)")


def weights_key(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted tensor names, each with its dtype, shape and raw bytes."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _refuse(name: str, why: str) -> ValueError:
    return ValueError(f"{name}: {why}. Accepted formats: {ACCEPTED_FORMATS}")


def _unwrap(obj, name: str) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} dict, unwrapping one level of {"state_dict"|"model"|...: {...}}."""
    import torch

    from compute.errors import listed

    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise _refuse(name, f"holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise _refuse(name, f"entries that are not named tensors: {listed(bad)}")
    return dict(obj)


def load_state_dict_file(path: str | Path, name: str | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a {name: tensor} dict on the CPU, executing no code from it.

    Raises ``ValueError`` (naming the file as ``name``, default its own name, and the accepted
    formats) for TorchScript archives, whole pickled modules or custom objects, ``.pkl`` and any
    other format.
    """
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise _refuse(name, f"is not a readable safetensors file ({error})") from None
    if suffix not in (".pt", ".pth"):
        raise _refuse(name, f"the format {suffix or '(no extension)'!r} is not accepted"
                      + (" (pickles can run code)" if suffix in (".pkl", ".pickle") else ""))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise _refuse(name, "is a TorchScript archive (torch.jit.save), which holds code and is refused; "
                          "save model.state_dict() instead")
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message advises weights_only=False; ours must not: quote only the offending global.
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(error))
        if found is None:
            raise _refuse(name, "is not a readable torch checkpoint (not a pickle of tensors)") from None
        raise _refuse(name, f"holds Python objects other than tensors ({found.group(1)}; e.g. a whole "
                      "pickled module), which weights-only loading refused; save model.state_dict() "
                      "instead") from None
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        raise _refuse(name, f"is not a readable torch checkpoint ({error})") from None
    return _unwrap(obj, name)


def validate_state_dict(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` naming every missing or extra key, shape or dtype mismatch, and
    tensor holding NaN or inf, so a wrong architecture or a broken checkpoint is told apart."""
    import torch

    from compute.errors import listed

    expected = module.state_dict()
    problems = []
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing:
        problems.append(f"missing keys: {listed(missing)}")
    if extra:
        problems.append(f"unexpected keys: {listed(extra)}")
    shapes = [f"{k} (expected {tuple(v.shape)}, got {tuple(state_dict[k].shape)})"
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if shapes:
        problems.append(f"shape mismatches: {listed(shapes)}")
    dtypes = [f"{k} (expected {v.dtype}, got {state_dict[k].dtype})"
              for k, v in expected.items() if k in state_dict and state_dict[k].dtype != v.dtype]
    if dtypes:
        problems.append(f"dtype mismatches: {listed(dtypes)}")
    nonfinite = [k for k, v in state_dict.items()
                 if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        problems.append(f"NaN or inf values in: {listed(nonfinite)}")
    if problems:
        raise ValueError("the weights do not fit the architecture " f"{type(module).__name__}: " + "; ".join(problems))


def load_weights(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Validate, load strictly, and return ``module`` in eval mode."""
    validate_state_dict(module, state_dict)
    module.load_state_dict(state_dict, strict=True)
    return module.eval()
