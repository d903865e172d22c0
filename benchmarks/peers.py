"""Peer implementations RepScope is timed against, called the way their users call them.

Library peers (scipy, scikit-learn, rsatoolbox, hoggorm, torch-cka) are imported lazily, so a
missing one costs only its own column. The SVCCA/PWCCA references are written here in plain
NumPy from the published algorithm (Raghu et al. 2017; Morcos et al. 2018) as google/svcca
computes it: covariance from ``np.cov``, rescaling, ``pinv``, an eigen-decomposition square
root, an SVD. They are references for the answer and a fair "notebook" timing, not
RepScope's method.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np


def activations(n: int, d: int, seed: int = 0, rank: int = 32) -> np.ndarray:
    """(n, d) float32 activations: a rank-``rank`` signal plus noise, rows of norm about 1."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, rank), dtype=np.float32) @ rng.standard_normal((rank, d), dtype=np.float32)
    X = signal / np.float32(np.sqrt(rank)) + rng.standard_normal((n, d), dtype=np.float32)
    return X / np.float32(np.sqrt(2.0 * d))


def related(X: np.ndarray, seed: int = 1, noise: float = 1.0) -> np.ndarray:
    """A second activation matrix over the same stimuli: a random linear map of X plus noise."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    R = rng.standard_normal((d, d), dtype=np.float32) / np.float32(np.sqrt(d))
    Y = X @ R + noise * rng.standard_normal(X.shape, dtype=np.float32) / np.float32(np.sqrt(2.0 * d))
    return Y.astype(np.float32)


# ---- RDMs ----

def pdist_rdm(X: np.ndarray, method: str) -> np.ndarray:
    from scipy.spatial.distance import pdist

    return pdist(X, method)


def sklearn_rdm(X: np.ndarray, method: str) -> np.ndarray:
    from sklearn.metrics import pairwise_distances

    return pairwise_distances(X, metric=method, n_jobs=1)


def rsatoolbox_rdm(X: np.ndarray, method: str):
    import rsatoolbox

    return rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(X), method=method)


def as_condensed(peer: str, result, method: str, d: int) -> np.ndarray:
    """A peer's RDM as RepScope's condensed vector of the same quantity (float64)."""
    if peer == "sklearn":
        from scipy.spatial.distance import squareform

        return squareform(np.asarray(result, dtype=np.float64), checks=False)
    if peer == "rsatoolbox":
        vector = np.asarray(result.get_vectors()[0], dtype=np.float64)
        # rsatoolbox's 'euclidean' is the squared distance divided by the number of channels.
        return np.sqrt(np.clip(vector * d, 0, None)) if method == "euclidean" else vector
    return np.asarray(result, dtype=np.float64)


# ---- RDM comparisons ----

RSATOOLBOX_METHODS = {"spearman": "spearman", "kendall_tau_a": "tau-a", "pearson": "corr"}


def rsatoolbox_model_rdm(rdms: np.ndarray, method: str) -> np.ndarray:
    """rsatoolbox's all-pairs comparison of the (M, K) condensed RDMs: an (M, M) similarity."""
    from rsatoolbox.rdm import compare

    return compare(rdms, rdms, method=RSATOOLBOX_METHODS[method])


def rsatoolbox_dual_bootstrap(subjects: np.ndarray, models: dict, n_boot: int):
    """rsatoolbox's two-factor bootstrap evaluation of fixed model RDMs against the subjects'."""
    import rsatoolbox
    from rsatoolbox.inference import eval_dual_bootstrap

    fixed = [rsatoolbox.model.ModelFixed(name, rsatoolbox.rdm.RDMs(rdm[None])) for name, rdm in models.items()]
    np.random.seed(0)
    return eval_dual_bootstrap(fixed, rsatoolbox.rdm.RDMs(subjects), method="spearman", N=n_boot)


# ---- RV / RV2 ----

def hoggorm_rv(X: np.ndarray, Y: np.ndarray, modified: bool = False) -> float:
    """hoggorm's RV (or RV2) of the column-centred matrices, as its documentation prescribes."""
    import hoggorm

    Xc = X - X.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    matrix = (hoggorm.RV2coeff if modified else hoggorm.RVcoeff)([Xc, Yc])
    return float(matrix[0, 1])


# ---- CCA family: plain NumPy references ----

