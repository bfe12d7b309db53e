"""Figure builders on edge cases: big runs are reduced, empty metrics draw nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report.figures_latency import MAX_SCATTER_POINTS, against_users_figure, cdf_figure, over_time_figure
from harness.report.stats import cdf_points, time_bins
from harness.report.synthetic import synthetic_records
from harness.report.turn_table import turns_frame


def test_a_cdf_of_many_values_is_drawn_on_a_fixed_quantile_grid_with_exact_ends() -> None:
    values = np.random.default_rng(0).lognormal(6.5, 0.3, 50_000)
    x, y = cdf_points(values, max_points=400)
    assert len(x) == 400 and x[0] == values.min() and x[-1] == values.max()
    assert y[0] == 0.0 and y[-1] == 1.0 and np.all(np.diff(x) >= 0)


def test_a_small_cdf_keeps_every_value() -> None:
    x, y = cdf_points([3.0, 1.0, 2.0, float("nan")])
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [1 / 3, 2 / 3, 1.0]


def test_time_bins_hold_every_value_once() -> None:
    t = pd.Series(np.arange(1000, dtype=float))
    bins = time_bins(t, pd.Series(np.ones(1000)), bins=10)
    assert bins["count"].sum() == 1000 and len(bins) == 10


def test_the_scatter_of_a_big_run_is_a_capped_sample() -> None:
    turns = turns_frame(synthetic_records(20_000, seed=4))
    fig = over_time_figure(turns, "ttfa_ms")
    assert fig is not None and len(fig.data[0].x) == MAX_SCATTER_POINTS


def test_many_distinct_user_counts_are_bucketed() -> None:
    turns = turns_frame(synthetic_records(5_000, seed=5, users_max=1_000))
    fig = against_users_figure(turns, "ttfa_ms")
    assert fig is not None and len(fig.data[0].x) <= 100


def test_a_metric_nobody_measured_draws_no_figure() -> None:
    turns = turns_frame(synthetic_records(100, seed=6))
    turns["barge_in_ms"] = np.nan
    assert cdf_figure(turns, "barge_in_ms", "x") is None
    assert over_time_figure(turns, "barge_in_ms") is None and against_users_figure(turns, "barge_in_ms") is None
