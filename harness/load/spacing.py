"""Locust starts users in batches: at `-r 50` it spawns 50 users back to back (0.1 ms apart) once a
second. Their sessions then open together, and 50 handshakes and session set-ups in one burst held
a 300-user load process 20-30 ms: every stream in flight sent late (161 appends over 20 ms in one
burst). `StartSpacing` spreads a batch over its second: a new user's first session waits for its
slot, `1/rate` after the previous user's (at most `MAX_SPACING_S`), so users start at the rate
Locust was given, evenly.
"""

from __future__ import annotations

from typing import Any

MAX_SPACING_S = 0.02


def spawn_rate_of(environment: Any) -> float | None:
    """Users per second this process is spawning: its dispatcher's (a shape's current rate too),
    else the command line's `-r`."""
    runner = getattr(environment, "runner", None)
    rate = getattr(getattr(runner, "_users_dispatcher", None), "_spawn_rate", None)
    if not isinstance(rate, (int, float)) or rate <= 0:
        rate = getattr(getattr(environment, "parsed_options", None), "spawn_rate", None)
    return float(rate) if isinstance(rate, (int, float)) and rate > 0 else None


class StartSpacing:
    """The start slots of one process's new users, `1/rate` apart (at most MAX_SPACING_S)."""

    def __init__(self) -> None:
        self._next_s = 0.0

    def delay_s(self, now_s: float, rate: float | None) -> float:
        """How long a user spawned at `now_s` waits before its first session."""
        if rate is None:
            return 0.0
        slot = max(now_s, self._next_s)
        self._next_s = slot + min(1.0 / rate, MAX_SPACING_S)
        return slot - now_s
