"""The run directory's per-turn tables: write turns.parquet/turns.csv from turn records, read them back.

Turn records (docs/contracts.md section 5) arrive as plain dicts from `harness.metrics`. The
table always carries every contract column, in contract order, with fixed dtypes, so that a
report, a comparison or a notebook reading `turns.parquet` never has to guess: metrics are
float64 with NaN for "not measured" (never 0), text columns are pandas strings, flags are
nullable booleans. Columns a newer producer adds are kept, after the contract's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from harness.metrics.record import COLUMNS
from harness.metrics.record import LATENCY_COLUMNS as LATENCY_METRICS
from harness.report.errors import ReportInputError

# The columns and their order are the turn record's own (harness.metrics.record), never a copy.
LATENCY_COLUMNS = tuple(c for c in LATENCY_METRICS if c not in ("underrun_count", "underrun_ms"))
PLAYOUT_COLUMNS = ("underrun_count", "underrun_ms", "audio_ms", "leading_silence_ms")
PACING_COLUMNS = ("send_lateness_p50_ms", "send_lateness_p99_ms", "send_lateness_max_ms")
METRIC_COLUMNS = LATENCY_COLUMNS + PLAYOUT_COLUMNS + PACING_COLUMNS

TEXT_COLUMNS = (
    "run_id", "session_id", "worker", "scenario", "utterance", "format", "dialect", "target",
    "status", "response_id", "response_status", "response_reason", "vad_verdict", "transcript",
    "incident", "incident_evidence", "turn_detection",
)
PROBE_NUMBER_COLUMNS = ("pause_ms", "backchannel_offset_ms", "snr_db")
FLAG_COLUMNS = ("expected_interruption", "pause_split", "backchannel_cancelled")
TURN_COLUMNS = COLUMNS
assert set(METRIC_COLUMNS) | set(TEXT_COLUMNS) | set(PROBE_NUMBER_COLUMNS) | set(FLAG_COLUMNS) | {
    "turn", "t_start_ns", "t_wall_s", "users", "violations"} == set(COLUMNS)


def _text_cell(value: Any) -> Any:
    """Scalars stay; structured evidence becomes JSON text (parquet and CSV need one type per column)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    if value is None or pd.isna(value):  # None, NaN, pd.NA from a pyarrow-backed column
        return None
    return str(value)


def _flag_cell(value: Any) -> bool | None:
    """True/False from a bool, a number or CSV text; None when missing."""
    if isinstance(value, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(value.strip().lower())
    if value is None or pd.isna(value):
        return None
    return bool(value)


def normalize_turns(frame: pd.DataFrame) -> pd.DataFrame:
    """Every contract column present, in order, with its dtype; extra columns kept at the end."""
    frame = frame.copy()
    for column in TURN_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in TEXT_COLUMNS:
        if frame[column].dtype == object:  # mixed Python values: dicts, None, NaN, numbers
            frame[column] = frame[column].map(_text_cell)
        frame[column] = frame[column].astype("string")
    for column in METRIC_COLUMNS + PROBE_NUMBER_COLUMNS + ("t_wall_s",):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in ("turn", "users", "violations", "t_start_ns"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in FLAG_COLUMNS:
        flags = frame[column]
        if not pd.api.types.is_bool_dtype(flags):  # text from CSV, None mixed in, numbers
            flags = flags.map(_flag_cell)
        frame[column] = flags.astype("boolean")
    extra = [c for c in frame.columns if c not in TURN_COLUMNS]
    return frame[list(TURN_COLUMNS) + extra].reset_index(drop=True)


def turns_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The normalized table of a list of turn-record dicts."""
    return normalize_turns(pd.DataFrame.from_records([dict(r) for r in records]))


def write_turn_tables(run_dir: str | Path, records: Iterable[Mapping[str, Any]]) -> tuple[Path, Path]:
    """Write RUN_DIR/turns.parquet and RUN_DIR/turns.csv from turn records; returns both paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    frame = turns_frame(records)
    parquet_path, csv_path = run_dir / "turns.parquet", run_dir / "turns.csv"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, parquet_path)
    pa_csv.write_csv(table, csv_path)  # 15x faster than DataFrame.to_csv at 100k turns, same values
    return parquet_path, csv_path


def _read_shipped_records(run_dir: Path) -> pd.DataFrame | None:
    """records/<worker>.jsonl (turn records as shipped, before merging), tolerating a torn last line."""
    files = sorted((run_dir / "records").glob("*.jsonl"))
    if not files:
        return None
    rows: list[dict[str, Any]] = []
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a worker killed mid-write leaves half a line
            if isinstance(row, dict):
                rows.append(row)
    return pd.DataFrame.from_records(rows)


def read_turns(run_dir: str | Path) -> pd.DataFrame:
    """The run's turn table: turns.parquet, else turns.csv, else records/*.jsonl; normalized."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportInputError(f"{run_dir}: not a directory; pass a run directory such as reports/<RUN_ID>")
    parquet_path, csv_path = run_dir / "turns.parquet", run_dir / "turns.csv"
    try:
        if parquet_path.is_file():
            frame = pd.read_parquet(parquet_path)
        elif csv_path.is_file():
            frame = pd.read_csv(csv_path, dtype={c: "string" for c in TEXT_COLUMNS}, keep_default_na=True)
        else:
            frame = _read_shipped_records(run_dir)
    except (OSError, ValueError) as exc:
        raise ReportInputError(
            f"{run_dir}: cannot read the turn table ({type(exc).__name__}: {exc}); "
            "rewrite it with `harness metrics` or rerun"
        ) from exc
    if frame is None:
        raise ReportInputError(
            f"{run_dir}: no turns.parquet, turns.csv or records/*.jsonl; pass a run directory written by `harness run`"
        )
    return normalize_turns(frame)
