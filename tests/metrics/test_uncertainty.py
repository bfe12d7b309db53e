"""Bootstrap intervals of percentiles: the fast order-statistic draw equals resampling, coverage, withholding."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from harness.metrics import summarize
from harness.metrics.uncertainty import (MIN_COUNT, TOO_FEW, bootstrap_replicates, percentile_interval,
                                         percentile_intervals, separated)

MU, SIGMA = math.log(600.0), 0.3    # a log-normal latency around 600 ms, like the simulator's


def _true_percentile(q: float) -> float:
    return math.exp(MU + SIGMA * NormalDist().inv_cdf(q / 100))


@pytest.mark.parametrize("n,q", [(7, 50), (40, 95), (40, 99), (200, 90), (31, 37.5)])
def test_the_order_statistic_draw_has_the_distribution_of_resampling_with_replacement(n: int, q: float) -> None:
    rng = np.random.default_rng(3)
    sample = np.sort(rng.lognormal(6, 0.4, n))
    fast = bootstrap_replicates(sample, q, 20_000, seed=1)
    brute = np.percentile(sample[rng.integers(0, n, (20_000, n))], q, axis=1)
    grid = np.quantile(np.concatenate([fast, brute]), np.linspace(0, 1, 201))
    distance = max(abs(float((fast <= g).mean() - (brute <= g).mean())) for g in grid)
    # two-sample Kolmogorov-Smirnov critical distance at alpha = 0.001 for 20,000 + 20,000 draws
    assert distance < 1.95 * math.sqrt(2 / 20_000)


# (q, n): the sizes at which the percentile bootstrap reaches its nominal coverage for that
# percentile (README, Uncertainty: below them the tails cover less, measured and documented).
@pytest.mark.parametrize("q,n", [(50, 30), (50, 200), (90, 300), (95, 300), (99, 1000)])
def test_the_95_percent_interval_covers_the_true_percentile_in_about_95_percent_of_samples(q: float, n: int) -> None:
    truth = _true_percentile(q)
    rng = np.random.default_rng(int(q * 1000 + n))
    trials = 600
    covered = 0
    for trial in range(trials):
        interval = percentile_interval(rng.lognormal(MU, SIGMA, n), q, resamples=1000, seed=trial)
        assert interval is not None
        covered += interval[0] <= truth <= interval[1]
    # 600 trials: a binomial standard error of 0.9 points at 95 %; the percentile bootstrap of a
    # quantile is also off by O(1/sqrt(n)) (a little under for tails): 0.90..0.985 allows both.
    assert 0.90 <= covered / trials <= 0.985


def test_the_same_values_always_give_the_same_interval() -> None:
    values = np.random.default_rng(5).lognormal(MU, SIGMA, 80)
    assert percentile_interval(values, 95) == percentile_interval(list(values), 95)
    shuffled = np.random.default_rng(6).permutation(values)
    assert percentile_interval(shuffled, 95) == percentile_interval(values, 95)


def test_an_interval_holds_its_point_and_widens_with_the_level() -> None:
    values = np.random.default_rng(7).lognormal(MU, SIGMA, 120)
    point = float(np.percentile(values, 90))
    narrow, wide = percentile_interval(values, 90, level=0.8), percentile_interval(values, 90, level=0.99)
    assert narrow is not None and wide is not None
    assert wide[0] <= narrow[0] <= point <= narrow[1] <= wide[1]


def test_p95_and_p99_are_withheld_below_30_values_and_p50_below_10() -> None:
    assert MIN_COUNT == {50: 10, 90: 30, 95: 30, 99: 30}
    block = percentile_intervals(list(np.linspace(100, 200, 29)))
    assert block["p50"] is not None and block["p95"] is None and block["p99"] is None and block["p90"] is None
    assert block["withheld"]["p95"] == f"{TOO_FEW} (n=29 < 30)"
    full = percentile_intervals(list(np.linspace(100, 200, 30)))
    assert all(full[p] is not None for p in ("p50", "p90", "p95", "p99")) and "withheld" not in full
    assert percentile_intervals([1.0] * 9)["p50"] is None and percentile_intervals([1.0] * 10)["p50"] == [1.0, 1.0]
    assert percentile_intervals([])["p50"] is None and "withheld" not in percentile_intervals([])


def test_every_percentile_in_the_summary_has_its_interval_overall_and_by_group() -> None:
    rng = np.random.default_rng(8)
    records = [{"scenario": "plain" if i % 4 else "barge_in", "format": "pcm16", "dialect": "ga", "utterance": "u",
                "status": "ok", "ttfa_ms": float(v), "vad_commit_ms": None} for i, v in enumerate(rng.lognormal(MU, SIGMA, 100))]
    summary = summarize(records)
    ttfa = summary["metrics"]["ttfa_ms"]
    for p in ("p50", "p90", "p95", "p99"):
        low, high = ttfa["ci"][p]
        assert low <= ttfa[p] <= high
    assert summary["uncertainty"]["level"] == 0.95 and "bootstrap" in summary["uncertainty"]["method"]
    assert summary["uncertainty"]["min_count"] == {"p50": 10, "p90": 30, "p95": 30, "p99": 30}
    barge = summary["by"]["scenario"]["barge_in"]["ttfa_ms"]
    assert barge["count"] == 25 and barge["ci"]["p95"] is None and barge["ci"]["p50"] is not None
    assert summary["metrics"]["vad_commit_ms"]["ci"]["p50"] is None


def test_intervals_separate_only_when_they_do_not_overlap() -> None:
    assert separated([1, 2], [3, 4]) == 1 and separated([3, 4], [1, 2]) == -1
    assert separated([1, 3], [2, 4]) == 0 and separated(None, [1, 2]) == 0


def test_the_mean_interval_covers_the_true_mean_in_about_95_percent_of_samples() -> None:
    from harness.metrics.uncertainty import mean_interval

    rng = np.random.default_rng(7)
    covered = 0
    trials = 300
    for _ in range(trials):
        sample = rng.normal(100.0, 15.0, 40)
        low, high = mean_interval(sample, resamples=500, seed=int(rng.integers(1 << 30)))
        covered += low <= 100.0 <= high
    assert 0.90 <= covered / trials <= 0.985
    assert mean_interval([5.0]) is None
