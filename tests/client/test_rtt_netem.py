"""network_rtt_ms against the network's truth: netem delays the caller's packets by a known 20 ms.

The simulator runs inside a network namespace this test creates, reached over a veth pair
whose caller-side end has `tc qdisc ... netem delay 20ms`: every round trip carries exactly that
delay plus the veth's own (tens of microseconds). The median measured RTT must be within 1 ms of
20 ms. Skipped, with the reason, where namespaces cannot be made (no root, no iproute2) or the
kernel has no netem qdisc (the module sch_netem): tests/client/test_rtt_relay.py then gives the
same check against a userspace relay's recorded delay.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.client import SessionSpec
from harness.scenarios import run_scenario
from harness.trace import read_trace
from tests.client.veth_namespace import NamespaceUnavailable, VethNamespace, veth_namespace

REPO = Path(__file__).resolve().parents[2]
NETEM_DELAY_MS = 20.0
HOST_IP, NS_IP = "10.251.7.1", "10.251.7.2"


@pytest.fixture
def delayed_namespace() -> Iterator[VethNamespace]:
    if shutil.which("tc") is None:
        pytest.skip("iproute2 (tc) is not installed: apt-get install iproute2")
    with ExitStack() as stack:
        try:
            ns = stack.enter_context(veth_namespace("rtt", HOST_IP, NS_IP))
        except NamespaceUnavailable as exc:
            pytest.skip(str(exc))
        netem = subprocess.run(["tc", "qdisc", "add", "dev", ns.host_interface, "root", "netem", "delay",
                                f"{NETEM_DELAY_MS:g}ms"], capture_output=True, timeout=10)
        if netem.returncode != 0:
            pytest.skip(f"this kernel has no netem qdisc (sch_netem): {netem.stderr.decode().strip()}; "
                        "tests/client/test_rtt_relay.py checks the RTT against a userspace relay instead")
        yield ns


def _wait_listening(ns: VethNamespace, port: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection((NS_IP, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the simulator in namespace {ns.name} did not listen on {NS_IP}:{port}")


@pytest.mark.slow
def test_the_measured_round_trip_is_the_netem_delay_within_a_millisecond(delayed_namespace: VethNamespace,
                                                                         tmp_path: Path) -> None:
    port = 18765
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sim = subprocess.Popen([*delayed_namespace.exec_prefix(), sys.executable, "-m", "harness", "sim", "--host", NS_IP,
                            "--port", str(port), "--reply-text", "Sure."], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(delayed_namespace, port, 20.0)
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
