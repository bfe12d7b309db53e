"""The simulator measures its own lateness against its latency model and `harness run` gates on it.

Unit level: how a frame's lateness is measured (its deadline, the frame ahead of it in its lane,
time the client was not reading), how summaries merge. End to end: a simulator starved on purpose
(a thread holding its interpreter, `starve_ms`) makes `harness run` exit 5 with a message saying
its numbers are not a target's; a normal short run exits 0 and writes the simulator's lateness and
its full settings (every latency stage, defaults filled in) to summary.json and run.json.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.sim.latency import DEFAULTS, STAGES
from harness.sim.lateness import Lateness, merge_summaries
from harness.sim.outbox import Outbox, Outgoing
from harness.sim.server_trace import ServerTrace

REPO = Path(__file__).resolve().parents[2]
MS = 1_000_000
# the end-to-end runs are about the simulator's verdict, not the generator's timing
QUIET = ["--pacing-limit-ms", "100", "--no-report", "-u", "2", "-r", "2", "--turns", "2", "--rtf", "2"]


class _Conn:
    open = True
    paused = False
    paused_ns = 0
    resumed_ns = 0
    on_resume = None

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write_texts(self, payloads: list[bytes]) -> None:
        self.sent += payloads


def _outbox() -> tuple[Outbox, _Conn, ServerTrace, Lateness]:
    conn, trace, lateness = _Conn(), ServerTrace(), Lateness()
    return Outbox(conn, trace, "sess_test", 100, lateness), conn, trace, lateness  # type: ignore[arg-type]


def test_a_frame_behind_a_late_frame_is_late_by_the_same_time_and_its_followers_are_not() -> None:
    async def main() -> list[dict[str, Any]]:
        outbox, conn, trace, _ = _outbox()
        now = time.perf_counter_ns()
        first = outbox.put(Outgoing(event={"type": "a"}, stage="first_audio", trigger=now - 30 * MS, delay_ns=0))
        outbox.put(Outgoing(event={"type": "b"}, stage="first_audio", trigger=now - 30 * MS, delay_ns=0))
        outbox.put(Outgoing(event={"type": "c"}, stage="delta_gap", trigger=first, delay_ns=5 * MS))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(conn.sent) == 3:
                break
        return trace.select("send")

    a, b, c = asyncio.run(main())
    assert a["late_ns"] >= 30 * MS and b["late_ns"] >= 30 * MS  # both were due 30 ms ago
    assert c["target_ns"] == a["sent_ns"] + 5 * MS and c["late_ns"] < 30 * MS  # due 5 ms after a went


def test_time_the_client_was_not_reading_is_not_the_simulators_lateness() -> None:
    async def main() -> dict[str, Any]:
        outbox, conn, trace, _ = _outbox()
        conn.paused, conn.paused_ns = True, time.perf_counter_ns()
        outbox.put(Outgoing(event={"type": "a"}))
        await asyncio.sleep(0.05)
        assert not conn.sent
        conn.paused, conn.resumed_ns = False, time.perf_counter_ns()
        outbox._kick()
        await asyncio.sleep(0.01)
        return trace.select("send")[0]

    record = asyncio.run(main())
    assert record["blocked_ns"] >= 40 * MS and record["late_ns"] < 10 * MS


def test_summaries_of_several_processes_merge_into_the_percentiles_of_all_their_samples() -> None:
    one, two, both = Lateness(), Lateness(), Lateness()
    for i in range(1000):
        value = (i % 97) * 37_000
        (one if i % 3 else two).add_send(value)
        both.add_send(value)
    one.add("timer", 25 * MS)
    both.add("timer", 25 * MS)
    merged, direct = merge_summaries([one.summary(), two.summary()]), both.summary()
    assert merged["processes"] == 2
    for key in ("count", "p50_ms", "p99_ms", "max_ms"):
        assert merged[key] == direct[key], key
    assert merged["max_ms"] == 25.0 and merged["kinds"]["send"]["count"] == 1000


def _harness(*args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_starved_simulator_fails_the_run_with_exit_code_5_saying_its_numbers_are_not_a_targets(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text("starve_ms = 80\n", encoding="utf-8")
    out = tmp_path / "run"
    done = _harness("run", "-t", "6s", "--sim-config", str(config), "--out", str(out), "--sim-lateness-limit-ms", "5",
                    *QUIET)
    assert done.returncode == 5, done.stdout[-2000:] + done.stderr[-2000:]
    assert "could not keep its latency model" in done.stderr and "not a target's" in done.stderr
    assert "FAIL  sim_lateness:p99<=5" in done.stdout
    summary = _json(out / "summary.json")
    assert summary["exit_code"] == 5 and summary["passed"] is False
    assert summary["simulator"]["passed"] is False and summary["simulator"]["lateness"]["p99_ms"] > 5
    assert summary["simulator"]["settings"]["starve_ms"] == 80
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert "sim_lateness:p99&lt;=5" in junit


def test_a_normal_short_run_exits_0_and_records_the_simulators_lateness_and_full_settings(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # turns end at response.done (no playout wait), so a 6 s run has ok turns (no ok turn: exit 6)
    done = _harness("run", "-t", "6s", "--sim-latency", "first_audio=fixed:300", "--out", str(out),
                    "--scenario-params", '{"plain": {"wait_playout": false}}', "--sim-lateness-limit-ms", "50", *QUIET)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # a limit a normal run keeps even on a busy CI machine (the starved run above fails 5)
    assert "PASS  sim_lateness:p99<=50" in done.stdout and "simulator lateness p50/p99/max" in done.stdout
    summary = _json(out / "summary.json")
    simulator = summary["simulator"]
    late = simulator["lateness"]
    assert simulator["passed"] is True and simulator["lateness_limit_ms"] == 50
    assert late["count"] > 0 and 0 <= late["p50_ms"] <= late["p99_ms"] <= late["max_ms"]
    assert late["kinds"]["send"]["count"] > 0 and late["kinds"]["decision"]["count"] > 0
    run = _json(out / "run.json")
    for settings in (run["simulator"], simulator["settings"]):
        assert list(settings["latency"]) == list(STAGES)  # every stage, defaults filled in
        assert settings["latency"]["first_audio"] == "fixed:300"
        assert {k: v for k, v in settings["latency"].items() if k != "first_audio"} == \
            {k: v for k, v in DEFAULTS.items() if k != "first_audio"}
        assert settings["faults"] == [] and settings["processes"] == 1 and settings["vad"] == "energy"
        assert "seed" in settings


@pytest.mark.parametrize("limit", ["0", "-1", "nan"])
def test_a_bad_simulator_lateness_limit_is_rejected_before_anything_starts(tmp_path: Path, limit: str) -> None:
    done = _harness("run", "--sim-lateness-limit-ms", limit, "--out", str(tmp_path / "run"), timeout_s=60)
    assert done.returncode == 2 and "--sim-lateness-limit-ms" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_against_a_simulator_of_two_processes_merges_their_lateness(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # turns end at response.done (no playout wait), so they end inside the run (no ok turn: exit 6)
    done = _harness("run", "-t", "8s", "--sim-processes", "2", "--sim-lateness-limit-ms", "50", "--out", str(out),
                    "--scenario-params", '{"plain": {"wait_playout": false}}', *QUIET)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = _json(out / "summary.json")
    assert summary["simulator"]["settings"]["processes"] == 2
    assert summary["simulator"]["lateness"]["processes"] == 2
    assert summary["sessions"]["total"] >= 1 and summary["sessions"]["connect_failed"] == 0
    assert summary["simulator"]["lateness"]["kinds"]["send"]["count"] > 0


def test_a_late_simulator_decides_a_measured_run_but_only_notes_itself_beside_a_refused_one() -> None:
    from harness.rundir import apply_simulator_gate

    late = {"passed": False, "message": "the simulator could not keep its latency model"}
    measured = {"passed": True, "exit_code": 0, "why": []}
    apply_simulator_gate(measured, late)
    assert (measured["exit_code"], measured["why"][0]) == (5, late["message"])
    refused = {"passed": False, "exit_code": 3, "why": ["the target failed: 3 of 3 sessions could not connect"]}
    apply_simulator_gate(refused, late)
    assert refused["exit_code"] == 3 and refused["why"][-1] == "also: " + late["message"]
    on_time = {"passed": True, "exit_code": 0, "why": []}
    apply_simulator_gate(on_time, {"passed": True, "message": None})
    assert on_time == {"passed": True, "exit_code": 0, "why": []}
