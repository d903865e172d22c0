"""How the reference implementations name our measures: rsatoolbox's names of the RDM comparisons."""

RSATOOLBOX_NAMES = {
    "spearman": "spearman",
    "pearson": "corr",
    "kendall_tau_a": "tau-a",
    "rho_a": "rho-a",
    "cosine": "cosine",
}
# Every RDM comparison: those rsatoolbox has, and the two distances it does not.
METHODS = list(RSATOOLBOX_NAMES) + ["euclidean", "manhattan"]
