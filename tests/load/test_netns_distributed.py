"""Across hosts: the Locust master, two workers and the target, each in its own network namespace.

The namespaces are joined by veth pairs to a bridge that lives in a fifth namespace (the
"switch"), so every address (10.77.0.0/24) exists only inside namespaces this test made; nothing
is added to the host's own network. The target is `harness sim` on 10.77.0.10, the master binds
10.77.0.2, the workers connect to it from 10.77.0.3 and .4. Each node writes its own `--out`
folder, as separate machines would: the master sees only what the workers ship over Locust's
worker reports. One worker is killed with SIGKILL mid-run; then the master's run directory must
hold a record of every turn the surviving worker's traces recorded (its turn_end), and every turn
of the killed one whose session closed two report intervals before the kill (a worker records a
session's turns when the session ends; the last ones before it died never reached the master, and
live only on the killed worker's own disk).

Skipped, with the reason, only where namespaces cannot be made (not root, or `ip netns add`
refused). The namespaces are deleted in a `finally`, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness.corpus import SHIPPED_CORPORA_DIR
from harness.trace import iter_trace_files, read_trace
from harness.trace.vocabulary import Mark

from .runs import REPO

pytestmark = pytest.mark.slow
SUBNET = "10.77.0"
NODES = {"target": 10, "master": 2, "w1": 3, "w2": 4}
MASTER_PORT, TARGET_PORT = 5557, 8765
REPORT_INTERVAL_S = 3.0   # Locust's worker report interval (locust.runners.WORKER_REPORT_INTERVAL)


def _ip(*words: str) -> None:
    subprocess.run(["ip", *words], check=True, capture_output=True, text=True, timeout=20)


class Namespaces:
    """Named namespaces for one test run, all removed by `delete()`."""

    def __init__(self) -> None:
        self.tag = f"rvh{os.getpid() % 100000}"
        self.made: list[str] = []

    def name(self, node: str) -> str:
        return f"{self.tag}-{node}"

    def add(self, node: str) -> str:
        name = self.name(node)
        _ip("netns", "add", name)
        self.made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def build(self) -> None:
        switch = self.add("switch")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for index, (node, host) in enumerate(NODES.items()):
            name = self.add(node)
            inside, port = f"e{index}", f"p{index}"
            _ip("link", "add", inside, "netns", name, "type", "veth", "peer", "name", port, "netns", switch)
            _ip("-n", switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{SUBNET}.{host}/24", "dev", inside)
            _ip("-n", name, "link", "set", inside, "up")

    def delete(self) -> None:
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        self.made.clear()

    def popen(self, node: str, command: list[str], log: Path, cwd: Path = REPO) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        return subprocess.Popen(["ip", "netns", "exec", self.name(node), *command], cwd=cwd, stdout=handle,
                                stderr=subprocess.STDOUT)


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (`ip netns add`); not available here")
    spaces = Namespaces()
    try:
        try:
            spaces.build()
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"network namespaces are not permitted here: `{' '.join(exc.cmd)}` failed: "
                        f"{(exc.stderr or '').strip()}")
        yield spaces
    finally:
        spaces.delete()


def _marks(run_dir: Path, mark: Mark) -> dict[tuple[str, int], int]:
    """(session, turn) -> the time of that turn's `mark` (CLOCK_MONOTONIC ns, shared by every namespace)."""
    found: dict[tuple[str, int], int] = {}
    for path in iter_trace_files(run_dir / "traces"):
        trace = read_trace(path)
        found.update({(trace.header["session_id"], int(r["turn"])): int(r["t_ns"])
                      for r in trace.records if r.get("mark") == mark})
    return found


def _turns_ended(run_dir: Path) -> dict[tuple[str, int], int]:
    return _marks(run_dir, Mark.TURN_END)


def _sessions_closed(run_dir: Path) -> dict[tuple[str, int], int]:
    """(session, turn) -> when that turn's session closed (its `close` mark), for closed sessions."""
    closed: dict[tuple[str, int], int] = {}
    for path in iter_trace_files(run_dir / "traces"):
        trace = read_trace(path)
        close_ns = [int(r["t_ns"]) for r in trace.records if r.get("mark") == Mark.CLOSE]
        if close_ns:
            closed.update({(trace.header["session_id"], int(r["turn"])): close_ns[-1]
                           for r in trace.records if r.get("mark") == Mark.TURN_END})
    return closed


