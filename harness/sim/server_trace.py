"""The simulator's own record of what it decided and when: the truth a test compares against.

Each record is a dict with `rec` (what happened), `session` and `t_ns` (time.perf_counter_ns(),
CLOCK_MONOTONIC on Linux, so comparable with a caller's clock in another thread or process on the
same host). A `send` record for a delayed stage carries `stage`, `trigger_ns`, `delay_ns`,
`target_ns` (= trigger + delay) and `sent_ns` (when the frame was handed to the socket).
Records are kept in memory (for start_in_thread) and optionally appended to a JSONL file, in
batches (or each at once with `live`, for a reader in another process). A simulator of several
processes (`harness sim --processes N`) writes one file per process, `NAME.wK.jsonl` beside the
configured `NAME.jsonl`; `read_records` reads them together.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

FLUSH_RECORDS = 256


def _line(entry: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(entry)
    except (TypeError, orjson.JSONEncodeError):  # lone surrogates, ints beyond 64 bits
        return json.dumps(entry, separators=(",", ":"), default=str).encode("utf-8", "surrogatepass")


class ServerTrace:
    """Thread-safe append-only list of decision records, optionally mirrored to a JSONL file."""

    def __init__(self, path: str | Path | None = None, keep_in_memory: bool = True, live: bool = False) -> None:
        self._records: list[dict[str, Any]] = []
        self._keep = keep_in_memory
        self._live = live
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = open(path, "ab", buffering=0) if path else None
        self._pending: list[bytes] = []

    def record(self, rec: str, session: str | None, t_ns: int | None = None, **fields: Any) -> dict[str, Any]:
        entry = {"rec": rec, "session": session, "t_ns": time.perf_counter_ns() if t_ns is None else t_ns, **fields}
        with self._lock:
            if self._keep:
                self._records.append(entry)
            if self._file is not None:
                pending = self._pending
                pending.append(_line(entry))
                if len(pending) >= FLUSH_RECORDS or self._live:
                    self._write()
        return entry

    def add(self, entry: dict[str, Any]) -> None:
        """Record a ready-made entry (`rec`, `session` and `t_ns` first): the outbox's path per frame.

        Nothing is written to the file here (a frame stamped but not yet sent must not wait for a
        disk write): the outbox calls `write_pending` around its socket write."""
        with self._lock:
            if self._keep:
                self._records.append(entry)
            if self._file is not None:
                self._pending.append(_line(entry))

    @property
    def live(self) -> bool:
        return self._live

    def write_pending(self, force: bool = False) -> None:
        """Write buffered lines once there are enough of them (or now with `force`)."""
        if self._file is not None and (force or len(self._pending) >= FLUSH_RECORDS):
            with self._lock:
                self._write()

    def _write(self) -> None:
        if self._pending and self._file is not None:
            data = b"\n".join(self._pending) + b"\n"
            self._pending = []
            self._file.write(data)

    @property
    def records(self) -> list[dict[str, Any]]:
        """A snapshot of every record so far."""
        with self._lock:
            return list(self._records)

    def select(self, rec: str | None = None, session: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Records whose `rec`, `session` and other given fields equal the given values."""
        return [
            r
            for r in self.records
            if (rec is None or r["rec"] == rec)
            and (session is None or r["session"] == session)
            and all(r.get(k) == v for k, v in match.items())
        ]

    def sessions(self) -> list[str]:
        """Session ids in connection order."""
        return [r["session"] for r in self.records if r["rec"] == "connect"]

    def flush(self) -> None:
        with self._lock:
            self._write()

    def close(self) -> None:
        with self._lock:
            self._write()
            if self._file is not None:
                self._file.close()
                self._file = None


def worker_trace_path(path: str | Path, worker: int) -> Path:
    """The trace file of process `worker` of a multi-process simulator: NAME.wK.jsonl beside NAME.jsonl."""
    path = Path(path)
    return path.with_name(f"{path.stem}.w{worker}{path.suffix}")


def trace_files(path: str | Path) -> list[Path]:
    """The file itself (if it exists), then every worker's file beside it, in worker order."""
    path = Path(path)
    found = [path] if path.is_file() else []
    workers = []
    for other in path.parent.glob(f"{path.stem}.w*{path.suffix}"):
        number = other.name[len(path.stem) + 2:len(other.name) - len(path.suffix)]
        if number.isdigit():
            workers.append((int(number), other))
    return found + [p for _, p in sorted(workers)]


def _read_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open("rb") as handle:
        for line in handle:
            with contextlib.suppress(ValueError):
                records.append(orjson.loads(line))
    return records


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of the trace at `path` and of its workers' files: each file in its own order,
    interleaved by `t_ns` (a torn last line is skipped)."""
    files = trace_files(path)
    if len(files) <= 1:
        return _read_lines(files[0]) if files else []
    return list(heapq.merge(*(_read_lines(f) for f in files), key=lambda r: r.get("t_ns") or 0))


def last_record(path: str | Path, rec: str, tail_bytes: int = 1 << 20) -> dict[str, Any] | None:
    """The last record of kind `rec` in one trace file, read from its end (the file may be large)."""
    needle = b'"rec":"' + rec.encode() + b'"'
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - tail_bytes))
            data = handle.read()
    except OSError:
        return None
    for line in reversed(data.split(b"\n")):
        if needle in line:
            with contextlib.suppress(ValueError):
                return orjson.loads(line)
    return None
