"""The Locust process's live status, for `harness run`'s progress line.

Every process that runs callers keeps a small board of the turn records its sessions produced
(the harness's own records, not Locust's bucketed statistics): counts by status, the last
WINDOW_S seconds of TTFA (at most WINDOW_TURNS turns), and the send-lateness buckets of its
finished sessions (the pacing gate's own data). Once a second a
greenlet writes the board to `<HARNESS_PROGRESS_DIR>/<worker>.json` (a temporary file, then
renamed, so the reader never sees half of one); `harness.load.progress` in `harness run` reads
and merges them. Nothing else runs in the hot path: a turn's end appends to a deque, a session's end adds a few dozen bucket counts.
A snapshot copies at most WINDOW_TURNS floats and writes a few KB, once a second. Only when `harness run` sets HARNESS_PROGRESS_DIR.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from harness.load.progress import PROGRESS_DIR_ENV, STATUS_EVERY_S, WINDOW_S, WINDOW_TURNS, StatusKey

COUNTED_STATUSES = ("ok", "timeout", "error", "invalid_pacing", "stopped")


class StatusBoard:
    """Counts and a bounded window of this process's turns."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(COUNTED_STATUSES, 0)
        self.window: deque[tuple[float, float | None]] = deque(maxlen=WINDOW_TURNS)
        self.lateness: dict[str, Any] = {"bucket_ns": None, "buckets": {}, "max_ns": None}

    def note_turn(self, record: dict[str, Any]) -> None:
        """A turn ended: count its status, keep its TTFA for the window."""
        status = str(record.get("status"))
        self.counts[status] = self.counts.get(status, 0) + 1
        ttfa = record.get("ttfa_ms")
        self.window.append((time.monotonic(), None if ttfa is None else round(ttfa, 1)))

    def note_session(self, lateness: dict[str, Any] | None) -> None:
        """A session ended: add its send-lateness buckets (10 us, a few dozen keys) to the run's."""
        if not lateness:
            return
        buckets = self.lateness["buckets"]
        for key, count in (lateness.get("buckets") or {}).items():
            buckets[str(key)] = buckets.get(str(key), 0) + int(count)
        self.lateness["bucket_ns"] = lateness.get("bucket_ns") or self.lateness["bucket_ns"]
        if lateness.get("max_ns") is not None:
            self.lateness["max_ns"] = max(self.lateness["max_ns"] or 0, int(lateness["max_ns"]))

    def snapshot(self, worker: str, users: int | None) -> dict[str, Any]:
        cutoff = time.monotonic() - WINDOW_S
        while self.window and self.window[0][0] < cutoff:
            self.window.popleft()
        return {StatusKey.WORKER: worker, StatusKey.WRITTEN_AT: time.time(), StatusKey.USERS: users,
                StatusKey.TURNS: dict(self.counts),
                StatusKey.TTFA_MS: [t for _, t in self.window if t is not None],
                StatusKey.LATENESS: self.lateness}


BOARD = StatusBoard()
_writer: list[Any] = []


def _write(folder: Path, worker: str, users: int | None) -> None:
    path = folder / f"{worker}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(BOARD.snapshot(worker, users), option=orjson.OPT_NON_STR_KEYS))
    os.replace(tmp, path)


def start(environment: Any, worker: str) -> None:
    """Start the once-a-second writer in this process (when `harness run` asked for it)."""
    folder_name = os.environ.get(PROGRESS_DIR_ENV)
    if not folder_name or _writer:
        return
    import gevent   # here, not at import: importing this module must not monkey-patch a test process

    folder = Path(folder_name)
    folder.mkdir(parents=True, exist_ok=True)
    if _final not in _listening:
        environment.events.quitting.add_listener(_final)
        _listening.append(_final)

    def users() -> int | None:
        runner = environment.runner
        return int(runner.user_count) if runner is not None else None

    def loop() -> None:
        while True:
            try:
                _write(folder, worker, users())
            except OSError:   # a full disk must not stop the callers; the final summary still comes
                pass
            gevent.sleep(STATUS_EVERY_S)

    _writer.append((gevent.spawn(loop), folder, worker, users))


_listening: list[Any] = []


def _final(**_: Any) -> None:
    """The last snapshot, with every turn this process counted, before it exits."""
    if not _writer:
        return
    greenlet, folder, worker, users = _writer.pop()
    greenlet.kill(block=False)
    try:
        _write(folder, worker, users())
    except OSError:
        pass