def _started(run_dir: Path) -> set[tuple[str, int]]:
    return set(_marks(run_dir, Mark.TURN_START))


def _rows(folder: Path, pattern: str) -> set[tuple[str, int]]:
    rows = set()
    for path in folder.glob(pattern):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows.add((row["session_id"], int(row["turn"])))
    return rows


def test_master_workers_and_target_in_their_own_namespaces_lose_no_shipped_turn_when_a_worker_is_killed(
        namespaces: Namespaces, tmp_path: Path) -> None:
    target = f"ws://{SUBNET}.{NODES['target']}:{TARGET_PORT}/v1/realtime"
    master_host = f"{SUBNET}.{NODES['master']}"
    # each node's own folder, as its own disk: the master hands its `--out run` to the workers,
    # and each writes it under its own working directory
    homes = {node: tmp_path / node for node in ("master", "w1", "w2")}
    for home in homes.values():
        home.mkdir()
    outs = {node: home / "run" for node, home in homes.items()}
    common = ["--target", target, "--auth", "none", "--corpus", str(SHIPPED_CORPORA_DIR / "default"),
              "--turns", "2", "--rtf", "2", "--pacing-limit-ms", "100",
              "--lateness-limit-ms", "1000"]
    locust = [sys.executable, "-m", "locust", "-f", str(REPO / "locustfile.py")]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["target"] = namespaces.popen("target", [sys.executable, "-m", "harness", "sim", "--quiet", "--host",
                                                      f"{SUBNET}.{NODES['target']}", "--port", str(TARGET_PORT)],
                                           tmp_path / "target.log")
        procs["master"] = namespaces.popen("master", [
            *locust, "--master", "--headless", "-u", "4", "-r", "4", "-t", "14s", "--expect-workers", "2",
            "--master-bind-host", master_host, "--master-bind-port", str(MASTER_PORT), "--out", "run",
            *common], tmp_path / "master.log", cwd=homes["master"])
        for node in ("w1", "w2"):
            procs[node] = namespaces.popen(node, [
                *locust, "--worker", "--master-host", master_host, "--master-port", str(MASTER_PORT),
                "--out", "run", *common], tmp_path / f"{node}.log", cwd=homes[node])
        deadline = time.monotonic() + 60
        # kill worker 1 once it has done some work and shipped some of it
        while time.monotonic() < deadline and not (_rows(outs["w1"] / "records", "*.jsonl")
                                                   & _rows(outs["master"] / "records", "master-*.jsonl")):
            assert procs["master"].poll() is None, (tmp_path / "master.log").read_text()[-3000:]
            time.sleep(0.5)
        assert _turns_ended(outs["w1"]), "worker 1 recorded no turn: " + (tmp_path / "w1.log").read_text()[-3000:]
        killed_at_ns = time.monotonic_ns()
        procs["w1"].send_signal(signal.SIGKILL)
        procs["master"].wait(timeout=120)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    master_log = (tmp_path / "master.log").read_text()
    assert procs["master"].returncode in (0, 1), master_log[-3000:]
    on_master = _rows(outs["master"] / "records", "master-*.jsonl")
    in_table = {(str(r["session_id"]), int(r["turn"])) for r in _parquet(outs["master"] / "turns.parquet")}
    assert on_master and in_table == on_master   # the master's run directory is what it was shipped

    # every turn the surviving worker's traces recorded (its turn_end)
    survivor = set(_turns_ended(outs["w2"]))
    assert survivor and survivor <= on_master, sorted(survivor - on_master)[:5]
    shipped_by_killed = _rows(outs["w1"] / "records", "*.jsonl") & on_master
    assert shipped_by_killed, "the killed worker shipped nothing before it died"
    long_before = {key for key, t_ns in _sessions_closed(outs["w1"]).items()
                   if t_ns < killed_at_ns - int(2 * REPORT_INTERVAL_S * 1e9)}
    assert long_before <= on_master, sorted(long_before - on_master)[:5]
    assert on_master <= _started(outs["w2"]) | _started(outs["w1"])   # nothing on the master that no worker ran


def _parquet(path: Path) -> list[dict[str, object]]:
    import pandas as pd

    return pd.read_parquet(path).to_dict("records")
