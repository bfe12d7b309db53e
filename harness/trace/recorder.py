"""The per-session trace recorder: buffer records in memory, append them to JSONL off the hot path.

The receive loop and the pacer call the record methods (a dict build and a list append: cheap);
the file is written only by `flush()`, which the driver calls at turn boundaries, on close and
from signal handlers (`flush_all`). A process killed mid-run therefore loses at most the records
since the last flush, and the file on disk is always a valid prefix of the trace (the reader
tolerates a torn last line).
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import IO, Any

from harness.trace.scrub import redact_url, scrub_event

SCHEMA_VERSION = 1

_open_recorders: "weakref.WeakSet[TraceRecorder]" = weakref.WeakSet()
_registry_lock = threading.Lock()


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)


class TraceRecorder:
    """Records one session. Thread-safe for concurrent record calls and flushes."""

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        header = dict(header)
        if "target" in header and isinstance(header["target"], str):
            header["target"] = redact_url(header["target"])
        header.setdefault("clock", {"wall_ns": time.time_ns(), "mono_ns": time.perf_counter_ns()})
        self.header: dict[str, Any] = {"rec": "header", "schema": SCHEMA_VERSION, **header}
        # deque: append and popleft are atomic, so record calls never need the flush lock and
        # a record appended while a flush runs is kept for the next flush, never dropped.
        self._buffer: deque[dict[str, Any]] = deque([self.header])
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._count = 0
        self.closed = False
        with _registry_lock:
            _open_recorders.add(self)

    # -- record methods (hot path: no I/O) -------------------------------------------------
    def send(self, t_ns: int, event: dict[str, Any], bytes_per_ms: float = 48.0) -> None:
        self._buffer.append({"rec": "send", "t_ns": t_ns, "type": event.get("type"),
                             "event": scrub_event(event, bytes_per_ms)})

    def append(self, t_ns: int, sched_ns: int, seq: int, turn: int | None, nbytes: int,
               audio_ms: float, input_ms: float, speech: bool, sha1: str) -> None:
        self._buffer.append({"rec": "append", "t_ns": t_ns, "sched_ns": sched_ns, "seq": seq,
                             "turn": turn, "bytes": nbytes, "audio_ms": audio_ms,
                             "input_ms": input_ms, "speech": speech, "sha1": sha1})

    def recv(self, t_ns: int, type_: str, kind: str, event: dict[str, Any],
             bytes_per_ms: float = 48.0) -> None:
        self._buffer.append({"rec": "recv", "t_ns": t_ns, "type": type_, "kind": kind,
                             "event": scrub_event(event, bytes_per_ms)})

    def mark(self, name: str, t_ns: int | None = None, **fields: Any) -> None:
        stamp = time.perf_counter_ns() if t_ns is None else t_ns
        self._buffer.append({"rec": "mark", "t_ns": stamp, "mark": name, **fields})

    def violation(self, t_ns: int, rule: str, side: str, message: str, event_type: str | None) -> None:
        self._buffer.append({"rec": "violation", "t_ns": t_ns, "rule": rule, "side": side,
                             "message": message, "event_type": event_type})

    # -- persistence ------------------------------------------------------------------------
    def flush(self) -> None:
        """Append every buffered record to the file."""
        with self._lock:
            count = len(self._buffer)
            if not count:
                return
            pending = [self._buffer.popleft() for _ in range(count)]
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write("".join(_dumps(r) + "\n" for r in pending))
            self._file.flush()
            self._count += len(pending)

    def close(self, reason: str = "done") -> None:
        """Write the footer and release the file. Idempotent: the first reason wins."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._buffer.append({"rec": "footer", "t_ns": time.perf_counter_ns(), "reason": reason,
                             "records": self._count + len(self._buffer) + 1})
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        with _registry_lock:
            _open_recorders.discard(self)


def flush_all() -> int:
    """Flush every open recorder of this process (for signal handlers and atexit). Returns the count."""
    with _registry_lock:
        recorders = list(_open_recorders)
    for recorder in recorders:
        try:
            recorder.flush()
        except (OSError, ValueError):
            continue  # a recorder closing concurrently; its own close() flushes
    return len(recorders)
