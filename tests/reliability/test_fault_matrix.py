"""The fault matrix, end to end through `harness run`: every way the target can fail becomes
recorded turns with the right status and incident cause, the documented exit code, and a report.

Each run: 2 callers for a few seconds at twice real time against the embedded simulator with one
fault on every response, gated by `incident_rate:any<0.5` (so a fault that makes incidents
fails the run with exit 1, one that does not passes with 0; a fault that leaves no turn ok fails
the default gate, exit 6). Pacing limits are loose: these runs
test fault handling, and a shared CI machine may send late. Long: marked slow.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.trace import iter_trace_files, read_trace

REPO = Path(__file__).resolve().parents[2]
GATE = "incident_rate:any<0.5"
RUN_S = 7
# the shortest utterances (about 2 s): several whole turns fit in a short run
SHORT = json.dumps({"plain": {"utterances": ["default/utt11", "default/utt35", "default/utt01"]}})


def _run(out: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "run", "-u", "2", "-r", "2", "-t", f"{RUN_S}s",
                           "--turns", "2", "--rtf", "2", "--pacing-limit-ms", "100", "--lateness-limit-ms", "500", "--slo", GATE,
                           "--scenario-params", SHORT, "--out", str(out), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout_s)


def _rows(out: Path) -> list[dict[str, Any]]:
    return pd.read_parquet(out / "turns.parquet").to_dict("records")


def _violated_rules(out: Path) -> set[str]:
    rules: set[str] = set()
    for path in iter_trace_files(out / "traces"):
        rules |= {r["rule"] for r in read_trace(path).records if r.get("rec") == "violation"}
    return rules


def _started_turns(out: Path) -> int:
    return sum(sum(1 for r in read_trace(p).records if r.get("mark") == "turn_start")
               for p in iter_trace_files(out / "traces"))


def _check_run_directory(out: Path, done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert (out / "summary.json").is_file(), done.stdout[-1500:] + done.stderr[-1500:]
    assert (out / "report.html").stat().st_size > 20_000           # the report built (plotly beside it, once)
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    rows = _rows(out)
    assert len(rows) == _started_turns(out) > 0                      # every started turn has its record
    assert json.loads((out / "summary.json").read_text())["exit_code"] == done.returncode
    return rows


# fault -> (incident every finished turn must carry (None: none), status of those turns, exit code)
INCIDENT_FAULTS = {
    "drop_socket": ("disconnected", "error", 6),     # no turn is ok: the run measured nothing (exit 6)
    "close:code=1000": ("disconnected", "error", 6),
    "close:code=1011": ("disconnected", "error", 6),
    "close:code=4000": ("disconnected", "error", 6),
    "stall:ms=1500": ("stalled", "ok", 1),
    "failed": ("failed", "error", 6),
    "error_event": ("failed", "ok", 1),
    "incomplete": ("max_tokens", "ok", 1),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(INCIDENT_FAULTS))
def test_a_fault_on_every_response_gives_its_cause_on_every_finished_turn(fault: str, tmp_path: Path) -> None:
    cause, status, code = INCIDENT_FAULTS[fault]
    done = _run(tmp_path / "run", "--sim-fault", fault)
    rows = _check_run_directory(tmp_path / "run", done)
    finished = [r for r in rows if r["status"] != "stopped" and r.get("response_id")]
    assert finished and all(r["incident"] == cause for r in finished), [(r["status"], r["incident"]) for r in rows]
    assert all(r["status"] == status for r in finished)
    assert done.returncode == code, done.stdout[-1500:]


@pytest.mark.slow
@pytest.mark.parametrize("fault,rule", [("malformed_json", "decodable_event"),
                                        ("unknown_event", "unknown_event_type")])
def test_a_broken_frame_is_a_recorded_violation_and_the_turns_still_succeed(fault: str, rule: str,
                                                                            tmp_path: Path) -> None:
    done = _run(tmp_path / "run", "--sim-fault", fault)
    rows = _check_run_directory(tmp_path / "run", done)
    assert rule in _violated_rules(tmp_path / "run")
    assert any(r["status"] == "ok" for r in rows) and not any(r["incident"] for r in rows)
    assert done.returncode == 0, done.stdout[-1500:]


@pytest.mark.slow
def test_audio_slower_than_real_time_is_counted_as_underruns_not_incidents(tmp_path: Path) -> None:
    done = _run(tmp_path / "run", "--sim-fault", "slow_audio:rtf=1.5")
    rows = _check_run_directory(tmp_path / "run", done)
    answered = [r for r in rows if r["status"] == "ok"]
    assert answered and all(r["underrun_count"] >= 1 for r in answered)
    assert not any(r["incident"] for r in rows) and done.returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["ws", "wss"], ids=["refused", "tls-to-plain-server"])
def test_a_target_that_cannot_be_reached_ends_the_run_with_exit_3(scheme: str, tmp_path: Path) -> None:
    if scheme == "ws":
        url = f"ws://127.0.0.1:{_free_port()}/v1/realtime"      # nobody listens
        listener = None
    else:
        listener = socket.socket()                               # a plain TCP server that is not TLS
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"wss://127.0.0.1:{listener.getsockname()[1]}/v1/realtime"
    try:
        started = time.monotonic()
        done = _run(tmp_path / "run", "--target", url, timeout_s=90)
    finally:
        if listener is not None:
            listener.close()
    assert done.returncode == 3, done.stdout[-1500:] + done.stderr[-1500:]
    assert time.monotonic() - started < 60
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["sessions"]["connect_failed"] == summary["sessions"]["total"] >= 1
    assert (tmp_path / "run" / "report.html").is_file()


def _start_sim(port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "harness", "sim", "--port", str(port), "--quiet",
                             "--corpus", "corpora/default"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    assert "listening on" in line, line
    return proc, line.split("listening on ", 1)[1].strip()


@pytest.mark.slow
def test_a_simulator_killed_and_restarted_mid_run_gives_failed_turns_then_answers_again(tmp_path: Path) -> None:
    port = _free_port()
    sim, url = _start_sim(port)
    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "harness", "run", "-u", "2", "-r", "2", "-t", "16s", "--turns", "2",
                            "--rtf", "2", "--pacing-limit-ms", "100", "--target", url, "--out", str(out)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(6)
        sim.send_signal(signal.SIGKILL)
        sim.wait(10)
        killed_at = time.perf_counter_ns()
        time.sleep(2)
        sim, _ = _start_sim(port)
        output, _ = run.communicate(timeout=90)
    finally:
        for proc in (run, sim):
            if proc.poll() is None:
                proc.kill()
    rows = _check_run_directory(out, subprocess.CompletedProcess(run.args, run.returncode, output, ""))
    assert any(r["status"] == "error" for r in rows), "the kill failed no turn"
    traces = [read_trace(p) for p in iter_trace_files(out / "traces")]
    later = [t for t in traces if t.records and t.records[0]["t_ns"] > killed_at + 2_000_000_000]
    assert any(r.get("type") == "response.done" for t in later for r in t.records), "no answer after the restart"
    assert run.returncode in (0, 1), output[-1500:]
