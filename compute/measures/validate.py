"""Input checks at the public boundary of every measure.

Each check raises ``ValueError`` with a message that names the argument, what is wrong
and what to change, so a user never sees a silent NaN or a shape error from deep inside torch.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from compute.errors import listed


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> the first CUDA device when there is one, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: Any = None) -> torch.dtype:
    """``None`` -> float32 (the default precision); accepts numpy or torch float dtypes."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        resolved = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}.get(
            np.dtype(dtype)
        )
    if resolved not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def as_matrix(
    X: Any,
    name: str = "X",
    *,
    dtype: Any = None,
    device: str | torch.device | None = None,
    min_rows: int = 3,
) -> torch.Tensor:
    """Return ``X`` as a finite 2-D (N stimuli x D features) tensor with ``N >= min_rows``.

    Accepts numpy arrays, torch tensors and nested sequences. Raises ``ValueError`` naming the
    rows that hold NaN or inf.
    """
    if isinstance(X, torch.Tensor):
        tensor = X.detach()
    else:
        array = np.asarray(X)
        if array.dtype == object or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
        array = np.ascontiguousarray(array)
        with warnings.catch_warnings():  # read-only (memory-mapped) input: we never write to it
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensor = torch.from_numpy(array)
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (N stimuli x D features), got shape {tuple(tensor.shape)}; "
            "flatten or pool the feature axes first"
        )
    n, d = tensor.shape
    if n < min_rows:
        raise ValueError(f"{name} has {n} stimuli (rows); at least {min_rows} are needed")
    if d < 1:
        raise ValueError(f"{name} has no features (0 columns)")
    tensor = tensor.to(device=resolve_device(device), dtype=resolve_dtype(dtype))
    # One read: a NaN or inf entry makes the sum non-finite; only then (or when the sum
    # overflows) is the row-by-row check, which names the rows, needed. On the CPU numpy sums
    # in one thread, immune to a core held by another process.
    with np.errstate(all="ignore"):  # an overflow only sends us to the row check
        total = tensor.numpy().sum() if tensor.device.type == "cpu" else tensor.sum()
    if bool(np.isfinite(total) if isinstance(total, np.generic) else torch.isfinite(total)):
        return tensor
    finite = torch.isfinite(tensor).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().cpu().numpy()
        raise ValueError(
            f"{name} has NaN or inf values in {len(bad)} stimuli (rows {listed(bad)}); "
            "remove those stimuli or fix the activations"
        )
    return tensor


def check_same_stimuli(X: torch.Tensor, Y: torch.Tensor, names: tuple[str, str] = ("X", "Y")) -> None:
    """Both matrices must describe the same stimuli: equal numbers of rows."""
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{names[0]} has {X.shape[0]} stimuli but {names[1]} has {Y.shape[0]}; "
            "compute both on the same stimulus set, in the same order"
        )


def check_not_constant(X: torch.Tensor, name: str = "X") -> None:
    """A matrix whose columns are all constant carries no signal once centred."""
    if X.shape[0] > 1 and bool((X[1] != X[0]).any()):
        return  # two stimuli differ: no need to compare all of them
    if bool((X == X[:1]).all()):
        raise ValueError(
            f"{name} is the same for every stimulus (all features constant); "
            "similarity with it is undefined: pick another layer or check the model's inputs"
        )
