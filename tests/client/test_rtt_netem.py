"""network_rtt_ms against the network's truth: netem delays the caller's packets by a known 20 ms.

The simulator runs inside a network namespace this test creates, reached over a veth pair
whose caller-side end has `tc qdisc ... netem delay 20ms`: every round trip carries exactly that
delay plus the veth's own (tens of microseconds). The median measured RTT must be within 1 ms of
20 ms. Skipped, with the reason, where namespaces cannot be made (no root, no iproute2) or the
kernel has no netem qdisc (the module sch_netem).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness.client import SessionSpec
from harness.scenarios import run_scenario
from harness.trace import read_trace

REPO = Path(__file__).resolve().parents[2]
NETEM_DELAY_MS = 20.0
NS = f"rtt{os.getpid()}"
HOST_IF, NS_IF = f"vh{os.getpid() % 100000}", f"vn{os.getpid() % 100000}"
HOST_IP, NS_IP = "10.251.7.1", "10.251.7.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def delayed_namespace() -> Iterator[None]:
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("iproute2 (ip, tc) is not installed: apt-get install iproute2")
    try:
        _ip("netns", "add", NS)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"network namespaces are not permitted here: {exc.stderr.decode().strip()}")
    try:
        _ip("link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        _ip("link", "set", NS_IF, "netns", NS)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        _ip("link", "set", HOST_IF, "up")
        _ip("netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
        _ip("netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        netem = subprocess.run(["tc", "qdisc", "add", "dev", HOST_IF, "root", "netem", "delay",
                                f"{NETEM_DELAY_MS:g}ms"], capture_output=True, timeout=10)
        if netem.returncode != 0:
            pytest.skip(f"this kernel has no netem qdisc (sch_netem): {netem.stderr.decode().strip()}")
        yield
    finally:
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, timeout=10)


def _wait_listening(port: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection((NS_IP, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the simulator in namespace {NS} did not listen on {NS_IP}:{port}")


@pytest.mark.slow
def test_the_measured_round_trip_is_the_netem_delay_within_a_millisecond(delayed_namespace: None,
                                                                         tmp_path: Path) -> None:
    port = 18765
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sim = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-m", "harness", "sim", "--host", NS_IP,
                            "--port", str(port), "--reply-text", "Sure."], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, 20.0)
        spec = SessionSpec(url=f"ws://{NS_IP}:{port}/v1/realtime", scenario="plain", turns=2, trace_dir=tmp_path,
                           session_id="netem", rtt_interval_s=0.2, auth="none",
                           scenario_params={"utterances": ["utt01", "utt11"]})
        result = run_scenario(spec)
    finally:
        sim.terminate()
        sim.wait(10)
    assert result.reason == "done", result.error
    rtts = [m["rtt_ms"] for m in read_trace(result.trace_path).records if m.get("mark") == "rtt"]
    assert len(rtts) >= 10
    assert abs(statistics.median(rtts) - NETEM_DELAY_MS) < 1.0, rtts
    for record in result.records:
        assert record["status"] == "ok" and abs(record["network_rtt_ms"] - NETEM_DELAY_MS) < 5.0
        assert record["ttfa_ms"] > NETEM_DELAY_MS      # the answer crossed the delayed link too
