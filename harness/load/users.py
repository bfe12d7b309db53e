"""The Locust side: one `RealtimeUser` per simulated caller, and the run's event hooks.

Nothing is opened at import time (`--processes` forks after importing the locustfile): the
settings, corpus and pre-encoded audio are prepared in `init`/`test_start`, in each process.
A user runs whole sessions in a loop (`harness.scenarios.run_scenario`). Each turn's record is
produced by the session's turn meter the moment the turn ends; that record is what Locust's
request events show (one per headline metric per turn, never per audio chunk), and when the
session ends its records and its send-lateness summary go to the record sink (a per-worker file,
and batches shipped to the master). Nothing re-reads a trace while the run goes on: a session
that ended without its records (Locust killed the user mid-session) is measured from its trace
when the run is assembled. The settings are read again from Locust's options at each test start
(the web UI's form can change them; each test gets its own run directory), and the master (or the
single local process) assembles that directory when the test stops (`test_stop`; `quitting` when
a master quits with its workers still running) and sets the process exit code.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

import os

import gevent
from locust import User, events, task
from locust.runners import MasterRunner, WorkerRunner

from harness.client import SessionSpec
from harness.load import webui
from harness.load.live import LiveBoard
from harness.load.options import LoadSettings, add_harness_options, check_options, exit_on_bad_options, new_run_id
from harness.load.shape_class import locust_shape
from harness.load.shapes import USER_COUNT_FILE, UserCountLog, parse_shape
from harness.load.slo import load_slos
from harness.load.webui import bind_web_ui_to_loopback
from harness.load.records import SESSIONS_KEY, SHIP_KEY, RecordSink, append_rows
from harness.rundir import finalize_run, run_info, summary_table
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
    assembled = False   # this test's run directory is written
    corpus_path = ""
    used_outs: set[str] = set()      # run directories earlier tests of this process wrote
    used_run_ids: set[str] = set()
    user_log: UserCountLog | None = None


RUN = _Run()
BOARD = LiveBoard([metric for _, metric in HEADLINE_METRICS] + ["response_done_ms"])
RECORDS_MESSAGE = "harness_records_at_stop"   # a worker's last records, sent before it reports stopped


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    add_harness_options(parser)
    bind_web_ui_to_loopback(parser)


def _worker_name(runner: Any) -> str:
    if isinstance(runner, WorkerRunner):
        return "w" + str(runner.client_id).rsplit("_", 1)[-1][:8]
    return "local"


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    exit_on_bad_options(options)   # the command line's options: exit 2 before anything starts
    RUN.worker = _worker_name(environment.runner)
    if options.target and not environment.host:
        environment.host = options.target   # the web UI's host field shows the target
    plan = parse_shape(getattr(options, "shape", None))
    if plan is not None and not isinstance(environment.runner, WorkerRunner):
        environment.shape_class = locust_shape(plan, environment)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(RECORDS_MESSAGE, lambda msg, **_: _keep_shipped(msg.data))
    webui.install(environment, BOARD)


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


def _settings_for_test(environment: Any) -> LoadSettings:
    """This test's settings, read again from Locust's options (the web UI's form may have changed
    them). A test started from the web UI never writes into an earlier test's directory: an
    `--out`/`--run-id` already used by this process gives way to a fresh run id (beside it)."""
    options = environment.parsed_options
    host = str(environment.host or "")
    if host:
        options.target = host   # the web UI's host field (or -H): a non-WebSocket one is named as bad
    check_options(options)
    settings = LoadSettings.from_options(options)
    if not options.headless and not isinstance(environment.runner, WorkerRunner) and \
            (str(settings.out) in RUN.used_outs or settings.run_id in RUN.used_run_ids):
        settings.run_id = new_run_id()
        settings.out = settings.out.parent / settings.run_id
    load_slos(settings.slos)
    if not isinstance(environment.runner, WorkerRunner):
        options.run_id, options.out = settings.run_id, str(settings.out)   # the workers get these
        RUN.used_outs.add(str(settings.out))
        RUN.used_run_ids.add(settings.run_id)
    return settings


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    RUN.stop.clear()
    RUN.failures_in_a_row = RUN.successes = RUN.same_failures = 0
    RUN.aborted, RUN.last_failure, RUN.abort_exit_code, RUN.assembled = "", "", None, False
    RUN.settings = None
    try:
        settings = _settings_for_test(environment)
    except Exception as exc:  # noqa: BLE001 - a bad value from the web UI's form: its line, no test
        if not getattr(exc, "user_error", False):
            raise
        BOARD.reset("", "")
        BOARD.message = f"not started: {exc}"
        log.error("harness: error: %s", exc)
        gevent.spawn(environment.runner.stop)
        return
    RUN.settings = settings
    RUN.sink = RecordSink(settings.out, RUN.worker)
    BOARD.reset(settings.run_id, str(settings.out), settings.pacing_limit_ms)
    if isinstance(environment.runner, WorkerRunner) or not isinstance(environment.runner, MasterRunner):
        from harness.corpus import load_corpus

        if RUN.corpus is None or RUN.corpus_path != settings.corpus:
            RUN.corpus, RUN.corpus_path = load_corpus(settings.corpus), settings.corpus
        for scenario in settings.mix:  # encode every clip now, not while other callers stream
            preencode(_spec(settings, scenario, "preencode"))
    if not isinstance(environment.runner, WorkerRunner):
        runner = environment.runner
        shape = environment.shape_class
        target = getattr(shape, "target_users", None) or (lambda: getattr(environment.parsed_options, "num_users", None))
        RUN.user_log = UserCountLog(settings.out / USER_COUNT_FILE, lambda: runner.user_count, target).start()


@events.test_stopping.add_listener
def _test_stopping(**_: Any) -> None:
    RUN.stop.set()  # sessions end within ~0.25 s, their traces closed with reason "stopped"


def _wait_for_sessions() -> None:
    deadline = time.monotonic() + SESSION_CLOSE_WAIT_S
    while RUN.active > 0 and time.monotonic() < deadline:   # let stopped sessions write their footers
        time.sleep(0.05)
    flush_all()


@events.test_stop.add_listener
def _test_stop(environment: Any, **_: Any) -> None:
    """The test is over: a worker sends the master its last records (before it reports itself
    stopped); the master, once every worker has stopped, or the single process assembles this
    test's run directory now, not at exit. A master told to quit (its workers still running) leaves
    it to `quitting`, after the workers' final reports."""
    RUN.stop.set()
    if RUN.user_log is not None:
        RUN.user_log.stop()
        RUN.user_log = None
    _wait_for_sessions()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        if RUN.sink is not None:
            records, sessions = RUN.sink.take_batch()
            runner.send_message(RECORDS_MESSAGE, {SHIP_KEY: records, SESSIONS_KEY: sessions})
        return
    if isinstance(runner, MasterRunner) and runner.user_count > 0:
        return
    _assemble(environment)


