"""The measures by name, with their facts: one table per family, read by the API, the UI and the docs.

A name is the same in the API, the URL, the UI and cache keys. This module imports neither torch nor
scipy, so the web process can show the vocabulary without loading the numerics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Measure:
    """Facts about one measure that the UI and the docs show.

    ``kind`` is ``"similarity"`` (higher = more alike) or ``"distance"`` (lower = more alike);
    ``range`` is the closed interval of values it can take; ``invariances`` names the
    transformations of the inputs that leave it unchanged; ``symmetric`` is False where the
    order of the two inputs matters (X predicts Y, or one side's units weigh); ``title`` is its
    name in words (the UI's option text) and ``citation`` where it comes from (or that it has no
    one source).
    """

    name: str
    kind: str
    range: tuple[float, float]
    invariances: tuple[str, ...] = ()
    description: str = ""
    symmetric: bool = True
    title: str = ""
    citation: str = ""

    @property
    def direction(self) -> str:
        """Which way is alike, in words: "higher = more alike" or "lower = more alike"."""
        return f"{'higher' if self.kind == 'similarity' else 'lower'} = more alike"


RDM_METHODS: dict[str, Measure] = {
    "correlation": Measure(
        "correlation", "distance", (0.0, 2.0),
        ("scaling and offset of each pattern",),
        "1 - Pearson correlation between two stimuli's activation patterns",
        title="1 − Pearson correlation", citation="Kriegeskorte, Mur & Bandettini 2008",
    ),
    "cosine": Measure(
        "cosine", "distance", (0.0, 2.0), ("scaling of each pattern",),
        "1 - cosine similarity between two stimuli's activation patterns",
        title="1 − cosine similarity", citation="Bobadilla-Suarez et al. 2020",
    ),
    "euclidean": Measure(
        "euclidean", "distance", (0.0, float("inf")),
        ("translation", "orthogonal transforms of the features"),
        "Euclidean distance between activation patterns",
        title="Euclidean distance", citation="Walther et al. 2016",
    ),
    "sqeuclidean": Measure(
        "sqeuclidean", "distance", (0.0, float("inf")),
        ("translation", "orthogonal transforms of the features"),
        "squared Euclidean distance between activation patterns",
        title="Squared Euclidean distance", citation="Diedrichsen & Kriegeskorte 2017",
    ),
    "spearman": Measure(
        "spearman", "distance", (0.0, 2.0), ("monotone transforms of each pattern",),
        "1 - Spearman rank correlation between activation patterns (ranks over features)",
        title="1 − Spearman correlation", citation="Spearman 1904 (rank correlation)",
    ),
}


# RDMs of repeated measurements (R, N, D) with a noise precision: the API's, not the views' (the
# views' activations have one pattern per stimulus).
REPEATED_RDM_METHODS: dict[str, Measure] = {
    "crossnobis": Measure(
        "crossnobis", "distance", (-float("inf"), float("inf")), ("invertible linear maps of the channels, "
                                                                "with the noise precision mapped alike",),
        "cross-validated squared Mahalanobis distance (Walther et al. 2016): the difference of two "
        "stimuli in one run against the other runs' mean, whitened by the noise precision, per "
        "channel; unbiased, so 0 on average for identical stimuli (entries can be negative)",
        title="Crossnobis distance", citation="Walther et al. 2016",
    ),
    "mahalanobis": Measure(
        "mahalanobis", "distance", (0.0, float("inf")), ("invertible linear maps of the channels, "
                                                         "with the noise precision mapped alike",),
        "squared Mahalanobis distance of the patterns averaged over repeats, whitened by the noise "
        "precision, per channel; biased upwards by the noise",
        title="Squared Mahalanobis distance", citation="Mahalanobis 1936; Walther et al. 2016",
    ),
}


COMPARE_METHODS: dict[str, Measure] = {
    "spearman": Measure(
        "spearman", "similarity", (-1.0, 1.0), ("monotone transforms of either RDM",),
        "Spearman rank correlation: Pearson r of the average ranks (rsatoolbox 'spearman')",
        title="Spearman ρ", citation="Spearman 1904; Kriegeskorte, Mur & Bandettini 2008",
    ),
    "pearson": Measure(
        "pearson", "similarity", (-1.0, 1.0), ("positive affine transforms of either RDM",),
        "Pearson correlation of the dissimilarities (rsatoolbox 'corr')",
        title="Pearson r", citation="Kriegeskorte, Mur & Bandettini 2008",
    ),
    "kendall_tau_a": Measure(
        "kendall_tau_a", "similarity", (-1.0, 1.0), ("monotone transforms of either RDM",),
        "Kendall's tau-a: (concordant - discordant pairs) / (K(K-1)/2), ties not corrected "
        "(rsatoolbox 'tau-a')",
        title="Kendall τ-a", citation="Kendall 1938; recommended for RSA by Nili et al. 2014",
    ),
    "tau_b": Measure(
        "tau_b", "similarity", (-1.0, 1.0), ("monotone transforms of either RDM",),
        "Kendall's tau-b: (concordant - discordant pairs), corrected for the ties of each RDM "
        "(rsatoolbox 'tau-b', scipy kendalltau)",
        title="Kendall τ-b", citation="Kendall 1945",
    ),
    "rho_a": Measure(
        "rho_a", "similarity", (-1.0, 1.0), ("monotone transforms of either RDM",),
        "Spearman's rho-a: 12 sum of centred average-rank products / (K^3 - K), ties not "
        "corrected (rsatoolbox 'rho-a')",
        title="Spearman ρ-a", citation="Schütt et al. 2023",
    ),
    "cosine": Measure(
        "cosine", "similarity", (-1.0, 1.0), ("positive scaling of either RDM",),
        "cosine similarity of the dissimilarity vectors (rsatoolbox 'cosine')",
        title="Cosine similarity", citation="Schütt et al. 2023 (rsatoolbox)",
    ),
    "cosine_cov": Measure(
        "cosine_cov", "similarity", (-1.0, 1.0), ("positive scaling of either RDM",),
        "whitened cosine (Diedrichsen et al. 2021; rsatoolbox 'cosine_cov'): the cosine of the "
        "double-centred second-moment matrices, weighing the dissimilarities by the inverse of "
        "their covariance",
        title="Whitened cosine", citation="Diedrichsen et al. 2021",
    ),
    "corr_cov": Measure(
        "corr_cov", "similarity", (-1.0, 1.0), ("positive affine transforms of either RDM",),
        "whitened correlation (Diedrichsen et al. 2021; rsatoolbox 'corr_cov'): the whitened "
        "cosine after subtracting each RDM's mean dissimilarity",
        title="Whitened correlation", citation="Diedrichsen et al. 2021",
    ),
    "euclidean": Measure(
        "euclidean", "distance", (0.0, float("inf")), (),
        "Euclidean distance between the dissimilarity vectors; keeps magnitudes",
        title="Euclidean distance", citation="the Euclidean norm of the difference (no RSA-specific source)",
    ),
    "manhattan": Measure(
        "manhattan", "distance", (0.0, float("inf")), (),
        "sum of absolute differences between the dissimilarity vectors; keeps magnitudes",
        title="Manhattan distance", citation="the L1 norm of the difference (no RSA-specific source)",
    ),
}


_LINEAR_SHIFT = ("orthogonal", "isotropic scaling", "translation")

MEASURES: dict[str, Measure] = {
    "cka_linear": Measure(
        "cka_linear", "similarity", (0.0, 1.0), _LINEAR_SHIFT,
        "Linear centred kernel alignment (Kornblith et al. 2019): HSIC of the linear kernels, "
        "normalised; equals RV on column-centred data",
        title="Linear CKA", citation="Kornblith et al. 2019",
    ),
    "cka_debiased": Measure(
        "cka_debiased", "similarity", (-1.0, 1.0), _LINEAR_SHIFT,
        "Linear CKA from the unbiased HSIC estimator (Song et al. 2012); near 0 for unrelated "
        "data at any N (can be slightly negative); needs N >= 4",
        title="Debiased linear CKA", citation="Song et al. 2012; Kornblith et al. 2019",
    ),
    "cka_rbf": Measure(
        "cka_rbf", "similarity", (0.0, 1.0), _LINEAR_SHIFT,
        "CKA with RBF kernels exp(-d^2 / 2 sigma^2), sigma^2 = threshold^2 x median squared "
        "distance (option threshold, default 1.0)",
        title="RBF CKA", citation="Kornblith et al. 2019",
    ),
    "rv": Measure(
        "rv", "similarity", (0.0, 1.0), _LINEAR_SHIFT,
        "RV coefficient (Robert & Escoufier 1976) of the column-centred data; tends to 1 for "
        "unrelated data when features outnumber stimuli",
        title="RV coefficient", citation="Robert & Escoufier 1976",
    ),
    "rv2": Measure(
        "rv2", "similarity", (-1.0, 1.0), _LINEAR_SHIFT,
        "Modified RV (Smilde et al. 2009): RV with the diagonals of XX' and YY' removed, on "
        "column-centred data; near 0 for unrelated data, can be negative",
        title="Modified RV", citation="Smilde et al. 2009",
    ),
    "cca_mean": Measure(
        "cca_mean", "similarity", (0.0, 1.0), ("invertible linear", "translation"),
        "Mean canonical correlation; directions without variance (constant or collinear "
        "features) are dropped first",
        title="Mean CCA", citation="Hotelling 1936; Raghu et al. 2017",
    ),
    "svcca": Measure(
        "svcca", "similarity", (0.0, 1.0), _LINEAR_SHIFT,
        "SVCCA (Raghu et al. 2017): each side reduced to the fewest singular directions holding "
        "a fraction `keep` (default 0.99) of its variance, then mean canonical correlation; "
        "constant units dropped",
        title="SVCCA", citation="Raghu et al. 2017",
    ),
    "pwcca": Measure(
        "pwcca", "similarity", (0.0, 1.0), ("isotropic scaling",),
        "Projection-weighted CCA (Morcos et al. 2018) exactly as google/svcca compute_pwcca with "
        "the narrower layer first, in either argument order (the first layer's neurons weigh "
        "when widths are equal); constant units dropped",
        symmetric=False,
        title="PWCCA", citation="Morcos, Raghu & Bengio 2018",
    ),
    "procrustes": Measure(
        "procrustes", "distance", (0.0, math.pi / 2), _LINEAR_SHIFT,
        "Angular orthogonal-Procrustes shape distance (Williams et al. 2021), in radians: "
        "arccos of the nuclear norm of X'Y on centred, unit-norm data",
        title="Procrustes shape distance", citation="Williams et al. 2021",
    ),
    "shape_alpha": Measure(
        "shape_alpha", "distance", (0.0, math.pi / 2), _LINEAR_SHIFT,
        "Generalised shape metric (Williams et al. 2021): angular Procrustes distance between "
        "partially whitened layers, alpha x data + (1 - alpha) x whitened data, each at unit norm "
        "(option alpha in [0, 1], default 0.5; 1 = procrustes, 0 = the CCA angle); a metric",
        title="Generalised shape metric", citation="Williams et al. 2021",
    ),
    "permutation": Measure(
        "permutation", "distance", (0.0, math.pi / 2), ("permutation of units", "isotropic scaling", "translation"),
        "Angular distance after the best one-to-one matching of units (Williams et al. 2021, "
        "netrep PermutationMetric with both layers zero-padded to D_x + D_y): arccos of the "
        "largest <X, Y Pi> on centred, unit-norm data, a unit may stay unmatched; a metric",
        title="Permutation shape distance", citation="Williams et al. 2021",
    ),
    "cca_rho_top": Measure(
        "cca_rho_top", "similarity", (0.0, 1.0), ("invertible linear", "translation"),
        "Largest canonical correlation (Hotelling 1936) between the centred column spaces; "
        "directions without variance dropped first",
        title="Top canonical correlation", citation="Hotelling 1936",
    ),
    "linear_reg": Measure(
        "linear_reg", "similarity", (0.0, 1.0),
        ("invertible linear maps of X", "orthogonal maps and isotropic scaling of Y", "translation"),
        "R^2 of the least-squares fit of Y from X (Kornblith et al. 2019's baseline): "
        "||Q_X' Y_c||^2 / ||Y_c||^2; X predicts Y (not symmetric); 1 whenever X spans N - 1 directions",
        symmetric=False,
        title="Linear regression R²", citation="Kornblith et al. 2019",
    ),
    "dcor": Measure(
        "dcor", "similarity", (0.0, 1.0), _LINEAR_SHIFT,
        "Distance correlation (Szekely et al. 2007): the distance covariance of the Euclidean "
        "distance matrices, normalised, square-rooted (dcor.distance_correlation); 0 only for "
        "independent data in the limit",
        title="Distance correlation", citation="Székely, Rizzo & Bakirov 2007",
    ),
    "mutual_knn": Measure(
        "mutual_knn", "similarity", (0.0, 1.0),
        ("orthogonal", "positive scaling of each stimulus"),
        "Mutual k-NN alignment (Huh et al. 2024): mean fraction of a stimulus's k nearest "
        "neighbours (cosine similarity, option k, default 10) shared by both layers",
        title="Mutual k-NN", citation="Huh et al. 2024",
    ),
    "jaccard_knn": Measure(
        "jaccard_knn", "similarity", (0.0, 1.0),
        ("orthogonal", "positive scaling of each stimulus"),
        "k-NN Jaccard similarity: mean over stimuli of |shared| / |union| of the two layers' k "
        "nearest neighbours (cosine similarity, option k, default 10)",
        title="k-NN Jaccard", citation="Klabunde et al. 2023 (survey)",
    ),
    "cknna": Measure(
        "cknna", "similarity", (-1.0, 1.0),
        ("orthogonal", "positive scaling of each stimulus"),
        "Centred kernel nearest-neighbour alignment (Huh et al. 2024, the paper's formula): CKA "
        "of the cosine kernels, row-centred, summed only over pairs that are k nearest neighbours "
        "in both layers (option k, default 10)",
        title="CKNNA", citation="Huh et al. 2024",
    ),
    "ridge_r": Measure(
        "ridge_r", "similarity", (-1.0, 1.0),
        ("orthogonal maps of X", "isotropic scaling", "translation"),
        "Neural predictivity (Schrimpf et al. 2018): cross-validated ridge regression from X to Y "
        "(options folds 5, seed 0; penalty by GCV), median over Y units of the held-out Pearson r; "
        "X predicts Y (not symmetric)",
        symmetric=False,
        title="Ridge predictivity", citation="Schrimpf et al. 2018",
    ),
    "pls_r": Measure(
        "pls_r", "similarity", (-1.0, 1.0),
        ("orthogonal maps of X", "isotropic scaling", "translation"),
        "Neural predictivity with PLS regression (Brain-Score; options components 25, folds 5, "
        "seed 0): median over Y units of the held-out Pearson r; X predicts Y (not symmetric)",
        symmetric=False,
        title="PLS predictivity", citation="Schrimpf et al. 2018 (Brain-Score)",
    ),
}

# The measures whose permutation null permutes a kernel once per Y layer and meets every X layer in
# one GEMM (compute/measures/nulls.py); the others prepare Y again per permutation. Read by the
# engine's time estimates too.
KERNEL_NULL_MEASURES = ("cka_linear", "cka_debiased", "cka_rbf", "rv", "rv2", "dcor")
# The RDM comparisons whose model-RDM null is batched (compute/measures/nulls.py model_rdm_null):
# prepared rows whose dot products are the comparison (euclidean from them and the norms).
NULL_COMPARE_METHODS = ("spearman", "pearson", "rho_a", "cosine", "cosine_cov", "corr_cov", "euclidean")

@dataclass(frozen=True)
class Method:
    """A method that is not a measure (an embedding): its name in words, definition, source."""

    title: str
    description: str
    citation: str


MDS_METHODS: dict[str, Method] = {
    "classical": Method("Classical MDS", "Torgerson scaling: the top eigenvectors of the double-centred "
                        "-D^2/2; exact for Euclidean distances", "Torgerson 1952"),
    "smacof": Method("Metric MDS (SMACOF)", "metric MDS minimising raw stress (scikit-learn's SMACOF), "
                     "started from the classical solution", "de Leeuw 1977"),
}

# Per-layer descriptors (compute.dimensionality): each method's number in words (higher = more
# dimensions used).
DIMENSIONALITY_METHODS: dict[str, str] = {
    "participation_ratio": "participation ratio (effective number of dimensions)",
    "effective_rank": "effective rank (exp of the singular values' entropy)",
}
