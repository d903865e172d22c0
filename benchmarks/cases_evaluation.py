"""Model evaluation: M candidate RDMs against S subjects' RDMs over the Kriegeskorte 2008 shape
(92 stimuli, 4 subjects), two-factor bootstrap; RepScope vs rsatoolbox ``eval_dual_bootstrap``."""
from __future__ import annotations

import numpy as np

from benchmarks import peers
from benchmarks.harness import Case, Prepared


def reference_and_models(m: int, s: int = 4, n: int = 92, seed: int = 0) -> tuple[np.ndarray, dict]:
    """(S, K) subjects' RDMs sharing a structure, and M models: mixtures of it and noise."""
    rng = np.random.default_rng(seed)
    k = n * (n - 1) // 2
    shared = rng.random(k)
    subjects = shared + rng.random((s, k))
    weights = rng.random(m)
    return subjects, {f"model {i}": weights[i] * shared + rng.random(k) for i in range(m)}


def evaluation_case(m: int, n_boot: int, s: int = 4, n: int = 92) -> Case:
    k = n * (n - 1) // 2

    def prepare(quick: bool) -> Prepared:
        import compute

        evaluate_models = compute.evaluate_models
        subjects, models = reference_and_models(m, s, n)
        return Prepared(
            repscope=lambda: evaluate_models(subjects, models, "spearman", n_boot=n_boot),
            peers={"rsatoolbox": lambda: peers.rsatoolbox_dual_bootstrap(subjects, models, n_boot)},
            notes=["the peer draws other resamples: times only (agreement on the same draws: "
                   "tests/unit/test_evaluation.py, 1e-9)"],
        )

    # rsatoolbox compares each model with the resampled subjects three times per resample.
    return Case(
        "evaluation", f"spearman dual bootstrap M={m} S={s} N={n} n_boot={n_boot}", prepare, ("rsatoolbox",),
        cost={"rsatoolbox": ("rsatoolbox/eval_dual_bootstrap", float(n_boot) * (m + s) * k)},
        target="peer10" if n_boot >= 100 else None, timeout_s=900,
    )


def cases(quick: bool) -> list[Case]:
    # The first row measures rsatoolbox at a few resamples; the second's peer time is scaled from it.
    return [evaluation_case(20 if quick else 100, 4), evaluation_case(20 if quick else 100, 100 if quick else 1000)]
