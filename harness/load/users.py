"""The Locust side: one `RealtimeUser` per simulated caller, and the run's event hooks.

Nothing is opened at import time (`--processes` forks after importing the locustfile): the
settings, corpus and pre-encoded audio are prepared in `init`/`test_start`, in each process.
A user runs whole sessions in a loop (`harness.scenarios.run_scenario`). Each turn's record is
produced by the session's turn meter the moment the turn ends; that record is what Locust's
request events show (one per headline metric per turn, never per audio chunk), and when the
session ends its records and its send-lateness summary go to the record sink (a per-worker file,
and batches shipped to the master). Nothing re-reads a trace while the run goes on: a session
that ended without its records (Locust killed the user mid-session) is measured from its trace
when the run is assembled. The master (or the single local process) writes the run directory in
`quitting` and sets the process exit code.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

from locust import User, events, task
from locust.runners import MasterRunner, WorkerRunner

from harness.client import SessionSpec
from harness.load.options import LoadSettings, add_harness_options, exit_on_bad_options
from harness.load.records import SESSIONS_KEY, SHIP_KEY, RecordSink, append_rows
from harness.load import status   # harness run's progress line: a board of this process's turns
from harness.load.run_info import run_info
from harness.rundir import finalize_run, summary_table
from harness.scenarios import preencode, run_scenario, session_result
from harness.trace import flush_all, redact_url

log = logging.getLogger("harness.load")

# name of the Locust request -> turn-record metric
HEADLINE_METRICS = (("ttfa", "ttfa_ms"), ("vad_commit", "vad_commit_ms"), ("cancel_ack", "cancel_ack_ms"),
                    ("barge_in", "barge_in_ms"), ("tool_roundtrip", "tool_roundtrip_ms"))
CONNECT_FAILURES_TO_ABORT = 3
SESSION_CLOSE_WAIT_S = 3.0
REFUSED_BACKOFF_MAX_S = 8.0
REPEATED_FAILURES_TO_ABORT = 3
EXIT_BAD_INPUT, EXIT_INTERNAL = 2, 4
ABORTED_FILE = "aborted.json"   # written when a Locust process stopped the run itself  # a user's wait after a refused session doubles up to this   # at quit, how long stopping sessions may take to close and record


class TurnFailure(Exception):
    """A failed turn or an incident, as Locust shows it in its failures table."""


class _Run:
    """Per-process state, built in `init` (after the fork)."""

    settings: LoadSettings | None = None
    worker = "local"
    sink: RecordSink | None = None
    corpus: Any = None
    stop = threading.Event()
    failures_in_a_row = 0
    successes = 0
    aborted = ""
    active = 0      # sessions running in this process
    last_failure = ""   # the last exception a session raised (type and message)
    same_failures = 0   # sessions in a row that raised it
    abort_exit_code: int | None = None


RUN = _Run()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    add_harness_options(parser)


def _worker_name(runner: Any) -> str:
    if isinstance(runner, WorkerRunner):
        return "w" + str(runner.client_id).rsplit("_", 1)[-1][:8]
    return "local"


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    if environment.parsed_options is None:
        return
    exit_on_bad_options(environment.parsed_options)
    settings = LoadSettings.from_options(environment.parsed_options)
    RUN.settings = settings
    RUN.worker = _worker_name(environment.runner)
    RUN.sink = RecordSink(settings.out, RUN.worker)
    if isinstance(environment.runner, MasterRunner):
        return
    from harness.corpus import load_corpus

    RUN.corpus = load_corpus(settings.corpus)


def _spec(settings: LoadSettings, scenario: str, session_id: str) -> SessionSpec:
    return SessionSpec(
        url=settings.target, dialect=settings.dialect, fmt=settings.fmt, scenario=scenario,
        scenario_params=dict(settings.scenario_params.get(scenario, {})), corpus=RUN.corpus,
        auth=settings.auth, api_key_env=settings.api_key_env, chunk_ms=settings.chunk_ms, rtf=settings.rtf,
        turn_timeout_s=settings.turn_timeout_s, lateness_limit_ms=settings.lateness_limit_ms,
        vad_fallback=settings.vad_fallback,
        turns=settings.turns, run_id=settings.run_id, session_id=session_id, worker=RUN.worker,
        trace_dir=settings.out / "traces",
    )


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    RUN.stop.clear()
    settings = RUN.settings
    if settings is None or isinstance(environment.runner, MasterRunner):
        return
    for scenario in settings.mix:  # encode every clip now, not while other callers stream
        preencode(_spec(settings, scenario, "preencode"))
    status.start(environment, RUN.worker)   # progress: the once-a-second status file (harness run only)


@events.test_stopping.add_listener
def _test_stopping(**_: Any) -> None:
    RUN.stop.set()  # sessions end within ~0.25 s, their traces closed with reason "stopped"


@events.report_to_master.add_listener
def _ship(data: dict[str, Any], **_: Any) -> None:
    if RUN.sink is not None:
        data[SHIP_KEY], data[SESSIONS_KEY] = RUN.sink.take_batch()


@events.worker_report.add_listener
def _receive(client_id: str, data: dict[str, Any], **_: Any) -> None:
    settings = RUN.settings
    if settings is None:
        return
    master = f"master-{RUN.worker}"
    append_rows(settings.out / "records" / f"{master}.jsonl", data.get(SHIP_KEY) or [])
    append_rows(settings.out / "sessions" / f"{master}.jsonl", data.get(SESSIONS_KEY) or [])


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    RUN.stop.set()
    deadline = time.monotonic() + SESSION_CLOSE_WAIT_S
    while RUN.active > 0 and time.monotonic() < deadline:   # let stopped sessions write their footers
        time.sleep(0.05)
    flush_all()
    settings = RUN.settings
    if settings is None or isinstance(environment.runner, WorkerRunner):
        return
    import os

    if RUN.aborted:   # for `harness run`, which assembles the run itself: why this process stopped it
        settings.out.mkdir(parents=True, exist_ok=True)
        (settings.out / ABORTED_FILE).write_text(json.dumps({"message": RUN.aborted,
                                                             "exit_code": RUN.abort_exit_code}), encoding="utf-8")
    if os.environ.get("HARNESS_FINALIZE", "1") == "0":
        return  # `harness run` assembles the run directory itself
    options = environment.parsed_options
    summary = finalize_run(settings.out, run_info(settings, getattr(options, "num_users", None),
                                                   getattr(options, "spawn_rate", None), getattr(options, "run_time", None)),
                           settings.slos, settings.pacing_limit_ms)
    print(summary_table(summary), flush=True)
    print(f"harness: run directory {settings.out}", flush=True)
    if RUN.aborted:
        print(f"harness: {RUN.aborted}", flush=True)
    environment.process_exit_code = RUN.abort_exit_code or summary["exit_code"]


class RealtimeUser(User):
    """One simulated caller: runs Realtime sessions back to back until the test stops."""

    def on_start(self) -> None:
        self._rng = random.Random()
        self._sessions = 0

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
        RUN.sink.add(records, session, ship=isinstance(self.environment.runner, WorkerRunner))
        status.BOARD.note_session(result.lateness)   # progress: the pacing gate's buckets
        self._watch_target(result.connect_failed, result)

    def _live(self, record: dict[str, Any], users: int | None) -> None:
        """A turn just ended: its record (the one the run directory keeps) goes to Locust's stats."""
        record["users"] = users
        status.BOARD.note_turn(record)   # progress: counts and the rolling window, O(1)
        self._fire(record)

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
            self._abort(words, EXIT_BAD_INPUT)
            return
        if words != RUN.last_failure:
            RUN.last_failure, RUN.same_failures = words, 0
            log.exception("harness: a session failed: %s", words)
        RUN.same_failures += 1
        if RUN.same_failures >= REPEATED_FAILURES_TO_ABORT:
            self._abort(f"{RUN.same_failures} sessions in a row failed with {words}", EXIT_INTERNAL)
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
