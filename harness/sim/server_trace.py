"""The simulator's own record of what it decided and when: the truth a test compares against.

Each record is a dict with `rec` (what happened), `session` and `t_ns` (time.perf_counter_ns(),
CLOCK_MONOTONIC on Linux, so comparable with a caller's clock in another thread or process on the
same host). A `send` record for a delayed stage carries `stage`, `trigger_ns`, `delay_ns`,
`target_ns` (= trigger + delay) and `sent_ns` (when the frame was handed to the socket).
Records are kept in memory (for start_in_thread) and optionally appended to a JSONL file.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, IO


class ServerTrace:
    """Thread-safe append-only list of decision records, optionally mirrored to a JSONL file."""

    def __init__(self, path: str | Path | None = None, keep_in_memory: bool = True, live: bool = False) -> None:
        self._records: list[dict[str, Any]] = []
        self._keep = keep_in_memory
        self._live = live
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(path, "a", encoding="utf-8") if path else None
        self._unflushed = 0

    def record(self, rec: str, session: str | None, t_ns: int | None = None, **fields: Any) -> dict[str, Any]:
        entry = {"rec": rec, "session": session, "t_ns": time.perf_counter_ns() if t_ns is None else t_ns, **fields}
        with self._lock:
            if self._keep:
                self._records.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
                self._unflushed += 1
                if self._unflushed >= 256 or self._live:
                    self._file.flush()
                    self._unflushed = 0
        return entry

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
            if self._file is not None:
                self._file.flush()
                self._unflushed = 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
