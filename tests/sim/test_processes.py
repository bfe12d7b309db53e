"""The simulator served from two processes (`harness sim --processes 2`, one port, SO_REUSEPORT):
sessions are spread over both, numbered once by a shared counter, and the lateness of both is
merged. (The simulator tests marked `processes` run against such a simulator too; see conftest.py.)
"""

from __future__ import annotations

import time

from sim_client import RawClient, burst_audio

from harness.protocol import AudioFormat
from harness.sim import SimConfig

PROCESSES = 2


def test_sessions_are_spread_over_both_processes_and_numbered_once_in_connection_order(process_sim_factory) -> None:
    sim = process_sim_factory(SimConfig(reply_text="Hi."))
    fmt = AudioFormat.PCM16
    clients = []
    for _ in range(20):
        client = RawClient(sim.url)
        client.until("session.created")
        clients.append(client)
    for client in clients[:2]:  # two sessions answer a turn, whichever process serves them
        client.configure(fmt)
        client.append(burst_audio(fmt, [("speech", 300), ("silence", 300)]), fmt)
        assert client.until("response.done")[-1]["response"]["status"] == "completed"
    for client in clients:
        client.close()
    connects = [r for r in sim.trace.records if r["rec"] == "connect"]
    assert sorted(r["index"] for r in connects) == list(range(20))
    assert {r["worker"] for r in connects} == {0, 1}  # all 20 hashed to one socket: 1 in 500,000
    listens = [r for r in sim.trace.records if r["rec"] == "listen"]
    assert sorted(r["worker"] for r in listens) == [0, 1] and len({r["url"] for r in listens}) == 1


def test_the_lateness_of_both_processes_is_merged_when_the_simulator_stops(process_sim_factory) -> None:
    sim = process_sim_factory(SimConfig(reply_text="Hi."))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16)
    client.append(burst_audio(AudioFormat.PCM16, [("speech", 300), ("silence", 300)]), AudioFormat.PCM16)
    client.until("response.done")
    client.close()
    time.sleep(0.1)
    sim.process.stop()
    lateness = sim.process.lateness()
    assert lateness["processes"] == PROCESSES
    assert lateness["kinds"]["send"]["count"] >= 10 and lateness["kinds"]["decision"]["count"] == 2
    assert lateness["kinds"]["timer"]["count"] > 0 and lateness["p99_ms"] is not None
