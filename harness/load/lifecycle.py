"""The run's life in each Locust process: options, test start and stop, records, the run directory.

Nothing is opened at import time (`--processes` forks after importing the locustfile). At each
test start the settings are read again from Locust's options (the web UI's form can change them;
every test gets its own run directory) and the corpus and pre-encoded audio are prepared, in each
process. Workers ship their records to the master with every Locust worker report and once more
when they stop. The master (or the single local process) assembles the test's run directory when
the test stops (`test_stop`; a master that is quitting first stops its workers and waits for their
last records) and sets the process exit code. The users themselves are in `harness.load.users`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from harness.client import SessionSpec
from harness.load import webui
from harness.load.board import LiveBoard
from harness.load.quiet import QuietProcess
from harness.load.options import (STOP_TIMEOUT_S, LoadSettings, add_harness_options, check_options,
                                  exit_on_bad_options, new_run_id)
from harness.load.records import SESSIONS_KEY, SHIP_KEY, RecordSink, append_rows
from harness.load.shape_class import locust_shape
from harness.load.shapes import USER_COUNT_FILE, UserCountLog, parse_shape
from harness.load.slo import load_slos
from harness.load.webui import bind_web_ui_to_loopback
from harness.load import status
from harness.load.run_info import run_info
from harness.rundir import finalize_run, summary_table
from harness.scenarios import preencode
from harness.trace import flush_all

log = logging.getLogger("harness.load")

# name of the Locust request -> turn-record metric
HEADLINE_METRICS = (("ttfa", "ttfa_ms"), ("vad_commit", "vad_commit_ms"), ("cancel_ack", "cancel_ack_ms"),
                    ("barge_in", "barge_in_ms"), ("tool_roundtrip", "tool_roundtrip_ms"))
SESSION_CLOSE_WAIT_S = 3.0   # at the stop, how long stopping sessions may take to close and record
FINAL_RECORDS_WAIT_S = 15.0   # beyond the stop timeout: how long a master waits for its workers' last records
ABORTED_FILE = "aborted.json"   # written when a Locust process stopped the run itself


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
    final_from: set[str] = set()     # the workers whose last records of this test arrived


RUN = _Run()
QUIET = QuietProcess()
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
    if not isinstance(environment.runner, WorkerRunner):   # a worker gets its master's in each spawn message
        environment.stop_timeout = max(float(environment.stop_timeout or 0), STOP_TIMEOUT_S)
    if options.target and not environment.host:
        environment.host = options.target   # the web UI's host field shows the target
    plan = parse_shape(getattr(options, "shape", None))
    if plan is not None and not isinstance(environment.runner, WorkerRunner):
        environment.shape_class = locust_shape(plan, environment)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(RECORDS_MESSAGE, lambda msg, **_: _keep_final(msg))
    webui.install(environment, BOARD)


def _spec(settings: LoadSettings, scenario: str, session_id: str) -> SessionSpec:
    return SessionSpec(
        url=settings.target, dialect=settings.dialect, fmt=settings.fmt, scenario=scenario,
        scenario_params=dict(settings.scenario_params.get(scenario, {})), corpus=RUN.corpus,
        auth=settings.auth, api_key_env=settings.api_key_env, chunk_ms=settings.chunk_ms, rtf=settings.rtf,
        turn_timeout_s=settings.turn_timeout_s, lateness_limit_ms=settings.lateness_limit_ms,
        vad_fallback=settings.vad_fallback, rtt_interval_s=settings.rtt_interval_s,
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
    RUN.final_from = set()
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
        status.start(environment, RUN.worker)   # progress: the once-a-second status file (harness run only)
        QUIET.start()   # no collector pause, no descriptor-table growth while users stream (harness.load.quiet)
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
    QUIET.stop()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        records, sessions = RUN.sink.take_batch() if RUN.sink is not None else ([], [])
        runner.send_message(RECORDS_MESSAGE, {SHIP_KEY: records, SESSIONS_KEY: sessions})
        return
    if isinstance(runner, MasterRunner):
        _collect_final_records(environment)
    _assemble(environment)


def _collect_final_records(environment: Any) -> None:
    """Every worker's last records, before the master assembles the run. A master told to quit
    stops its own side at once and gives its workers 0.5 s for their final reports, too little on a
    busy machine: so the master stops each worker still running itself (Locust's `stop` message)
    and waits, bounded, for every worker's RECORDS_MESSAGE (sent when it stopped)."""
    runner = environment.runner
    workers = {client.id for client in runner.clients.all}
    for client_id in workers - RUN.final_from:
        runner.send_message("stop", None, client_id)   # a worker already stopped ignores it
    deadline = time.monotonic() + float(environment.stop_timeout or 0) + FINAL_RECORDS_WAIT_S
    while not workers <= RUN.final_from and time.monotonic() < deadline:
        gevent.sleep(0.1)
    missing = workers - RUN.final_from
    if missing:
        log.warning("harness: no final records from %d worker(s) in time; their sessions are measured "
                    "from the traces they wrote", len(missing))


def _keep_final(msg: Any) -> None:
    _keep_shipped(msg.data)
    RUN.final_from.add(msg.node_id)


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
