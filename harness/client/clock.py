"""The caller's clock and its one way of waiting, injectable so a session can run on virtual time.

A live session reads `time.perf_counter_ns()` and waits on its inbox with a real timeout. A test
can give a session a `VirtualClock`-like object instead (see `tests/client/memory_pair.py`): one
whose `wait` runs the pacer and an in-memory server up to the next thing that happens, so a whole
session runs in one thread, deterministically, however busy the machine is.
"""

from __future__ import annotations

import queue
import time
from typing import Any, Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Monotonic time in ns (the trace's clock)."""

    def wait(self, inbox: "queue.SimpleQueue[Any]", timeout_s: float) -> Any:
        """The next inbox item, waiting at most `timeout_s`; raises `queue.Empty` on timeout."""


class RealClock:
    """CLOCK_MONOTONIC and blocking waits: what every live session uses."""

    @staticmethod
    def now_ns() -> int:
        return time.perf_counter_ns()

    @staticmethod
    def wait(inbox: "queue.SimpleQueue[Any]", timeout_s: float) -> Any:
        return inbox.get(timeout=max(0.0, timeout_s))


REAL_CLOCK = RealClock()
