"""Figure builders on edge cases: big runs are reduced, empty metrics draw nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report.figures_latency import cdf_figure
from harness.report.load_history import UserHistory
from harness.report.report_load import MAX_SCATTER_POINTS, by_concurrency, latency_over_time_figure
from harness.report.stats import cdf_points, time_bins
from harness.report.synthetic import synthetic_records
from harness.report.turn_table import turns_frame


def test_a_cdf_of_many_values_keeps_at_most_400_exact_corners_with_exact_ends() -> None:
    values = np.random.default_rng(0).lognormal(6.5, 0.3, 50_000)
    x, y = cdf_points(values, max_points=400)
    assert len(x) <= 400 and x[0] == values.min() and x[-1] == values.max()
    assert y[0] == 1 / 50_000 and y[-1] == 1.0 and np.all(np.diff(x) > 0)
    assert np.array_equal(y, np.array([(values <= v).mean() for v in x]))


def test_a_small_cdf_keeps_every_value() -> None:
    x, y = cdf_points([3.0, 1.0, 2.0, float("nan")])
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [1 / 3, 2 / 3, 1.0]


def test_time_bins_hold_every_value_once() -> None:
    t = pd.Series(np.arange(1000, dtype=float))
    bins = time_bins(t, pd.Series(np.ones(1000)), min_count=100)
    assert bins["count"].sum() == 1000 and len(bins) == 10


def _records_history(turns: pd.DataFrame) -> UserHistory:
    return UserHistory(turns[["t_wall_s", "users"]].astype("float64").sort_values("t_wall_s"), "records", False)


def test_the_scatter_of_a_big_run_is_a_capped_sample() -> None:
    turns = turns_frame(synthetic_records(20_000, seed=4))
    fig = latency_over_time_figure(turns, "ttfa_ms", _records_history(turns), float(turns["t_wall_s"].min()))
    assert fig is not None and len(fig.data[0].x) == MAX_SCATTER_POINTS


def test_many_distinct_user_counts_are_grouped_so_each_group_holds_enough_turns() -> None:
    turns = turns_frame(synthetic_records(5_000, seed=5, users_max=1_000))
    table = by_concurrency(turns, turns["users"].astype("float64"), "ttfa_ms")
    assert len(table) <= 5_000 // 20 and table["count"].min() >= 20 and table["count"].sum() == turns["ttfa_ms"].notna().sum()


def test_a_metric_nobody_measured_draws_no_figure() -> None:
    turns = turns_frame(synthetic_records(100, seed=6))
    turns["barge_in_ms"] = np.nan
    assert cdf_figure(turns, "barge_in_ms", "x") is None
    t0 = float(turns["t_wall_s"].min())
    assert latency_over_time_figure(turns, "barge_in_ms", _records_history(turns), t0) is None
    assert by_concurrency(turns, turns["users"].astype("float64"), "barge_in_ms").empty