def _inverse_sqrt(S: np.ndarray) -> np.ndarray:
    """S^-1/2 of a symmetric PSD matrix via the pseudo-inverse's eigen-decomposition."""
    values, vectors = np.linalg.eigh(np.linalg.pinv(S))
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def reference_cca(X: np.ndarray, Y: np.ndarray, epsilon: float = 0.0) -> dict:
    """Canonical correlations of X (N, Dx) and Y (N, Dy), the svcca way.

    Returns the correlations ``s`` (descending, min(Dx', Dy')), the left/right singular
    vectors of Sxx^-1/2 Sxy Syy^-1/2 and which neurons were kept (variance >= epsilon).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    dx = X.shape[1]
    joint = np.cov(X.T, Y.T)
    sxx, sxy, syy = joint[:dx, :dx], joint[:dx, dx:], joint[dx:, dx:]
    xscale, yscale = np.abs(sxx).max(), np.abs(syy).max()
    sxx, syy, sxy = sxx / xscale, syy / yscale, sxy / np.sqrt(xscale * yscale)
    keep_x = np.abs(np.diag(sxx)) >= epsilon
    keep_y = np.abs(np.diag(syy)) >= epsilon
    sxx = sxx[np.ix_(keep_x, keep_x)] + epsilon * np.eye(keep_x.sum())
    syy = syy[np.ix_(keep_y, keep_y)] + epsilon * np.eye(keep_y.sum())
    sxy = sxy[np.ix_(keep_x, keep_y)]
    u, s, vt = np.linalg.svd(_inverse_sqrt(sxx) @ sxy @ _inverse_sqrt(syy))
    return {"s": np.abs(s), "u": u, "vt": vt, "keep_x": keep_x, "keep_y": keep_y}


def reference_cca_mean(X: np.ndarray, Y: np.ndarray) -> float:
    """Mean of all min(Dx, Dy) canonical correlations."""
    return float(reference_cca(X, Y)["s"].mean())


def _top_directions(X: np.ndarray, keep: float) -> np.ndarray:
    """X centred and projected on its fewest singular directions holding ``keep`` of the variance."""
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    fraction = np.cumsum(S**2) / np.sum(S**2)
    k = int(np.searchsorted(fraction, keep) + 1)
    return U[:, :k] * S[:k]


def reference_svcca(X: np.ndarray, Y: np.ndarray, keep: float = 0.99) -> float:
    """SVCCA: each side reduced by SVD to ``keep`` of its variance, then the mean CCA."""
    return reference_cca_mean(_top_directions(X, keep), _top_directions(Y, keep))


def reference_pwcca(X: np.ndarray, Y: np.ndarray, epsilon: float = 0.0) -> float:
    """Projection-weighted CCA as google/svcca's ``compute_pwcca`` defines it.

    With U S V^T the SVD above, the narrower side's directions are U^T (X - mu)^T + mu,
    orthonormalised by QR into P; weight_i = sum_j |<P_i, x_j>| over that side's uncentred
    neuron columns x_j, normalised to sum 1; PWCCA = sum_i weight_i s_i. (The reference code
    uses X's activations for Y's side by mistake; here each side uses its own.)
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    result = reference_cca(X, Y, epsilon)
    if result["keep_x"].sum() <= result["keep_y"].sum():
        acts, coefficients = X[:, result["keep_x"]], result["u"].T
    else:
        acts, coefficients = Y[:, result["keep_y"]], result["vt"]
    mean = acts.mean(axis=0)
    directions = coefficients @ (acts - mean).T + mean[:, None]  # (k, N)
    P, _ = np.linalg.qr(directions.T)
    weights = np.abs(P.T @ acts).sum(axis=1)
    weights = weights / weights.sum()
    return float(np.sum(weights * result["s"]))


# ---- layer grids and forward passes ----

def torch_cka_grid(model_a, model_b, images, layers_a, layers_b, batch_size: int,
                   double: bool = False) -> np.ndarray:
    """torch-cka's ``CKA.compare`` grid, rows and columns in the order of ``layers_a``/``layers_b``.

    It hooks the models for good, so it gets its own copies. Its estimator is the unbiased
    (debiased) HSIC per minibatch, averaged over batches: with one batch of all images it is
    debiased linear CKA on the full set. ``double`` runs it all in float64.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from torch_cka import CKA

    model_a, model_b = copy.deepcopy(model_a), copy.deepcopy(model_b)
    dtype = torch.float64 if double else torch.float32
    model_a.to(dtype), model_b.to(dtype)
    loader = DataLoader(TensorDataset(images.to(dtype)), batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cka = CKA(model_a, model_b, "model_a", "model_b", model1_layers=list(layers_a),
                  model2_layers=list(layers_b), device="cpu")
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # its HSIC builds float32 ones vectors otherwise
        try:
            cka.compare(loader, loader)
        finally:
            torch.set_default_dtype(previous)
    grid = cka.export()["CKA"].double().numpy()
    # Rows follow the order the hooks first fired in, not the requested order.
    rows = [list(cka.model1_features).index(name) for name in layers_a]
    cols = [list(cka.model2_features).index(name) for name in layers_b]
    return grid[np.ix_(rows, cols)]


def bare_forward(model, images, batch_size: int, channels_last: bool = False, device: str = "cpu") -> int:
    """A forward pass over all images in batches, keeping nothing: the extraction baseline.
    On a GPU (the model already there) each batch is moved over and the call ends synchronised."""
    import torch

    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(device)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            model(batch)
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    if device != "cpu":
        torch.cuda.synchronize()
    return len(images)


# ---- MDS ----

def sklearn_mds(D: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-learn metric SMACOF on the precomputed matrix, classical start, one run."""
    from sklearn.manifold import MDS

    return MDS(n_components=2, metric="precomputed", init="classical_mds", n_init=1,
               random_state=seed, normalized_stress=False).fit_transform(D)


def numpy_classical_mds(D: np.ndarray) -> np.ndarray:
    """Torgerson scaling with a full ``numpy.linalg.eigh`` (the textbook notebook version)."""
    n = D.shape[0]
    J = np.eye(n) - 1.0 / n
    B = -0.5 * J @ (D**2) @ J
    values, vectors = np.linalg.eigh(B)
    return vectors[:, -2:][:, ::-1] * np.sqrt(np.clip(values[-2:][::-1], 0, None))
