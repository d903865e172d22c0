"""The long loops of the measures ask a job's cancel flag between their batches: a bootstrap
per batch of resamples, a layer grid per layer and pair, SRM per update."""
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from compute.errors import Cancelled
from compute.measures import stats
from compute.measures.similarity import layer_grid
from compute.measures.srm import fit_srm


class StopAfter:
    """A cancel flag that goes up at its ``n``-th question; counts the questions."""

    def __init__(self, n: int):
        self.n, self.asked = n, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.n


def rdms(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pdist(rng.normal(size=(n, 5))), pdist(rng.normal(size=(n, 5)))


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a"])
def test_bootstrap_stops_at_the_batch_after_the_flag(method, monkeypatch):
    a, b = rdms()
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 10 * len(a))  # batches of 10 resamples
    flag = StopAfter(2)
    with pytest.raises(Cancelled):
        stats.bootstrap(a, b, method, n_boot=50, should_stop=flag)
    assert flag.asked == 2
    never = StopAfter(10**9)  # asked once per batch (per resample for Kendall's tau) when not cancelled
    stats.bootstrap(a, b, method, n_boot=50, should_stop=never)
    assert never.asked == (50 if method == "kendall_tau_a" else 5)


@pytest.mark.parametrize("measure", ["cka_linear", "cka_rbf", "procrustes", "cca_mean"])
def test_layer_grid_stops_between_layers_and_pairs(measure):
    rng = np.random.default_rng(1)
    acts = {f"l{i}": rng.normal(size=(30, 6)) for i in range(4)}
    flag = StopAfter(3)
    with pytest.raises(Cancelled):
        layer_grid(acts, dict(acts), measure=measure, should_stop=flag)
    assert flag.asked == 3


def test_srm_stops_between_updates():
    rng = np.random.default_rng(2)
    Xs = [rng.normal(size=(30, 8)) for _ in range(3)]
    flag = StopAfter(4)
    with pytest.raises(Cancelled):
        fit_srm(Xs, 3, n_iter=10, should_stop=flag)
    assert flag.asked == 4
