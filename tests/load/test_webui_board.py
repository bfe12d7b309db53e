"""The Realtime tab's board: exact percentiles (numpy's) and the pacing gate's merge, on known records."""

from __future__ import annotations

import numpy as np

from harness.load.board import LiveBoard
from harness.rundir import pacing_of


def _board_with(ttfa_ms: list[float]) -> LiveBoard:
    board = LiveBoard(["ttfa_ms", "vad_commit_ms"])
    board.reset("r1", "reports/r1", pacing_limit_ms=5.0)
    for i, value in enumerate(ttfa_ms):   # arrival order is not sorted order
        board.add_turn({"status": "ok" if i % 4 else "stopped", "ttfa_ms": value,
                        "incident": "barge_in" if i % 5 == 0 else None})
    return board


def test_the_board_percentiles_are_numpys_linear_ones_of_every_turn() -> None:
    values = [float(v) for v in np.random.default_rng(7).lognormal(6, 0.4, 301)]
    snapshot = _board_with(values).snapshot()
    got = snapshot["percentiles"]["ttfa_ms"]
    assert got["count"] == 301
    for q in (50, 95, 99):
        assert got[f"p{q}"] == float(np.percentile(values, q))
    assert "vad_commit_ms" not in snapshot["percentiles"]   # no values: no percentile made up


def test_the_board_counts_statuses_and_incidents_and_its_rows_show_them() -> None:
    board = _board_with([100.0, 200.0, 300.0, 400.0, 500.0, 600.0])
    snapshot = board.snapshot()
    assert snapshot["turns"] == {"stopped": 2, "ok": 4} and snapshot["incidents"] == {"barge_in": 2}
    rows = {row["name"]: row for row in board.rows()}
    assert rows["ttfa_ms"]["count"] == "6" and rows["ttfa_ms"]["p50"] == "350.0"
    assert rows["vad_commit_ms"]["count"] == "0" and rows["vad_commit_ms"]["p50"] == ""
    assert rows["turns"]["detail"] == "ok 4, stopped 2" and rows["incidents"]["detail"] == "barge_in 2"
    assert rows["sessions ended"]["detail"] == "run r1; dir reports/r1" and rows["pacing (send lateness ms)"]["detail"] == "no audio sent yet"


def test_the_board_pacing_merges_session_buckets_as_the_pacing_gate_does() -> None:
    sessions = [{"lateness": {"bucket_ns": 10_000, "buckets": {"0": 90, "3": 9}, "max_ns": 35_000}},
                {"lateness": {"bucket_ns": 10_000, "buckets": {"0": 50, "700": 2}, "max_ns": 7_004_000}}]
    board = _board_with([])
    for session in sessions:
        board.add_session(session)
    assert board.pacing() == pacing_of(sessions, 5.0)
    assert board.snapshot()["sessions"] == 2
    row = {r["name"]: r for r in board.rows()}["pacing (send lateness ms)"]
    assert board.pacing()["p99_ms"] == 7.004   # 2 of 151 appends 7 ms late: over the 1 % of the p99
    assert row["count"] == "151" and row["p99"] == "7.0" and row["detail"] == "OVER the 5 ms limit"


def test_reset_starts_a_new_test_with_an_empty_board() -> None:
    board = _board_with([1.0, 2.0])
    board.reset("r2", "reports/r2")
    snapshot = board.snapshot()
    assert snapshot["run_id"] == "r2" and snapshot["turns"] == {} and snapshot["percentiles"] == {}
