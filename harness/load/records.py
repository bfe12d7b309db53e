"""Where turn records go: a durable per-worker file, and batches shipped to the master.

Every process appends its records to `records/<worker>.jsonl` as each session ends (one
flushed write per session, so a killed worker loses at most the session in flight) and queues
them for Locust's `report_to_master`, which sends them with every worker report and once more
when the worker stops. The master keeps what it receives in `records/master-<id>.jsonl`, so a
master on another machine (no shared disk) still ends up with every record. Merging keeps one
copy of each (session, turn).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterable

SHIP_KEY = "harness_records"
SESSIONS_KEY = "harness_sessions"


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), default=str)


class RecordSink:
    def __init__(self, out: Path, worker: str) -> None:
        self.records_path = out / "records" / f"{worker}.jsonl"
        self.sessions_path = out / "sessions" / f"{worker}.jsonl"
        self._unshipped: list[dict[str, Any]] = []
        self._unshipped_sessions: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.count = 0

    def add(self, records: list[dict[str, Any]], session: dict[str, Any], ship: bool) -> None:
        with self._lock:
            _append(self.records_path, records)
            _append(self.sessions_path, [session])
            self.count += len(records)
            if ship:
                self._unshipped.extend(records)
                self._unshipped_sessions.append(session)

    def take_batch(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with self._lock:
            records, self._unshipped = self._unshipped, []
            sessions, self._unshipped_sessions = self._unshipped_sessions, []
        return records, sessions


def _append(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    text = "".join(_dumps(r) + "\n" for r in rows)
    if not text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    _append(path, rows)


def _read_jsonl(paths: Iterable[Path]) -> list[dict[str, Any]]:
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line of a killed worker
            if isinstance(row, dict):
                rows.append(row)
    return rows


def merged_records(out: Path) -> list[dict[str, Any]]:
    """Every turn record of the run, one per (session, turn), in start order."""
    seen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in _read_jsonl(sorted((out / "records").glob("*.jsonl"))):
        seen.setdefault((row.get("session_id"), row.get("turn")), row)
    return sorted(seen.values(), key=lambda r: (r.get("t_start_ns") or 0, str(r.get("session_id")), r.get("turn") or 0))


def merged_sessions(out: Path) -> list[dict[str, Any]]:
    seen: dict[Any, dict[str, Any]] = {}
    for row in _read_jsonl(sorted((out / "sessions").glob("*.jsonl"))):
        seen.setdefault(row.get("session_id"), row)
    return list(seen.values())