def _keep_shipped(data: dict[str, Any]) -> None:
    settings = RUN.settings
    if settings is None:
        return
    master = f"master-{RUN.worker}"
    records, sessions = data.get(SHIP_KEY) or [], data.get(SESSIONS_KEY) or []
    append_rows(settings.out / "records" / f"{master}.jsonl", records)
    append_rows(settings.out / "sessions" / f"{master}.jsonl", sessions)
    for record in records:
        BOARD.add_turn(record)
    for session in sessions:
        BOARD.add_session(session)


@events.report_to_master.add_listener
def _ship(data: dict[str, Any], **_: Any) -> None:
    if RUN.sink is not None:
        data[SHIP_KEY], data[SESSIONS_KEY] = RUN.sink.take_batch()


@events.worker_report.add_listener
def _receive(client_id: str, data: dict[str, Any], **_: Any) -> None:
    _keep_shipped(data)


def _assemble(environment: Any) -> None:
    """This test's run directory (records, summary, gates, report) and the process exit code."""
    settings = RUN.settings
    if settings is None or RUN.assembled:
        return
    RUN.assembled = True
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
    BOARD.message = f"assembled: exit code {environment.process_exit_code}"


@events.quitting.add_listener
def _quitting(environment: Any, **_: Any) -> None:
    RUN.stop.set()
    _wait_for_sessions()
    if not isinstance(environment.runner, WorkerRunner):
        _assemble(environment)   # a master that quit with its workers running; else done at test_stop


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
        on_worker = isinstance(self.environment.runner, WorkerRunner)
        RUN.sink.add(records, session, ship=on_worker)
        if not on_worker:
            BOARD.add_session(session)
        self._watch_target(result.connect_failed, result)

    def _live(self, record: dict[str, Any], users: int | None) -> None:
        """A turn just ended: its record (the one the run directory keeps) goes to Locust's stats
        and (not on a worker: its master's board gets the shipped records) the Realtime tab."""
        record["users"] = users
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
