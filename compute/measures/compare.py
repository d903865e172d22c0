"""Second-order comparisons: how alike two RDMs are, and the model RDM of many RDMs.

RDMs are reduced to their condensed upper triangles (K = N(N-1)/2 entries). Each RDM is ranked,
centred and normalised once; all pairs then come from one GEMM.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.stats
import torch

from compute.measures.rdm import average_ranks, for_each_row, rank_rows, sorted_order
from compute.measures.condensed import side_from_length
from compute.measures.registry import COMPARE_METHODS
from compute.errors import listed
from compute.measures.validate import resolve_device, resolve_dtype
from compute.measures.whitened import WHITENED, whitened_vectors


_GEMM_METHODS = ("spearman", "pearson", "rho_a", "cosine", *WHITENED)
_CORRELATION_METHODS = ("spearman", "pearson", "rho_a", "kendall_tau_a", "tau_b", "corr_cov")
_RANK_METHODS = ("spearman", "rho_a", "kendall_tau_a", "tau_b")
_CHUNK_ELEMENTS = 1 << 24


def compare_rdms(
    a: Any,
    b: Any,
    method: str = "spearman",
    dtype: Any = None,
    device: str | torch.device | None = None,
) -> float:
    """Compare two RDMs over the same stimuli.

    Parameters
    ----------
    a, b : array or tensor, shape (N, N) or condensed (N*(N-1)/2,)
        Square RDMs are reduced to their upper triangle (squareform order); they must be
        symmetric. Both must be over the same N >= 3 stimuli, in the same order.
    method : {"spearman", "pearson", "kendall_tau_a", "tau_b", "rho_a", "cosine", "cosine_cov",
              "corr_cov", "euclidean", "manhattan"}
        See ``COMPARE_METHODS``; ``cosine_cov``/``corr_cov`` are rsatoolbox's whitened
        comparisons (:mod:`compute.measures.whitened`).
    dtype : float32 (default) or float64
        Precision of the final dot product; ranks and norms are always computed in float64.
    device : str or torch.device, optional

    Returns
    -------
    float
        For the similarity methods, a coefficient in [-1, 1] (higher = more alike, 1 =
        identical up to the method's invariances). For ``euclidean``/``manhattan``, a
        distance >= 0 (lower = more alike, 0 = identical).

    Raises
    ------
    ValueError
        RDMs over different numbers of stimuli, non-symmetric square input, NaN/inf
        (naming the stimulus pairs), or a constant RDM under a correlation-type method.
    """
    _check_method(method)
    va, vb, _ = rdm_vector_pair(a, b, ("a", "b"))
    return float(rowwise(va[None], vb[None], method, dtype, device, names=("a", "b"))[0])


def model_rdm(
    rdms: Any,
    method: str = "spearman",
    dtype: Any = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Model RDM: the pairwise dissimilarities between M RDMs.

    Parameters
    ----------
    rdms : array or tensor (M, K) of condensed RDMs, (M, N, N) of square RDMs, or a list
        of M square or condensed RDMs, all over the same N stimuli; M >= 2.
    method : str
        A ``COMPARE_METHODS`` name.
    dtype : float32 (default) or float64
    device : str or torch.device, optional

    Returns
    -------
    np.ndarray, shape (M, M)
        A dissimilarity: ``1 - r`` (range [0, 2]) for the similarity methods, the distance
        itself for ``euclidean``/``manhattan``. Symmetric with a zero diagonal; entry (i, j)
        equals ``compare_rdms`` of RDMs i and j turned into a dissimilarity.
    """
    _check_method(method)
    # Rank methods only need the order of the values: float32 RDMs stay float32.
    V = _stack_rdms(rdms, "rdms", keep_float32=method in _RANK_METHODS)
    torch_dtype = resolve_dtype(dtype)
    values = pairwise(V, method, dtype, device)
    if COMPARE_METHODS[method].kind == "similarity":
        values = torch.clamp(1.0 - values, 0.0, 2.0)
    upper = torch.triu(values.to(torch.float64), diagonal=1)
    out = (upper + upper.T).to(torch_dtype)
    return out.cpu().numpy()


def _check_method(method: str) -> None:
    if method not in COMPARE_METHODS:
        raise ValueError(
            f"unknown RDM comparison method {method!r}; choose one of {sorted(COMPARE_METHODS)}"
        )


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    array = np.asarray(x)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be a numeric array, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def as_rdm_vector(rdm_: Any, name: str = "rdm") -> tuple[torch.Tensor, int]:
    """Condensed float64 CPU vector of a square or condensed RDM, and its number of stimuli."""
    t = _as_tensor(rdm_, name)
    if t.ndim == 2:
        n = t.shape[0]
        if t.shape[1] != n:
            raise ValueError(
                f"{name} must be a square (N x N) RDM or its condensed upper triangle "
                f"(N*(N-1)/2,), got shape {tuple(t.shape)}"
            )
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite.all(dim=1)).flatten().numpy()
            raise ValueError(
                f"{name} has NaN or inf dissimilarities in rows (stimuli) {listed(bad)}; "
                "remove those stimuli or recompute the RDM"
            )
        asym = float((t - t.T).abs().max()) if n else 0.0
        if asym > 1e-6 * max(1.0, float(t.abs().max())):
            raise ValueError(
                f"{name} is not symmetric (max |{name} - {name}.T| = {asym:.3g}); pass a "
                "dissimilarity matrix, or its condensed upper triangle"
            )
        i, j = torch.triu_indices(n, n, offset=1)
        t = t[i, j]
    elif t.ndim == 1:
        n = side_from_length(t.shape[0])
        if n is None:
            raise ValueError(
                f"{name} has {t.shape[0]} entries, which is not N*(N-1)/2 for any N; pass a "
                "square RDM or a condensed one in scipy squareform order"
            )
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten().numpy()
            rows, cols = np.triu_indices(n, 1)
            pairs = ", ".join(f"({rows[k]}, {cols[k]})" for k in bad[:10])
            raise ValueError(
                f"{name} has NaN or inf dissimilarities for {len(bad)} stimulus pairs ({pairs}); "
                "remove those stimuli or recompute the RDM"
            )
    else:
        raise ValueError(
            f"{name} must be a square (N x N) RDM or a condensed (N*(N-1)/2,) vector, got "
            f"shape {tuple(t.shape)}"
        )
    if n < 3:
        raise ValueError(f"{name} is an RDM over {n} stimuli; at least 3 are needed")
    return t, n
