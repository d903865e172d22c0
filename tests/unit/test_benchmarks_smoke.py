"""The benchmark harness at toy sizes: it runs, renders its table, and RepScope agrees with peers.

Agreement only: no test here looks at a wall-clock time.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import harness, peers
from benchmarks.cases_mds import mds_case
from benchmarks.cases_model_rdm import model_rdm_case
from benchmarks.cases_rdm import rdm_case
from benchmarks.cases_similarity import similarity_case
from benchmarks.harness import Case, Prepared


def toy_case() -> Case:
    def prepare(quick):
        values = np.arange(100.0)
        return Prepared(repscope=lambda: values.sum(), peers={"python": lambda: float(sum(values.tolist()))},
                        agree=lambda rep, name, res: rep - res, notes=["toy"])

    return Case("toy", "sum of 100 numbers", prepare, ("python",), target="peer10",
                gemm=(2.0 * 8 * 8 * 8, (8, 8, 8)))


def test_harness_runs_a_trivial_case_and_renders_its_row():
    record = harness.run_case(toy_case(), quick=True, repeats=1)
    assert record["error"] is None
    assert record["repscope"]["n"] >= 1 and record["repscope"]["median"] >= 0
    assert record["peers"]["python"]["n"] >= 1
    assert record["agreement"] == {"python": 0.0}
    assert record["peak_bytes"] is not None and record["peak_bytes"] >= 0
    assert record["gemm"]["flops"] == 1024 and record["gemm"]["rate"] > 0
    record["target_kind"], record["tolerance"] = "peer10", 1e-5
    table = harness.render_group("toy", [record]).splitlines()
    assert table[2].startswith("| case | RepScope | python | GEMM frac | floor | peak mem |")
    row = table[4]
    assert row.startswith("| sum of 100 numbers | ") and row.count("|") == table[2].count("|")
    assert "python: 0" in row and "toy" in row
    assert harness.judge(record).startswith(("met", "missed"))


def test_rows_of_one_gemm_shape_share_its_measured_rate(monkeypatch):
    monkeypatch.setattr(harness, "_GEMM_RATES", {})
    harness._learn_rates([{"gemm": {"shape": [8, 8, 8], "rate": 123.0}}])
    assert harness._rates_argument() == ["--rates", "[[[8, 8, 8], 123.0]]"]
    record = harness.run_case(toy_case(), quick=True, repeats=1)
    assert record["gemm"]["rate"] == 123.0  # taken, not measured again


def test_targets_of_issue_20_floor_and_peers():
    """Small rows within 2x of their floor, every peer at least matched, 10x only over loops."""
    record = {"repscope": {"median": 1.0}, "peers": {"gemm": {"median": 1.5}, "loop": {"median": 20.0}},
              "agreement": {}, "gemm": {"seconds": 0.4}, "lapack_s": 0.2, "size": 1000,
              "floor_peers": ["gemm"], "target_kind": "kernel"}
    assert harness.judge(record) == "met"  # floor 0.6 s: within 2x; 1.5x a GEMM peer is enough
    record["size"] = 5000  # above SMALL_N the floor fraction must reach 0.7
    assert harness.judge(record) == "missed: floor frac 0.60 < 0.7"
    record["size"], record["peers"]["gemm"]["median"] = 1000, 0.8
    assert harness.judge(record) == "missed: slower than gemm (0.8x)"
    record["peers"]["gemm"]["median"], record["floor_peers"] = 1.5, []
    assert harness.judge(record) == "missed: 1.5x vs gemm < 10x"


def test_timing_summary_is_median_and_half_range():
    timing = harness.Timing.of([3.0, 1.0, 2.0, 10.0])
    assert timing.median == 2.5 and timing.spread == 4.5 and timing.n == 4


def test_a_slow_peer_is_skipped_with_a_proportional_estimate():
    case = rdm_case("correlation", 10000, 2048)
    history = {"pdist/correlation": [(1000.0 * 1000 * 512, 1.5)]}
    skip = harness.plan_skips(case, history)
    assert set(skip) == {"pdist"}
    assert skip["pdist"]["estimate"] == pytest.approx(1.5 * 100 * 4)


def test_a_missing_measure_becomes_a_row_not_a_crash():
    def prepare(quick):
        raise ImportError("compute.measures.nothing")

    record = harness.run_case(Case("toy", "missing", prepare), quick=True, repeats=1)
    assert record["error"].startswith("not available")
    record["target_kind"] = "kernel"
    assert "**not available" in harness.render_group("toy", [record])
    assert harness.judge(record) == "missed: not measured"


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_rdm_agrees_with_pdist_sklearn_and_rsatoolbox(method):
    record = harness.run_case(rdm_case(method, 50, 16), quick=True, repeats=1)
    assert record["error"] is None
    assert set(record["agreement"]) == {"pdist", "sklearn", "rsatoolbox"}
    assert max(record["agreement"].values()) < 1e-5


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a"])
def test_model_rdm_agrees_with_rsatoolbox(method):
    record = harness.run_case(model_rdm_case(method, 4, 12), quick=True, repeats=1)
    assert record["error"] is None
    assert record["agreement"]["rsatoolbox"] < 1e-5


@pytest.mark.parametrize("measure", ["rv", "rv2", "cca_mean", "svcca", "pwcca"])
def test_similarity_agrees_with_hoggorm_and_the_svcca_references(measure):
    record = harness.run_case(similarity_case(measure, 50, 8), quick=True, repeats=1)
    assert record["error"] is None
    assert record["agreement"] and max(record["agreement"].values()) < 1e-5
    if measure in ("cca_mean", "svcca", "pwcca"):  # the floor counts its float64 LAPACK
        assert record["lapack_s"] > 0
        assert harness.floor_seconds(record) == record["gemm"]["seconds"] + record["lapack_s"]


def test_classical_mds_matches_the_textbook_version():
    record = harness.run_case(mds_case("classical", 50), quick=True, repeats=1)
    assert record["error"] is None
    assert record["agreement"]["numpy eigh"] < 1e-8


def test_rv_references_agree_with_each_other():
    """hoggorm's RV of centred data is linear CKA; the CCA references agree on a known case."""
    X = peers.activations(50, 8, seed=0).astype(np.float64)
    Y = peers.related(X.astype(np.float32), seed=1).astype(np.float64)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    cka = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert peers.hoggorm_rv(X, Y) == pytest.approx(cka, abs=1e-12)
    # An invertible linear map leaves every canonical correlation at 1.
    M = np.random.default_rng(2).standard_normal((8, 8))
    assert peers.reference_cca_mean(X, X @ M) == pytest.approx(1.0, abs=1e-8)
    assert peers.reference_pwcca(X, X @ M) == pytest.approx(1.0, abs=1e-8)


