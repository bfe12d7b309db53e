"""Numeric options are checked before anything starts: one stderr line naming the option, exit 2.

Each bad option goes through the real command lines, `harness run` and plain `locust -f
locustfile.py`, with a listening socket on 127.0.0.1 as the target: afterwards it must hold no
connection, and no run directory may exist. The subprocesses run in a few threads (each one is
~1 s of interpreter start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from harness.audio.wire import chunk_bytes
from harness.load import command
from harness.load.options import LoadSettingsError, check_options, parse_timespan
from harness.protocol import AudioFormat

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30       # a hung child fails the case instead of the suite
QUICK_S = 10         # "returns within a few seconds", with room for a busy 2-core CI machine

# (case, extra arguments, what the line must name)
BAD = [
    ("a chunk of 0 ms", ["--chunk-ms", "0"], "--chunk-ms"),
    ("a chunk of 7.3 ms (not a whole number of 8 kHz samples)", ["--chunk-ms", "7.3"], "--chunk-ms 7.3"),
    ("a chunk of 1/24 ms (whole at 24 kHz, not at 8 kHz)", ["--chunk-ms", "0.041666666666666664"], "--chunk-ms"),
    ("a negative chunk", ["--chunk-ms", "-20"], "--chunk-ms"),
    ("a chunk over a second", ["--chunk-ms", "1000.125"], "--chunk-ms"),
    ("an rtf of 0", ["--rtf", "0"], "--rtf"),
    ("a negative rtf", ["--rtf", "-1"], "--rtf"),
    ("an rtf that is not a number", ["--rtf", "nan"], "--rtf"),
    ("an infinite rtf", ["--rtf", "inf"], "--rtf"),
    ("a turn timeout of 0", ["--turn-timeout", "0"], "--turn-timeout"),
    ("a lateness limit of 0", ["--lateness-limit-ms", "0"], "--lateness-limit-ms"),
    ("a negative pacing limit", ["--pacing-limit-ms", "-1"], "--pacing-limit-ms"),
    ("0 users", ["-u", "0"], "--users"),
    ("a spawn rate of 0", ["-r", "0"], "--spawn-rate"),
    ("a run time of 0 s", ["-t", "0s"], "--run-time"),
    ("a run time that does not parse", ["-t", "10x"], "--run-time"),
    ("0 turns", ["--turns", "0"], "--turns"),
    ("a negative number of processes", ["--processes", "-1"], "--processes"),
]
# plain Locust reads -1 as "one worker per core" and resolves it before the harness sees it
NOT_FOR_PLAIN_LOCUST = {"a negative number of processes"}


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    """A target that accepts nothing: any connection attempt would wait in its backlog."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        yield sock


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "HARNESS_TARGET", "HARNESS_OUT", "HARNESS_RUN_ID")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(cmd: list[str], out: Path) -> dict[str, Any]:
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())
    except subprocess.TimeoutExpired as exc:
        return {"code": None, "stderr": str(exc.stderr or ""), "stdout": str(exc.stdout or ""),
                "seconds": TIMEOUT_S, "out": out}
    return {"code": done.returncode, "stderr": done.stderr, "stdout": done.stdout,
            "seconds": time.monotonic() - started, "out": out}


def _harness_run(target: str, args: list[str], out: Path) -> list[str]:
    """`target` "": the embedded simulator."""
    return [sys.executable, "-m", "harness", "run", *(["--target", target] if target else []), "--out", str(out),
            *args]


def _plain_locust(target: str, args: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "5s",
            *(["--target", target] if target else []), "--out", str(out), *args]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, listener: socket.socket) -> dict[tuple[str, str], Any]:
    base = tmp_path_factory.mktemp("option-checks")
    target = f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/realtime"
    jobs: dict[tuple[str, str], tuple[list[str], Path]] = {}
    for i, (case, args, _) in enumerate(BAD):
        jobs[("harness run", case)] = (_harness_run(target, args, base / f"run{i}"), base / f"run{i}")
        if case not in NOT_FOR_PLAIN_LOCUST:
            jobs[("plain locust", case)] = (_plain_locust(target, args, base / f"locust{i}"), base / f"locust{i}")
    jobs[("plain locust", "no --target")] = (_plain_locust("", [], base / "no-target"), base / "no-target")
    jobs[("harness run", "embedded simulator")] = (_harness_run("", ["--chunk-ms", "7.3"], base / "sim"), base / "sim")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(_run, cmd, out) for key, (cmd, out) in jobs.items()}
        done = {key: future.result() for key, future in futures.items()}
    return done


def _error_lines(stderr: str) -> list[str]:
    """stderr without Locust's own start-up log lines (`[time] host/INFO/locust.main: Starting Locust`)."""
    return [line for line in stderr.splitlines() if line.strip() and "/INFO/" not in line]


def _assert_refused_before_starting(result: dict[str, Any], names: str, listener: socket.socket) -> None:
    lines = _error_lines(result["stderr"])
    assert result["code"] == 2, (result["code"], lines[-5:], result["stdout"][-500:])
    assert len(lines) == 1, lines[:5]
    assert "error:" in lines[0] and names in lines[0], lines[0]
    assert result["seconds"] < QUICK_S, result["seconds"]
    assert not result["out"].exists(), "a run directory was created"
    assert "embedded simulator" not in result["stdout"]
    with pytest.raises(BlockingIOError):  # nobody connected to the target
        listener.accept()[0].close()


