"""The numbers the report shows: exact percentiles and the timeout counts per metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.report import read_turns, write_turn_tables
from harness.report.stats import metric_stats, percentile_table


def test_metric_stats_are_numpy_linear_percentiles_of_the_finite_values() -> None:
    values = [120.0, 80.0, None, float("nan"), 300.0, 95.5]
    stats = metric_stats(values)
    finite = np.array([120.0, 80.0, 300.0, 95.5])
    assert stats["count"] == 4 and stats["max"] == 300.0
    for q in (50, 90, 95, 99):
        assert stats[f"p{q}"] == float(np.percentile(finite, q))
    assert metric_stats([None, float("nan")]) == {"count": 0, "p50": None, "p90": None, "p95": None,
                                                 "p99": None, "max": None}


def test_a_timed_out_turn_counts_only_against_the_metrics_its_scenario_measures(tmp_path: Path) -> None:
    rows = [{"session_id": "s", "turn": 0, "status": "ok", "scenario": "plain", "ttfa_ms": 700.0},
            {"session_id": "s", "turn": 1, "status": "ok", "scenario": "client_cancel", "ttfa_ms": 650.0,
             "cancel_ack_ms": 90.0},
            {"session_id": "s", "turn": 2, "status": "timeout", "scenario": "plain"},
            {"session_id": "s", "turn": 3, "status": "timeout", "scenario": "client_cancel"}]
    write_turn_tables(tmp_path, rows)
    table = percentile_table(read_turns(tmp_path))
    assert table.loc["ttfa_ms", "timeouts"] == 2
    assert table.loc["cancel_ack_ms", "timeouts"] == 1


def test_a_run_where_every_turn_timed_out_counts_them_against_first_audio(tmp_path: Path) -> None:
    write_turn_tables(tmp_path, [{"session_id": "s", "turn": i, "status": "timeout", "scenario": "plain"}
                                 for i in range(3)])
    table = percentile_table(read_turns(tmp_path))
    assert table.loc["ttfa_ms", "timeouts"] == 3 and table.loc["ttfa_ms", "count"] == 0
    assert table.loc["cancel_ack_ms", "timeouts"] == 0
