"""The per-session trace recorder: buffer records in memory, append them to JSONL off the hot path.

The receive loop and the pacer call the record methods (a dict build and a deque append: cheap);
each record is also handed, in the same order, to the recorder's `observer` (the session's turn
meter, which measures turns as they end, so nothing re-reads a trace during a run). The file is
written only by `flush()`, which the driver calls every quarter second, on close and from signal
handlers (`flush_all`); lines are formatted by orjson when it is installed (about ten times
faster than json, so a flush of a quarter second of records stays far under a millisecond). A
process killed mid-run therefore loses at most the records since the last flush, and the file on
disk is always a valid prefix of the trace (the reader tolerates a torn last line).

Concurrent record calls (receive loop, pacer, scenario) come from threads outside Locust and
from greenlets under it; the caller passes the lock to serialise them (`lock`), so that the
file and the observer see one order. Without one, records are assumed to come from one thread.
"""

from __future__ import annotations

import contextlib
import json
import time
import weakref
from collections import deque
from pathlib import Path
from typing import IO, Any, Callable, ContextManager

from harness.trace.scrub import redact_url, scrub_event
from harness.trace.vocabulary import Rec

try:
    import orjson
except ImportError:   # pragma: no cover - orjson is a dependency; json is the fallback
    orjson = None  # type: ignore[assignment]

SCHEMA_VERSION = 1

_open_recorders: "weakref.WeakSet[TraceRecorder]" = weakref.WeakSet()


def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str) + "\n").encode(
        "utf-8", "surrogatepass")


if orjson is not None:
    _ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS

    def line_of(record: dict[str, Any]) -> bytes:
        """One trace line (with its newline) as UTF-8 bytes."""
        try:
            return orjson.dumps(record, default=str, option=_ORJSON_OPTIONS)
        except TypeError:   # a lone surrogate or an integer over 64 bits: json copes
            return _json_line(record)
else:   # pragma: no cover
    line_of = _json_line

_APPEND_LINE = (b'{"rec":"append","t_ns":%d,"sched_ns":%d,"seq":%d,"turn":%s,"bytes":%d,"audio_ms":%s,'
                b'"input_ms":%s,"speech":%s,"sha1":"%s"}\n')


def _num(value: float) -> bytes:
    """A number as JSON writes it (repr: the shortest text that reads back as the same float)."""
    return repr(float(value)).encode() if isinstance(value, float) else str(int(value)).encode()


