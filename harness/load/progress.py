"""`harness run`'s live progress line, read from the status files its Locust processes write.

Each Locust process that runs callers writes `progress/<worker>.json` once a second
(`harness.load.status`): its turn counts by status, the TTFA of its last WINDOW_S seconds of
turns, and its finished sessions' send-lateness buckets (so "pacing p99" is the pacing gate's
own p99 over the sessions finished so far). `LiveStatus` merges every worker's file into one line:

    harness run: 0:42 users 10 | turns ok 37 failed 1 | ttfa p50 312.4 / p95 401.0 ms (last 30 s) | pacing p99 0.41 ms

On a terminal the line is rewritten in place every second; in a CI log (not a TTY) it is a plain
line every `every_s` seconds. Locust-free: `harness run`'s own process imports this module.
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from harness.metrics import quantiles

PROGRESS_DIR_ENV = "HARNESS_PROGRESS_DIR"   # set by harness run for its Locust child
PROGRESS_FOLDER = "progress"                # in the run directory
STATUS_EVERY_S = 1.0
WINDOW_S = 30.0
WINDOW_TURNS = 1000
STALE_S = 5.0                               # a worker silent for longer counts no users (killed, stopped)
FAILED_STATUSES = ("timeout", "error", "invalid_pacing")


class StatusKey(StrEnum):
    """The fields of one status file."""

    WORKER = "worker"
    WRITTEN_AT = "written_at"
    USERS = "users"
    TURNS = "turns"
    TTFA_MS = "ttfa_ms"
    LATENESS = "lateness"   # the finished sessions' send-lateness buckets, as summary.json's pacing merges them


def read_statuses(folder: Path) -> list[dict[str, Any]]:
    """Every worker's last status (a file being replaced or torn is skipped this time)."""
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(status, dict):
            found.append(status)
    return found


def percentile(values: list[float], q: float) -> float | None:
    """numpy's linear percentile (the one summary.json uses); None when empty."""
    return quantiles.linear(sorted(values), q) if values else None


def merged(statuses: list[dict[str, Any]], now_s: float) -> dict[str, Any]:
    """The run's status over all workers: summed counts and users, percentiles of the merged windows."""
    turns: dict[str, int] = {}
    ttfa: list[float] = []
    users = 0
    for status in statuses:
        for name, count in (status.get(StatusKey.TURNS) or {}).items():
            turns[name] = turns.get(name, 0) + int(count)
        if now_s - float(status.get(StatusKey.WRITTEN_AT) or 0) <= STALE_S:
            users += int(status.get(StatusKey.USERS) or 0)
            ttfa += status.get(StatusKey.TTFA_MS) or []
    return {"users": users, "ok": turns.get("ok", 0), "failed": sum(turns.get(s, 0) for s in FAILED_STATUSES),
            "ttfa_p50_ms": percentile(ttfa, 50), "ttfa_p95_ms": percentile(ttfa, 95),
            "pacing_p99_ms": pacing_p99_ms([s.get(StatusKey.LATENESS) for s in statuses]), "workers": len(statuses)}


def pacing_p99_ms(lateness: list[Any]) -> float | None:
    """The pacing gate's p99 over every append of the finished sessions: the same merge of 10 us
    buckets as summary.json (`harness.rundir.pacing_of`); None before any session finished."""
    from harness.rundir import pacing_of

    return pacing_of([{"lateness": one} for one in lateness if one], 0.0)["p99_ms"]


def _ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def status_line(state: dict[str, Any], elapsed_s: float, label: str = "harness run") -> str:
    minutes, seconds = divmod(int(elapsed_s), 60)
    return (f"{label}: {minutes}:{seconds:02d} users {state['users']} | turns ok {state['ok']} failed "
            f"{state['failed']} | ttfa p50 {_ms(state['ttfa_p50_ms'], 1)} / p95 {_ms(state['ttfa_p95_ms'], 1)} ms "
            f"(last {WINDOW_S:g} s) | pacing p99 {_ms(state['pacing_p99_ms'], 2)} ms")


class LiveStatus:
    """Draws the progress line: in place on a terminal, a plain line every `every_s` otherwise
    (`every_s` 0: nothing at all)."""

    def __init__(self, folder: Path, every_s: float = 10.0, stream: TextIO | None = None,
                 clock: Any = time.monotonic, wall: Any = time.time) -> None:
        self.folder, self.every_s, self.stream = folder, every_s, stream or sys.stderr
        self.clock, self.wall = clock, wall
        self.started = clock()
        self.last_plain = self.started
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn = False

    def line(self) -> str:
        return status_line(merged(read_statuses(self.folder), self.wall()), self.clock() - self.started)

    def tick(self) -> None:
        """Called about once a second while the run goes."""
        if self.every_s <= 0:
            return
        if self.interactive:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.drawn = True
        elif self.clock() - self.last_plain >= self.every_s:
            self.last_plain = self.clock()
            self.stream.write(self.line() + "\n")
        else:
            return
        self.stream.flush()

    def close(self) -> None:
        """The last line, kept (a newline after the in-place one), when the load is over."""
        if self.every_s <= 0:
            return
        self.stream.write(("\r" if self.interactive else "") + self.line() + ("\x1b[K\n" if self.interactive else "\n"))
        self.stream.flush()
