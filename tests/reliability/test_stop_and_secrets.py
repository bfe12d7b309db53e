"""Stopping a run with a signal loses nothing; an API key never lands in a run directory."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.trace import iter_trace_files, read_trace

REPO = Path(__file__).resolve().parents[2]


def _turns_in_traces(run_dir: Path) -> set[tuple[str, int]]:
    found = set()
    for path in iter_trace_files(run_dir / "traces"):
        trace = read_trace(path)
        found |= {(trace.header["session_id"], r["turn"]) for r in trace.records if r.get("mark") == "turn_start"}
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_stops_promptly_and_every_started_turn_has_its_record(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-u", "3", "-r", "3", "-t", "60s",
                             "--turns", "3", "--no-report", "--out", str(out), "--pacing-limit-ms", "100"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(list((out / "traces").glob("*.jsonl"))) < 3:
        time.sleep(0.5)
    time.sleep(4)
    sent_at = time.monotonic()
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent_at < 45, "the run did not stop promptly"
    assert (out / "summary.json").is_file() and (out / "turns.parquet").is_file(), output[-2000:]
    traced = _turns_in_traces(out)
    recorded = {(r["session_id"], r["turn"]) for r in pd.read_parquet(out / "turns.parquet").to_dict("records")}
    assert traced and recorded == traced


def test_no_file_of_a_run_directory_contains_the_api_key(tmp_path: Path) -> None:
    key = "sk-test-DUMMY-0123456789abcdef"
    env = {**os.environ, "HARNESS_TEST_KEY": key, "OPENAI_API_KEY": key}
    sim = subprocess.Popen([sys.executable, "-m", "harness", "sim", "--port", "0", "--require-key",
                            "--api-key-env", "HARNESS_TEST_KEY", "--quiet", "--fault", "drop_socket:nth=1"], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = sim.stdout.readline() if sim.stdout else ""
        url = line.split("listening on ", 1)[1].strip()
        out = tmp_path / "run"
        done = subprocess.run([sys.executable, "-m", "harness", "run", "-u", "2", "-r", "2", "-t", "6s", "--turns", "1",
                               "--rtf", "2", "--target", url + "?api-key=" + key, "--out", str(out), "--scenario-params",
                               '{"plain": {"utterances": ["default/utt11", "default/utt35"]}}',
                               "--pacing-limit-ms", "100"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        sim.terminate()
        sim.wait(timeout=15)
    # every turn's answer is dropped (the incident whose bundle is scanned): no turn is ok, so the
    # run fails its default gate (exit 6), and says why
    assert done.returncode == 6, done.stdout[-2000:] + done.stderr[-2000:]
    assert "FAILED: no turn was ok" in done.stdout
    assert key not in done.stdout + done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in files) and any(p.suffix == ".jsonl" for p in files)
    assert any(p.name == "bundle.json" for p in files)   # the incident bundles are scanned too
    for path in files:
        data = path.read_bytes()
        if data.startswith(b"\x1f\x8b"):   # compressed traces are scanned as what they hold
            data = gzip.decompress(data)
        assert key.encode() not in data, path
        assert b"Bearer sk-" not in data, path


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_loses_no_turn_its_traces_recorded(tmp_path: Path) -> None:
    import psutil

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--processes", "2", "-u", "4", "-r", "4",
                             "-t", "16s", "--turns", "3", "--rtf", "2", "--no-report", "--out", str(out),
                             "--pacing-limit-ms", "100"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and (len(workers) < 2 or len(list((out / "traces").glob("*.jsonl"))) < 4):
            time.sleep(0.5)
            masters = [p for p in psutil.Process(proc.pid).children() if "locust" in " ".join(p.cmdline())]
            workers = masters[0].children() if masters else []
        assert len(workers) == 2, "no Locust workers found"
        time.sleep(3)
        workers[0].send_signal(signal.SIGKILL)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (out / "summary.json").is_file(), output[-2000:]
    traced = _turns_in_traces(out)
    recorded = {(r["session_id"], r["turn"]) for r in pd.read_parquet(out / "turns.parquet").to_dict("records")}
    assert traced and recorded == traced, output[-2000:]
    killed = [p for p in iter_trace_files(out / "traces") if read_trace(p).footer is None]
    assert killed, "the killed worker left no unfinished trace"   # its sessions were measured from their traces
    assert proc.returncode in (0, 1), output[-2000:]