class TraceRecorder:
    """Records one session. Thread-safe for concurrent record calls and flushes."""

    def __init__(self, path: str | Path, header: dict[str, Any],
                 observer: Callable[[dict[str, Any]], None] | None = None,
                 lock: ContextManager[Any] | None = None, flush_lock: ContextManager[Any] | None = None,
                 clock_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        self.path = Path(path)
        header = dict(header)
        if "target" in header and isinstance(header["target"], str):
            header["target"] = redact_url(header["target"])
        self._clock_ns = clock_ns
        header.setdefault("clock", {"wall_ns": time.time_ns(), "mono_ns": clock_ns()})
        self.header: dict[str, Any] = {"rec": "header", "schema": SCHEMA_VERSION, **header}
        # Lines are formatted when recorded and buffered as bytes: the garbage collector never
        # walks a buffered record (dicts kept a quarter second made every young collection
        # slower, and a collection holds every caller of the process). The header stays a dict
        # until the first flush (the session fills in its config after opening).
        # deque: append and popleft are atomic, so record calls never need the flush lock and
        # a line appended while a flush runs is kept for the next flush, never dropped.
        self._buffer: deque[bytes] = deque()
        self._header_written = False
        self.observer = observer
        # appends skip the dict: (turn, t_ns, sched_ns, input_ms, audio_ms, speech) go here
        self.append_observer: Callable[[Any, int, int, float, float, bool], None] | None = None
        self.observer_error: str | None = None
        self._order = lock if lock is not None else contextlib.nullcontext()
        self._lock = flush_lock if flush_lock is not None else contextlib.nullcontext()
        self._file: IO[bytes] | None = None
        self._count = 0
        self.closed = False
        _open_recorders.add(self)

    # -- record methods (hot path: no I/O) -------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        """Buffer one record and show it to the observer, in one order for both."""
        line = line_of(record)
        with self._order:
            self._buffer.append(line)
            if self.observer is not None:
                try:
                    self.observer(record)
                except Exception as exc:  # noqa: BLE001 - a measuring bug must not stop the pacer or receiver
                    self.observer = None
                    self.observer_error = f"{type(exc).__name__}: {exc}"

    def send(self, t_ns: int, event: dict[str, Any], bytes_per_ms: float = 48.0) -> None:
        self.add({"rec": "send", "t_ns": t_ns, "type": event.get("type"), "event": scrub_event(event, bytes_per_ms)})

    def append(self, t_ns: int, sched_ns: int, seq: int, turn: int | None, nbytes: int,
               audio_ms: float, input_ms: float, speech: bool, sha1: str) -> None:
        """One audio chunk sent (50 a second per session): the line is formatted straight from a
        template, no dict is built (the same JSON `line_of` writes, checked by a test)."""
        line = _APPEND_LINE % (t_ns, sched_ns, seq, b"null" if turn is None else str(int(turn)).encode(), nbytes,
                               _num(audio_ms), _num(input_ms), b"true" if speech else b"false", sha1.encode())
        with self._order:
            self._buffer.append(line)
            observe = self.append_observer
            if observe is not None:
                try:
                    observe(turn, t_ns, sched_ns, input_ms, audio_ms, speech)
                except Exception as exc:  # noqa: BLE001 - as in add()
                    self.append_observer = None
                    self.observer_error = f"{type(exc).__name__}: {exc}"

    def recv(self, t_ns: int, type_: str, kind: str, event: dict[str, Any],
             bytes_per_ms: float = 48.0, scrubbed: bool = False) -> None:
        """A received event; `scrubbed` when the caller already replaced its audio (a delta's fast path)."""
        self.add({"rec": "recv", "t_ns": t_ns, "type": type_, "kind": kind,
                  "event": event if scrubbed else scrub_event(event, bytes_per_ms)})

    def mark(self, name: str, t_ns: int | None = None, **fields: Any) -> None:
        stamp = self._clock_ns() if t_ns is None else t_ns
        self.add({"rec": "mark", "t_ns": stamp, "mark": str(name), **fields})

    def violation(self, t_ns: int, rule: str, side: str, message: str, event_type: str | None) -> None:
        self.add({"rec": "violation", "t_ns": t_ns, "rule": rule, "side": side,
                  "message": message, "event_type": event_type})

    # -- persistence ------------------------------------------------------------------------
    def flush(self) -> None:
        """Append every buffered record to the file."""
        with self._lock:
            count = len(self._buffer)
            if not count and self._header_written:
                return
            pending = [self._buffer.popleft() for _ in range(count)]
            if not self._header_written:
                self._header_written = True
                pending.insert(0, line_of(self.header))
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            self._file.write(b"".join(pending))
            self._file.flush()
            self._count += len(pending)

    def close(self, reason: str = "done") -> None:
        """Write the footer and release the file. Idempotent: the first reason wins."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.add({"rec": Rec.FOOTER.value, "t_ns": self._clock_ns(), "reason": str(reason),
                  "records": self._count + len(self._buffer) + (1 if self._header_written else 2)})
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        _open_recorders.discard(self)


def flush_all() -> int:
    """Flush every open recorder of this process (for signal handlers and atexit). Returns the count."""
    recorders: list[TraceRecorder] = []
    for _ in range(5):    # a recorder opened while we copy the set: copy again (bounded)
        try:
            recorders = list(_open_recorders)
            break
        except RuntimeError:
            continue
    for recorder in recorders:
        try:
            recorder.flush()
        except (OSError, ValueError):
            continue  # a recorder closing concurrently; its own close() flushes
    return len(recorders)
