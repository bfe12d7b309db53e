"""The Locust side: one `RealtimeUser` per simulated caller (the run's hooks: harness.load.lifecycle).

A user runs whole sessions in a loop (`harness.scenarios.run_scenario`). Each turn's record is
produced by the session's turn meter the moment the turn ends; that record is what Locust's
request events show (one per headline metric per turn, never per audio chunk) and what the web
UI's Realtime tab counts, and when the session ends its records and its send-lateness summary go
to the record sink (a per-worker file, and batches shipped to the master). Nothing re-reads a
trace while the run goes on: a session that ended without its records (Locust killed the user
mid-session) is measured from its trace when the run is assembled.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from locust import User, task
from locust.runners import WorkerRunner

from harness.client import SessionSpec
from harness.exit_codes import ExitCode
from harness.load import status   # harness run's progress line: a board of this process's turns
from harness.load.lifecycle import BOARD, HEADLINE_METRICS, RUN, _spec
from harness.load.spacing import StartSpacing, spawn_rate_of
from harness.scenarios import run_scenario, session_result
from harness.trace import redact_url

log = logging.getLogger("harness.load")

CONNECT_FAILURES_TO_ABORT = 3
REFUSED_BACKOFF_MAX_S = 8.0   # a user's wait after a refused session doubles up to this
REPEATED_FAILURES_TO_ABORT = 3
SPACING = StartSpacing()   # a batch of users Locust spawned at once starts 1/rate apart (harness.load.spacing)


class TurnFailure(Exception):
    """A failed turn or an incident, as Locust shows it in its failures table."""


class RealtimeUser(User):
    """One simulated caller: runs Realtime sessions back to back until the test stops."""

    def on_start(self) -> None:
        self._rng = random.Random()
        self._sessions = 0
        delay_s = SPACING.delay_s(time.monotonic(), spawn_rate_of(self.environment))
        if delay_s > 0:
            RUN.stop.wait(delay_s)   # returns at once when the run is stopping

    def _scenario(self) -> str:
        assert RUN.settings is not None
        names = list(RUN.settings.mix)
        return self._rng.choices(names, weights=[RUN.settings.mix[n] for n in names])[0]

    @task
    def session(self) -> None:
        settings = RUN.settings
        if settings is None or RUN.stop.is_set():
            time.sleep(0.2)
            return
        self._sessions += 1
        session_id = f"{RUN.worker}-{id(self) & 0xFFFFFF:06x}-{self._sessions}"
        users = self.environment.runner.user_count if self.environment.runner else None
        result = None
        spec = _spec(settings, self._scenario(), session_id)
        RUN.active += 1
        sessions: list[Any] = []
        try:
            result = run_scenario(spec, stop=RUN.stop, on_turn_end=lambda record: self._live(record, users),
                                  on_session=sessions.append)
        except Exception as exc:  # noqa: BLE001 - a bug or bad spec: said once, the run stopped, no flood
            self._session_failed(exc)
            return
        finally:
            RUN.active -= 1
            if result is None and sessions and sessions[0].rec.closed:
                result = session_result(sessions[0])   # Locust killed this user: its meter still measured
            self._record(spec, result, users)
        if RUN.stop.is_set() or result is None:
            return
        if result.connect_failed:
            # a refusing target: back off (0.5, 1, 2, 4, 8 s), never a storm of reconnects
            self._refused = getattr(self, "_refused", 0) + 1
            time.sleep(min(REFUSED_BACKOFF_MAX_S, 0.5 * 2 ** (self._refused - 1)))
        else:
            self._refused = 0
            if result.turns_ok == 0 and result.reason == "error":
                time.sleep(0.5)  # a failing target: no busy loop of reconnects

    def _record(self, spec: SessionSpec, result: Any, users: int | None) -> None:
        """Hand the session's records (measured as it ran) and its lateness summary to the sink.

        A session that ended by an exception Locust raised into it (its user killed at the stop)
        has no result: its trace, flushed as it went, is measured when the run is assembled.
        """
        if result is None or result.measure_error:
            if result is not None:
                log.error("harness: session %s: live measurement failed (%s); measured from its trace at the end",
                          spec.session_id, result.measure_error)
            return
        records = result.records
        for record in records:
            record.setdefault("users", users)
        if result.connect_failed:
            self.environment.events.request.fire(request_type="realtime", name="connect", response_time=0,
                                                 response_length=0, exception=TurnFailure(result.error or "connect failed"))
        session = {"session_id": spec.session_id, "reason": result.reason, "turns": len(records),
                   "connect_failed": result.connect_failed, "error": result.error, "lateness": result.lateness,
                   "conformance": result.conformance}
        assert RUN.sink is not None
        on_worker = isinstance(self.environment.runner, WorkerRunner)
        RUN.sink.add(records, session, ship=on_worker)
        status.BOARD.note_session(result.lateness)   # progress: the pacing gate's buckets
        if not on_worker:
            BOARD.add_session(session)
        self._watch_target(result.connect_failed, result)

    def _live(self, record: dict[str, Any], users: int | None) -> None:
        """A turn just ended: its record (the one the run directory keeps) goes to Locust's stats
        and (not on a worker: its master's board gets the shipped records) the Realtime tab."""
        record["users"] = users
        status.BOARD.note_turn(record)   # progress: counts and the rolling window, O(1)
        self._fire(record)
        if not isinstance(self.environment.runner, WorkerRunner):
            BOARD.add_turn(record)

    def _fire(self, record: dict[str, Any]) -> None:
        fire = self.environment.events.request.fire
        for name, metric in HEADLINE_METRICS:
            value = record.get(metric)
            if value is not None:
                fire(request_type="realtime", name=name, response_time=value, response_length=0, exception=None)
        if record.get("status") in ("timeout", "error", "invalid_pacing"):
            fire(request_type="realtime", name=f"turn_{record['status']}", response_time=0, response_length=0,
                 exception=TurnFailure(f"turn {record['status']}"))
        if record.get("incident"):
            fire(request_type="realtime", name=f"incident:{record['incident']}", response_time=0,
                 response_length=0, exception=TurnFailure(f"incident {record['incident']}"))

    def _session_failed(self, exc: Exception) -> None:
        """A session raised instead of returning a result: a user error (a bad spec) stops the run
        at once with its one line (exit 2); any other exception is logged with its traceback the
        first time, counted after that, and stops the run when sessions fail the same way
        REPEATED_FAILURES_TO_ABORT times in a row (exit 4). Never a flood of tracebacks."""
        words = f"{type(exc).__name__}: {exc}"
        if getattr(exc, "user_error", False):
            self._abort(words, ExitCode.BAD_INPUT)
            return
        if words != RUN.last_failure:
            RUN.last_failure, RUN.same_failures = words, 0
            log.exception("harness: a session failed: %s", words)
        RUN.same_failures += 1
        if RUN.same_failures >= REPEATED_FAILURES_TO_ABORT:
            self._abort(f"{RUN.same_failures} sessions in a row failed with {words}", ExitCode.INTERNAL)
        else:
            time.sleep(0.5)

    def _abort(self, message: str, exit_code: int) -> None:
        if RUN.aborted:
            return
        RUN.aborted, RUN.abort_exit_code = message, exit_code
        log.error("harness: %s", message)
        RUN.stop.set()
        runner = self.environment.runner
        if runner is not None:
            threading.Thread(target=runner.quit, daemon=True).start()

    def _watch_target(self, connect_failed: bool, result: Any) -> None:
        """Stop the run early when the target refuses every connection (no hang, a clear error)."""
        RUN.same_failures = 0
        if not connect_failed:
            RUN.successes += 1
            RUN.failures_in_a_row = 0
            return
        RUN.failures_in_a_row += 1
        if RUN.successes == 0 and RUN.failures_in_a_row >= CONNECT_FAILURES_TO_ABORT and not RUN.aborted:
            assert RUN.settings is not None
            RUN.aborted = (f"target {redact_url(RUN.settings.target)} refused {RUN.failures_in_a_row} sessions "
                           f"in a row ({getattr(result, 'error', None)}); is it running, is the URL right, does it "
                           f"accept this dialect, format and key?")
            log.error("harness: %s", RUN.aborted)
            RUN.stop.set()
            runner = self.environment.runner
            if runner is not None:
                threading.Thread(target=runner.quit, daemon=True).start()
