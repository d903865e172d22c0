"""How the reference implementations name our measures: rsatoolbox's names of the RDM comparisons."""

RSATOOLBOX_NAMES = {
    "spearman": "spearman",
    "pearson": "corr",
    "kendall_tau_a": "tau-a",
    "tau_b": "tau-b",
    "rho_a": "rho-a",
    "cosine": "cosine",
}
# Every RDM comparison on vectors of dissimilarities: those rsatoolbox has, and the two distances
# it does not (the whitened ones, which need the RDM's stimuli, are in test_repeated_rdms.py).
METHODS = list(RSATOOLBOX_NAMES) + ["euclidean", "manhattan"]
WHITENED_NAMES = {"cosine_cov": "cosine_cov", "corr_cov": "corr_cov"}
