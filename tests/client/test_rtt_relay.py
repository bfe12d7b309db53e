"""network_rtt_ms against a delay the test adds itself, where the kernel has no netem.

tests/client/delay_relay.py, a userspace TCP relay, sits between the caller and the simulator
and holds every chunk 10 ms each way, recording how long it actually held each one. The
simulator and the relay run in a network namespace this test creates (reached over a veth
pair, 10.251.8.x) where namespaces are permitted, else on 127.0.0.1; the test prints which.
One session goes straight to the simulator (the link's own round trip, the baseline), one
through the relay: the median RTT through the relay less the baseline's median must be the
relay's actual mean added round trip (mean hold up + mean hold down) within 1 ms. Medians, so
a busy machine's odd late ping does not decide it.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.client import SessionSpec
from harness.scenarios import run_scenario
from harness.trace import read_trace
from tests.client.veth_namespace import NamespaceUnavailable, veth_namespace

REPO = Path(__file__).resolve().parents[2]
DELAY_MS = 10.0                      # each way: 20 ms added to every round trip
HOST_IP, NS_IP = "10.251.8.1", "10.251.8.2"


@dataclass(frozen=True)
class Placement:
    """Where the simulator and the relay run: a command prefix, the address they bind, and a sentence."""
    prefix: list[str]
    host: str
    where: str


@pytest.fixture
def placement() -> Iterator[Placement]:
    with ExitStack() as stack:
        try:
            ns = stack.enter_context(veth_namespace("rly", HOST_IP, NS_IP))
            found = Placement(ns.exec_prefix(), NS_IP, f"network namespace {ns.name} over a veth pair "
                                                       f"({HOST_IP} -> {NS_IP})")
        except NamespaceUnavailable as exc:
            found = Placement([], "127.0.0.1", f"127.0.0.1 ({exc})")
        print(f"simulator and relay on {found.where}")
        yield found


def _start(command: list[str], listening: str, deadline_s: float) -> tuple[subprocess.Popen[str], str]:
    """Start a server process; return it and the first match of `listening` on its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    end = time.monotonic() + deadline_s
    for _ in range(50):
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
        line = proc.stdout.readline() if ready else ""
        found = re.search(listening, line)
        if found:
            return proc, found.group(1)
        if not line:
            break
    proc.kill()
    raise AssertionError(f"{command[-8:]} did not say it was listening within {deadline_s:g} s")


def _session(url: str, name: str, trace_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec = SessionSpec(url=url, scenario="plain", turns=2, trace_dir=trace_dir, session_id=name, rtt_interval_s=0.2,
                       auth="none", lateness_limit_ms=250.0, scenario_params={"utterances": ["utt01", "utt11"]})
    result = run_scenario(spec)
    assert result.reason == "done", result.error
    trace = read_trace(result.trace_path).records
    return sorted(result.records, key=lambda r: r["turn"]), trace


def _rtts_ms(trace: list[dict[str, Any]]) -> list[float]:
    return [float(m["rtt_ms"]) for m in trace if m.get("mark") == "rtt"]


def test_the_measured_round_trip_grows_by_the_relay_s_actual_added_delay_within_a_millisecond(
        placement: Placement, tmp_path: Path) -> None:
    holds_path = tmp_path / "holds.json"
    sim, sim_url = _start([*placement.prefix, sys.executable, "-m", "harness", "sim", "--host", placement.host,
                           "--port", "0", "--reply-text", "Sure."], r"listening on (ws://\S+)", 30.0)
    relay = None
    try:
        sim_port = sim_url.split(":")[2].split("/")[0]
        relay, relay_address = _start([*placement.prefix, sys.executable, "-m", "tests.client.delay_relay",
                                       "--listen", f"{placement.host}:0", "--target", f"{placement.host}:{sim_port}",
                                       "--delay-ms", f"{DELAY_MS:g}", "--holds", str(holds_path)],
                                      r"listening (\S+)", 20.0)
        base_rows, base_trace = _session(sim_url, "direct", tmp_path / "direct")
        relay_rows, relay_trace = _session(f"ws://{relay_address}/v1/realtime", "relayed", tmp_path / "relayed")
    finally:
        for proc in (relay, sim):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    holds = json.loads(holds_path.read_text())
    up_ms, down_ms = [h / 1e6 for h in holds["up_ns"]], [h / 1e6 for h in holds["down_ns"]]
    assert up_ms and down_ms and min(up_ms + down_ms) >= DELAY_MS      # it never forwards a chunk early
    added_ms = statistics.fmean(up_ms) + statistics.fmean(down_ms)
    base, relayed = _rtts_ms(base_trace), _rtts_ms(relay_trace)
    assert len(base) >= 8 and len(relayed) >= 8, (len(base), len(relayed))
    measured_ms = statistics.median(relayed) - statistics.median(base)
    print(f"{placement.where}: baseline median {statistics.median(base):.3f} ms, relayed median "
          f"{statistics.median(relayed):.3f} ms, relay's mean added round trip {added_ms:.3f} ms")
    assert abs(measured_ms - added_ms) < 1.0, (placement.where, measured_ms, added_ms, base, relayed)
    for rows, trace in ((base_rows, base_trace), (relay_rows, relay_trace)):
        rtt_marks = [m for m in trace if m.get("mark") == "rtt"]
        for row in rows:
            assert row["status"] == "ok"
            speech_end = next(m for m in trace if m.get("mark") == "speech_end_sent" and m["turn"] == row["turn"])
            nearest = min(rtt_marks, key=lambda m: abs(m["t_ns"] - speech_end["t_ns"]))
            assert row["network_rtt_ms"] == nearest["rtt_ms"]
    assert all(row["network_rtt_ms"] >= 2 * DELAY_MS for row in relay_rows)