def rdm_vector_pair(a: Any, b: Any, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two RDMs as condensed vectors over the same N stimuli (see :func:`as_rdm_vector`), and N;
    a ``ValueError`` naming both (by ``names``) when their N differ."""
    va, na = as_rdm_vector(a, names[0])
    vb, nb = as_rdm_vector(b, names[1])
    if na != nb:
        raise ValueError(
            f"{names[0]} is an RDM over {na} stimuli but {names[1]} is over {nb}; compare RDMs computed "
            "on the same stimuli, in the same order"
        )
    return va, vb, na




def stack_rdms(rdms: Any, name: str = "rdms") -> torch.Tensor:
    """(M, K) float64 CPU tensor of M >= 2 condensed RDMs over the same stimuli."""
    return _stack_rdms(rdms, name, keep_float32=False)


def _stack_rdms(rdms: Any, name: str, keep_float32: bool) -> torch.Tensor:
    """``stack_rdms``; with ``keep_float32`` an (M, K) float32 array stays float32 (no copy).

    An (M, K) array is checked in one pass; only a failing one is re-checked RDM by RDM, for
    the message naming the culprit.
    """
    if isinstance(rdms, torch.Tensor) and rdms.dtype in (torch.float32, torch.float64):
        array = rdms.detach().cpu().numpy()
    else:
        array = rdms if isinstance(rdms, np.ndarray) else None
    if (array is not None and array.ndim == 2 and len(array) >= 2
            and array.dtype in (np.float32, np.float64)
            and (side_from_length(array.shape[1]) or 0) >= 3 and bool(np.isfinite(array).all())):
        keep = keep_float32 and array.dtype == np.float32
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32 if keep else np.float64))
    if isinstance(rdms, (np.ndarray, torch.Tensor)) and rdms.ndim in (2, 3):
        items: Sequence[Any] = list(rdms)
    elif isinstance(rdms, (list, tuple)):
        items = rdms
    else:
        raise ValueError(
            f"{name} must be an (M, K) array of condensed RDMs, an (M, N, N) array of square "
            "RDMs, or a list of RDMs"
        )
    if len(items) < 2:
        raise ValueError(f"{name} holds {len(items)} RDM(s); at least 2 are needed")
    vectors, counts = zip(*(as_rdm_vector(r, f"{name}[{i}]") for i, r in enumerate(items)))
    if len(set(counts)) > 1:
        raise ValueError(
            f"{name} mixes RDMs over different numbers of stimuli ({sorted(set(counts))}); "
            "compute all of them on the same stimuli, in the same order"
        )
    return torch.stack(vectors)


def _check_not_constant(V: torch.Tensor, method: str, names: Sequence[str] | None) -> None:
    if method in _CORRELATION_METHODS:
        bad = torch.nonzero(V.max(dim=1).values == V.min(dim=1).values).flatten().numpy()
        what = "constant (all dissimilarities equal)"
    elif method in ("cosine", "cosine_cov"):
        bad = torch.nonzero((V == 0).all(dim=1)).flatten().numpy()
        what = "all zero"
    else:
        return
    if len(bad):
        label = names[bad[0]] if names else f"RDMs {listed(bad)} of rdms"
        raise ValueError(
            f"{label} {'is' if names or len(bad) == 1 else 'are'} {what}; {method} is undefined "
            "for it: check the layer (a dead layer gives a constant RDM) or compare with "
            "'euclidean' or 'manhattan'"
        )


def prepare(V: torch.Tensor, method: str) -> torch.Tensor:
    """Rows transformed so that their dot products are the method's similarities (float64)."""
    if method in WHITENED:
        return whitened_vectors(V, method)
    if method in ("spearman", "rho_a"):
        V = rank_rows(V)
    if method != "cosine":
        V = V - V.mean(dim=1, keepdim=True)
    if method == "rho_a":
        k = V.shape[1]
        return V * np.sqrt(12.0 / (float(k) ** 3 - k))
    return V / torch.linalg.vector_norm(V, dim=1, keepdim=True)


def pairwise(
    V: torch.Tensor, method: str, dtype: Any = None, device: Any = None,
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """(M, M) similarities (similarity methods) or distances of the rows of V (M, K).

    V is float64, or float32 for the rank methods (whose answer depends only on the order).
    """
    _check_not_constant(V, method, names)
    if method not in _RANK_METHODS:
        V = V.to(torch.float64)
    torch_dtype = resolve_dtype(dtype)
    dev = resolve_device(device)
    if method in ("spearman", "rho_a"):
        P = _rank_patterns(V, method, torch_dtype).to(dev)
        return torch.clamp(P @ P.T, -1.0, 1.0)
    if method in _GEMM_METHODS:
        P = prepare(V.to(dev), method).to(torch_dtype)
        return torch.clamp(P @ P.T, -1.0, 1.0)
    if method == "euclidean":
        return _euclidean(V.to(dev)).to(torch_dtype)
    if method == "manhattan":
        V = V.to(dev)
        total = torch.zeros(V.shape[0], V.shape[0], dtype=torch.float64, device=dev)
        step = max(1, _CHUNK_ELEMENTS // V.shape[0])
        for start in range(0, V.shape[1], step):
            part = V[:, start:start + step]
            total += torch.cdist(part[None], part[None], p=1)[0]
        return total.to(torch_dtype)
    return torch.from_numpy(_kendall_matrix(V.numpy(), tau_b=method == "tau_b")).to(torch_dtype)


def _rank_patterns(V: torch.Tensor, method: str, dtype: torch.dtype) -> torch.Tensor:
    """``prepare(V, method)`` for the rank methods, in ``dtype``: one sort per row, no float64 copies.

    Each row's average ranks are centred by their known mean (K + 1) / 2 and scaled in float64,
    then stored once in ``dtype``; rows are done in parallel threads.
    """
    values = V.numpy()
    m, k = values.shape
    out = np.empty((m, k), dtype=np.float64 if dtype == torch.float64 else np.float32)
    rho_scale = np.sqrt(12.0 / (float(k) ** 3 - k))

    def one(row: int) -> None:
        order, new_group = sorted_order(values[row])
        centred = average_ranks(new_group)
        centred -= (k + 1) / 2.0
        # einsum, not np.dot: a BLAS ddot wakes OpenBLAS threads per row (8 ms a row under load)
        scale = rho_scale if method == "rho_a" else 1.0 / np.sqrt(np.einsum("i,i->", centred, centred))
        out[row, order] = centred * scale

    for_each_row(one, m)
    return torch.from_numpy(out)


def _euclidean(V: torch.Tensor) -> torch.Tensor:
    """Distances by the GEMM norm trick in float64; near-zero ones recomputed directly."""
    P = V - V.mean(dim=0, keepdim=True)
    gram = P @ P.T
    sq = gram.diagonal()
    d2 = sq[:, None] + sq[None, :] - 2.0 * gram
    suspect = torch.nonzero(d2 < 1e-6 * (sq[:, None] + sq[None, :]))
    for chunk in torch.split(suspect, max(1, _CHUNK_ELEMENTS // P.shape[1])):
        diff = P[chunk[:, 0]] - P[chunk[:, 1]]
        d2[chunk[:, 0], chunk[:, 1]] = (diff * diff).sum(dim=1)
    return d2.clamp_(min=0.0).sqrt_()


def _tied_pairs(v: np.ndarray) -> int:
    counts = np.unique(v, return_counts=True)[1].astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _tau_a(x: np.ndarray, y: np.ndarray, x_ties: int, y_ties: int) -> float:
    """Kendall tau-a in O(K log K): scipy's tau-b (merge-sort count) rescaled by its ties.

    tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)) and tau_a = (C - D) / n0, n0 = K(K-1)/2.
    """
    n0 = len(x) * (len(x) - 1) // 2
    tau_b = scipy.stats.kendalltau(x, y).statistic
    tau = tau_b * np.sqrt(float(n0 - x_ties)) * np.sqrt(float(n0 - y_ties)) / n0
    return float(min(1.0, max(-1.0, tau)))


def _kendall_matrix(V: np.ndarray, tau_b: bool = False) -> np.ndarray:
    """(M, M) Kendall tau-a (tau-b: ties corrected) of the rows of V: each row sorted once, then
    O(K log K) per pair."""
    try:
        from scipy.stats._stats import _kendall_dis  # scipy's Fenwick-tree discordance count
    except ImportError:  # a private helper: fall back to scipy's public kendalltau per pair
        return _kendall_matrix_scipy(V, tau_b)
    m, k = V.shape
    n0 = k * (k - 1) // 2
    rows: list[dict] = [{} for _ in range(m)]

    def sort_row(i: int) -> None:
        order, new_group = sorted_order(V[i])
        dense_sorted = np.cumsum(new_group, dtype=np.int32)  # dense ranks from 1, ascending
        dense = np.empty(k, dtype=np.int32)
        dense[order] = dense_sorted
        sizes = np.diff(np.append(np.flatnonzero(new_group), k))
        tied = np.repeat(sizes > 1, sizes)
        rows[i] = {"order": order.astype(np.int32), "dense_sorted": dense_sorted, "dense": dense,
                   "ties": int((sizes * (sizes - 1) // 2).sum()), "tied_at": np.flatnonzero(tied)}

    for_each_row(sort_row, m)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    out = np.eye(m)

    def one_pair(index: int) -> None:
        i, j = pairs[index]
        x, y = rows[i], rows[j]
        y_in_x_order = y["dense"][x["order"]].astype(np.intp)
        discordant = int(_kendall_dis(x["dense_sorted"].astype(np.intp), y_in_x_order))
        both = 0  # pairs tied in x and in y: only among x's tied positions
        if len(x["tied_at"]) and y["ties"]:
            at = x["tied_at"]
            joint = x["dense_sorted"][at].astype(np.int64) * (k + 1) + y_in_x_order[at]
            counts = np.unique(joint, return_counts=True)[1].astype(np.int64)
            both = int((counts * (counts - 1) // 2).sum())
        # C - D = n0 - ties_x - ties_y + ties_both - 2 D
        scale = np.sqrt(float(n0 - x["ties"])) * np.sqrt(float(n0 - y["ties"])) if tau_b else n0
        tau = (n0 - x["ties"] - y["ties"] + both - 2 * discordant) / scale
        out[i, j] = out[j, i] = min(1.0, max(-1.0, tau))

    for_each_row(one_pair, len(pairs))
    return out


def _kendall_matrix_scipy(V: np.ndarray, tau_b: bool = False) -> np.ndarray:
    ties = [_tied_pairs(v) for v in V]
    m = len(V)
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = _kendall(V[i], V[j], ties[i], ties[j], tau_b)
    return out


def _kendall(x: np.ndarray, y: np.ndarray, x_ties: int, y_ties: int, tau_b: bool) -> float:
    return float(scipy.stats.kendalltau(x, y).statistic) if tau_b else _tau_a(x, y, x_ties, y_ties)


def rowwise(
    A: torch.Tensor, B: torch.Tensor, method: str, dtype: Any = None, device: Any = None,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Comparison of row i of A with row i of B, for every i; A and B are (M, K) float64."""
    _check_not_constant(A, method, names[:1] if names else None)
    _check_not_constant(B, method, names[1:] if names else None)
    torch_dtype = resolve_dtype(dtype)
    dev = resolve_device(device)
    if method in _GEMM_METHODS:
        pa = prepare(A.to(dev), method).to(torch_dtype)
        pb = prepare(B.to(dev), method).to(torch_dtype)
        values = torch.clamp((pa * pb).sum(dim=1), -1.0, 1.0)
    elif method in ("euclidean", "manhattan"):
        diff = A.to(dev) - B.to(dev)
        if method == "euclidean":
            values = torch.linalg.vector_norm(diff, dim=1).to(torch_dtype)
        else:
            values = diff.abs().sum(dim=1).to(torch_dtype)
    else:
        a, b = A.numpy(), B.numpy()
        values = torch.tensor(
            [_kendall(x, y, _tied_pairs(x), _tied_pairs(y), method == "tau_b") for x, y in zip(a, b)],
            dtype=torch.float64,
        ).to(torch_dtype)
    return values.cpu().numpy()
