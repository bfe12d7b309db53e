"""write_turn_tables / read_turns: every contract column, fixed dtypes, missing values stay missing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.report import TURN_COLUMNS, ReportInputError, read_turns, write_turn_tables
from harness.report.synthetic import synthetic_records


def test_written_tables_hold_every_contract_column_in_order_with_extras_after(tmp_path: Path) -> None:
    records = synthetic_records(50, seed=1)
    records[0]["worker_pid"] = 1234  # a column a newer producer added
    write_turn_tables(tmp_path, records)
    for frame in (pd.read_parquet(tmp_path / "turns.parquet"), pd.read_csv(tmp_path / "turns.csv")):
        assert list(frame.columns[: len(TURN_COLUMNS)]) == list(TURN_COLUMNS)
        assert "worker_pid" in frame.columns
        assert len(frame) == 50


def test_parquet_and_csv_read_back_to_the_same_values(tmp_path: Path) -> None:
    records = synthetic_records(200, seed=2)
    write_turn_tables(tmp_path, records)
    from_parquet = read_turns(tmp_path)
    (tmp_path / "turns.parquet").unlink()
    from_csv = read_turns(tmp_path)
    for column in ("ttfa_ms", "vad_end_error_ms", "cancel_ack_ms", "underrun_count"):
        np.testing.assert_allclose(from_parquet[column].to_numpy(), from_csv[column].to_numpy(), equal_nan=True)
    assert from_parquet["transcript"].tolist() == from_csv["transcript"].tolist()
    assert from_parquet["incident"].isna().tolist() == from_csv["incident"].isna().tolist()
    expected = [r["ttfa_ms"] for r in records]
    got = from_parquet["ttfa_ms"].tolist()
    assert all((e is None and math.isnan(g)) or e == g for e, g in zip(expected, got))


def test_a_missing_metric_stays_missing_and_is_never_written_as_zero(tmp_path: Path) -> None:
    records = [{"session_id": "s1", "turn": 0, "status": "timeout", "scenario": "plain"},
               {"session_id": "s1", "turn": 1, "status": "ok", "scenario": "plain", "ttfa_ms": 0.0}]
    write_turn_tables(tmp_path, records)
    turns = read_turns(tmp_path)
    assert math.isnan(turns.loc[0, "ttfa_ms"]) and turns.loc[1, "ttfa_ms"] == 0.0
    assert pd.isna(turns.loc[0, "incident"]) and pd.isna(turns.loc[0, "expected_interruption"])
    assert turns["ttfa_ms"].dtype == "float64" and turns["turn"].dtype == "Int64"


def test_structured_incident_evidence_is_kept_as_json_text(tmp_path: Path) -> None:
    evidence = {"cancel_reason": "turn_detected", "caller_speech": False}
    write_turn_tables(tmp_path, [{"session_id": "s", "turn": 0, "incident": "false_barge_in",
                                  "incident_evidence": evidence}])
    assert json.loads(read_turns(tmp_path).loc[0, "incident_evidence"]) == evidence


def test_shipped_worker_records_are_read_when_no_table_was_merged(tmp_path: Path) -> None:
    (tmp_path / "records").mkdir()
    lines = [json.dumps({"session_id": "s", "turn": i, "ttfa_ms": 500.0 + i, "status": "ok"}) for i in range(3)]
    (tmp_path / "records" / "w0.jsonl").write_text("\n".join(lines) + '\n{"session_id": "s", "tu')  # torn tail
    turns = read_turns(tmp_path)
    assert turns["ttfa_ms"].tolist() == [500.0, 501.0, 502.0]


def test_a_directory_without_turns_is_one_clear_user_error(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="no turns.parquet, turns.csv or records") as info:
        read_turns(tmp_path)
    assert info.value.user_error and "\n" not in str(info.value)
    with pytest.raises(ReportInputError, match="not a directory"):
        read_turns(tmp_path / "nope")


def test_a_corrupt_turn_table_is_one_clear_user_error(tmp_path: Path) -> None:
    (tmp_path / "turns.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ReportInputError, match="cannot read the turn table") as info:
        read_turns(tmp_path)
    assert "\n" not in str(info.value)

