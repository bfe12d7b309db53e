"""Load shapes: `--shape step:...` and `--shape ramp:...`, for `harness run` and plain Locust alike.

    step:users=20,step=5,every=10s[,rate=R][,for=2m]   5 callers, 10 s later 10, ... up to 20, then hold
    ramp:users=20,over=60s[,from=0][,rate=R][,for=2m]  from 0 rising linearly to 20 over 60 s, then hold

The shape holds its last count until `-t` ends the run (or `for=` ends the shape). Without `rate=`
each change is reached within one Locust tick (one second). `parse_shape` imports no Locust (so
`harness run`'s own process, and `harness replay`, stay unpatched); `harness.load.shape_class`
builds Locust's LoadTestShape for it.
The locustfile holds no shape class (Locust would always use one it finds there): the users'
`init` hook sets `environment.shape_class` only when `--shape` is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.load.options import LoadSettingsError, parse_timespan

SHAPE_FORMS = "step:users=20,step=5,every=10s or ramp:users=20,over=60s"
_KEYS = {"step": ({"users", "step", "every"}, {"rate", "for"}),
         "ramp": ({"users", "over"}, {"from", "rate", "for"})}
_TIMES = frozenset({"every", "over", "for"})


@dataclass(frozen=True)
class ShapePlan:
    kind: str
    users: int
    step: int = 0          # step: callers added per step
    every_s: float = 0.0   # step: seconds between steps
    start: int = 0         # ramp: callers at t = 0
    over_s: float = 0.0    # ramp: seconds from `start` to `users`
    rate: float | None = None   # callers started (stopped) per second; None: each change within a second
    for_s: float | None = None  # the shape ends (the test stops) after this long

    def users_at(self, elapsed_s: float) -> int:
        """The callers the shape asks for `elapsed_s` seconds into the test."""
        if self.kind == "step":
            return min(self.users, self.step * (int(elapsed_s // self.every_s) + 1))
        if elapsed_s >= self.over_s:
            return self.users
        return min(self.users, math.ceil(self.start + (self.users - self.start) * elapsed_s / self.over_s))

    def tick(self, elapsed_s: float, current_users: int) -> tuple[int, float] | None:
        """Locust's (user count, spawn rate) at `elapsed_s`; None once `for=` has passed."""
        if self.for_s is not None and elapsed_s >= self.for_s:
            return None
        target = self.users_at(elapsed_s)
        return target, self.rate if self.rate is not None else float(max(1, abs(target - current_users)))


def _bad(text: str, why: str) -> LoadSettingsError:
    return LoadSettingsError(f"--shape {text!r}: {why}; e.g. {SHAPE_FORMS}")


def _value(text: str, key: str, raw: str) -> float:
    try:
        value = float(parse_timespan(raw)) if key in _TIMES else float(raw)
    except ValueError:
        what = "a duration (10s, 2m)" if key in _TIMES else "a number"
        raise _bad(text, f"{key}={raw!r} is not {what}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and key != "from"):
        raise _bad(text, f"{key}={raw} must be more than 0")
    return value


def parse_shape(text: str | None) -> ShapePlan | None:
    """`--shape` as a plan; None when not given; LoadSettingsError (one line) when malformed."""
    if not text or not text.strip():
        return None
    kind, _, rest = text.strip().partition(":")
    if kind not in _KEYS:
        raise _bad(text, f"unknown shape {kind!r} (step or ramp)")
    needed, optional = _KEYS[kind]
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or key not in needed | optional:
            raise _bad(text, f"{part!r} is not one of {', '.join(sorted(needed | optional))} (KEY=VALUE)")
        values[key] = _value(text, key, raw.strip())
    missing = sorted(needed - values.keys())
    if missing:
        raise _bad(text, f"{kind} needs {', '.join(k + '=' for k in missing)}")
    for key in ("users", "step", "from"):
        if key in values and values[key] != int(values[key]):
            raise _bad(text, f"{key}={values[key]:g} must be a whole number of callers")
    plan = ShapePlan(kind=kind, users=int(values["users"]), step=int(values.get("step", 0)),
                     every_s=values.get("every", 0.0), start=int(values.get("from", 0)),
                     over_s=values.get("over", 0.0), rate=values.get("rate"), for_s=values.get("for"))
    if plan.start > plan.users:
        raise _bad(text, f"from={plan.start} is more than users={plan.users}")
    return plan


USER_COUNT_FILE = "users.csv"
USER_COUNT_COLUMNS = ("time_unix_s", "elapsed_s", "users", "target_users")


class UserCountLog:
    """The real number of running callers, once a second, into RUN_DIR/users.csv (what the runner
    counts: on a master, the sum its workers report), beside the count the shape or -u asked for.
    A thread (a greenlet under Locust) that appends one short line per second."""

    def __init__(self, path: Any, users: Any, target: Any, interval_s: float = 1.0) -> None:
        import threading

        self.path, self._users, self._target, self.interval_s = path, users, target, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-user-count", daemon=True)

    def start(self) -> "UserCountLog":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text(",".join(USER_COUNT_COLUMNS) + "\n", encoding="utf-8")
        self._thread.start()
        return self

    def sample(self, started: float) -> None:
        import time

        now = time.time()
        target = self._target()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{now:.3f},{now - started:.3f},{self._users()},{'' if target is None else target}\n")

    def _run(self) -> None:
        import time

        started = time.time()
        while True:
            self.sample(started)
            if self._stop.wait(self.interval_s):
                self.sample(started)   # the count as the test stopped
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.interval_s)