@pytest.mark.parametrize("case,names", [(case, names) for case, _, names in BAD], ids=[case for case, *_ in BAD])
def test_harness_run_refuses_a_bad_option_with_one_line_and_exit_2_before_starting_anything(
        results: dict, listener: socket.socket, case: str, names: str) -> None:
    _assert_refused_before_starting(results[("harness run", case)], names, listener)


PLAIN = [(case, names) for case, _, names in BAD if case not in NOT_FOR_PLAIN_LOCUST]


@pytest.mark.parametrize("case,names", PLAIN, ids=[case for case, _ in PLAIN])
def test_plain_locust_refuses_a_bad_option_with_one_line_and_exit_2_without_connecting(
        results: dict, listener: socket.socket, case: str, names: str) -> None:
    result = results[("plain locust", case)]
    _assert_refused_before_starting(result, names, listener)
    line = _error_lines(result["stderr"])[0]
    # the harness's own line, or Locust's parser's for the options it checks itself (-t 10x, -r 0)
    assert line.startswith("harness: error: ") or "error: argument " in line, line


def test_plain_locust_without_a_target_says_so_in_one_line_and_points_at_harness_run_and_harness_sim(
        results: dict, listener: socket.socket) -> None:
    result = results[("plain locust", "no --target")]
    _assert_refused_before_starting(result, "--target", listener)
    line = _error_lines(result["stderr"])[0]
    assert line.startswith("harness: error: no target") and "harness sim" in line and "harness run" in line


def test_harness_run_refuses_a_bad_option_before_starting_the_embedded_simulator(
        results: dict, listener: socket.socket) -> None:
    _assert_refused_before_starting(results[("harness run", "embedded simulator")], "--chunk-ms 7.3", listener)


def _defaults() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args([])


@pytest.mark.parametrize("changes", [{}, {"chunk_ms": 10.0}, {"chunk_ms": 0.125}, {"chunk_ms": 1000.0},
                                     {"run_time": "1h30m"}, {"run_time": "90"}, {"pacing_limit_ms": 0.0},
                                     {"processes": 2}, {"rtf": 0.5}],
                         ids=lambda c: ", ".join(f"{k}={v}" for k, v in c.items()) or "defaults")
def test_good_values_pass_the_check(changes: dict) -> None:
    args = _defaults()
    for name, value in changes.items():
        setattr(args, name, value)
    check_options(args)


def test_plain_locusts_parsed_options_pass_when_users_and_run_time_are_left_out() -> None:
    args = {k: v for k, v in vars(_defaults()).items() if k != "users"}   # Locust names it num_users
    check_options(SimpleNamespace(**{**args, "num_users": None, "run_time": None, "spawn_rate": None}))
    check_options(SimpleNamespace(**{**args, "num_users": 5, "run_time": 30, "spawn_rate": 1.0}))


def test_every_chunk_size_the_check_accepts_is_whole_samples_in_every_format() -> None:
    for chunk_ms in (0.125, 0.25, 10.0, 20.0, 37.5, 1000.0):
        check_options(SimpleNamespace(**{**vars(_defaults()), "chunk_ms": chunk_ms}))
        for fmt in AudioFormat:
            assert chunk_bytes(fmt, chunk_ms) > 0


def test_the_message_names_the_value_and_a_fix() -> None:
    with pytest.raises(LoadSettingsError) as info:
        check_options(SimpleNamespace(**{**vars(_defaults()), "chunk_ms": 7.3}))
    assert str(info.value) == ("--chunk-ms 7.3: must be a whole number of samples at 8 kHz (a multiple of "
                               "0.125 ms), e.g. 7.25 or 20")


TIMESPANS = ["30", "30s", "5m", "2h", "1h30m", "3h30m10s", "1h10s", "0", "0s", "007s", "10x", "", "s", "1.5s",
             "30m1h", "-5s", " 30s", "30s ", "1d", "1H", "١٢s", "1h 30m", "h", "mh"]


@pytest.fixture(scope="module")
def locusts_readings() -> dict[str, Any]:
    """Locust's own parse_timespan on every TIMESPANS text, in a child process: importing `locust`
    here would monkey-patch this test process with gevent."""
    code = ("import json, sys\n"
            "from locust.util.timespan import parse_timespan\n"
            "out = {}\n"
            "for text in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        out[text] = parse_timespan(text)\n"
            "    except ValueError:\n"
            "        out[text] = 'refused'\n"
            "print(json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(TIMESPANS)], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=_env())
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("text", TIMESPANS, ids=repr)
def test_the_run_time_is_read_exactly_as_locusts_own_parser_reads_it(locusts_readings: dict, text: str) -> None:
    try:
        ours: Any = parse_timespan(text)
    except ValueError:
        ours = "refused"
    assert ours == locusts_readings[text]


def test_checking_options_does_not_import_locust_into_harness_runs_own_process() -> None:
    code = ("import argparse, sys\n"
            "from harness.load import command\n"
            "parser = argparse.ArgumentParser(); command.add_arguments(parser)\n"
            "command.check_options(parser.parse_args(['-t', '1h30m']))\n"
            "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env=_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"  # importing locust would monkey-patch this process with gevent