def test_slow_peers_are_timed_fewer_times():
    """Self-timed calls make the repeat policy testable without a clock."""
    _, timing = harness.measure(lambda: 3.0, self_timed=True, peer=True)
    assert timing.n == 2
    _, timing = harness.measure(lambda: 6.0, self_timed=True, peer=True)
    assert timing.n == 1
    _, timing = harness.measure(lambda: 6.0, self_timed=True)
    assert timing.n == 3


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_kendall_matrix_equals_scipy_per_pair(seed):
    """The benchmarked tau-a path (sort once per RDM) against scipy's kendalltau, ties included."""
    from compute.measures import compare

    rng = np.random.default_rng(seed)
    V = np.vstack([rng.integers(0, 6, (3, 200)), rng.random((2, 200)) * 4 // 1]).astype(np.float64)
    np.testing.assert_allclose(compare._kendall_matrix(V), compare._kendall_matrix_scipy(V), atol=1e-12)


def test_the_ridge_r_grid_row_runs_and_is_judged_against_the_linear_cka_grid():
    from benchmarks.cases_layer_grid import encoding_case

    case = encoding_case(60)
    record = harness.run_case(case, quick=True, repeats=1)
    assert record["error"] is None
    assert record["peers"]["cka_linear-grid"]["n"] >= 1
    record["target_kind"] = case.target
    assert harness.judge(record).startswith(("met", "missed"))
