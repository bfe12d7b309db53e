"""Injected latency shows up exactly in the server trace: target = trigger + delay, sent >= target,
and each stage's trigger is the moment the reference says (arrival of the deciding audio, the
previous event's actual send time, the cancel's arrival)."""

from __future__ import annotations

import pytest

import time

from sim_client import RawClient, burst_audio

from harness.protocol import AudioFormat
from harness.sim import SimConfig

MS = 1_000_000
INJECTED = {"speech_start": 15, "vad_decision": 40, "commit": 30, "response_start": 50, "first_audio": 120,
            "delta_gap": 10, "cancel_ack": 35}


def _stage(records: list[dict], stage: str) -> list[dict]:
    return [r for r in records if r.get("stage") == stage]


@pytest.mark.processes
def test_every_stage_is_sent_on_its_injected_deadline(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency={k: f"fixed:{v}" for k, v in INJECTED.items()}, reply_text="Hello there."))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("silence", 400), ("speech", 600), ("silence", 400)]), fmt)
    events = client.until("response.done")
    session = sim.trace.sessions()[-1]
    records = [r for r in sim.trace.records if r["session"] == session]
    for stage in INJECTED:
        if stage == "cancel_ack":
            continue
        hits = _stage(records, stage)
        assert hits, stage
        for r in hits:
            assert r["delay_ns"] == INJECTED[stage] * MS
            assert r["target_ns"] == r["trigger_ns"] + r["delay_ns"]
            assert r["sent_ns"] >= r["target_ns"]
    sent = {r["type"]: r for r in records if r["rec"] == "send"}
    vad = [r for r in records if r["rec"] == "vad"]
    # VAD decisions are triggered by the arrival of the audio that completed them
    assert _stage(records, "speech_start")[0]["trigger_ns"] == vad[0]["arrival_ns"]
    assert _stage(records, "vad_decision")[0]["trigger_ns"] == vad[1]["arrival_ns"]
    assert vad[1]["decided_ms"] == 1000 + 200 and vad[1]["speech_ms"] == 1000
    # each later stage is triggered by the actual send time of the event before it
    assert sent["input_audio_buffer.committed"]["trigger_ns"] == sent["input_audio_buffer.speech_stopped"]["sent_ns"]
    assert sent["response.created"]["trigger_ns"] == sent["input_audio_buffer.committed"]["sent_ns"]
    deltas = [r for r in records if r.get("type") == "response.output_audio.delta"]
    assert deltas[0]["stage"] == "first_audio" and deltas[0]["trigger_ns"] == sent["response.created"]["sent_ns"]
    for before, after in zip(deltas, deltas[1:]):
        assert after["trigger_ns"] == before["sent_ns"]
    # the caller's clock (same host, CLOCK_MONOTONIC) sees the events after the server sent them
    received = {e["type"]: e["_t_ns"] for e in events}
    assert received["response.created"] >= sent["response.created"]["sent_ns"]
    assert received["response.output_audio.delta"] - received["response.created"] >= INJECTED["first_audio"] * MS - MS
    client.close()


@pytest.mark.processes
def test_a_cancel_is_acknowledged_on_its_injected_deadline(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency={"cancel_ack": "fixed:80", "first_audio": "fixed:10", "delta_gap": "fixed:50"},
                                reply_text="A fairly long answer that keeps streaming for a while."))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None)
    client.send("response.create")
    client.until("response.output_audio.delta")
    client.send("response.cancel")
    client.until("response.done")
    # the simulator records a frame just after handing it to the socket: the client may be faster
    for _ in range(200):
        sent = [r for r in sim.trace.records if r.get("type") == "response.done"]
        if sent:
            break
        time.sleep(0.01)
    done = sent[-1]
    assert done["stage"] == "cancel_ack" and done["delay_ns"] == 80 * MS and done["status"] == "cancelled"
    assert done["sent_ns"] >= done["trigger_ns"] + 80 * MS
    client.close()


@pytest.mark.processes
def test_the_same_seed_draws_the_same_random_delays(sim_factory) -> None:
    latency = {"first_audio": "lognormal:100,0.5", "delta_gap": "uniform:1,9", "commit": "normal:20,5"}
    drawn = []
    for _ in range(2):
        sim = sim_factory(SimConfig(seed=42, latency=latency, reply_text="Short answer."))
        client = RawClient(sim.url)
        client.until("session.created")
        fmt = AudioFormat.G711_ULAW
        client.configure(fmt)
        client.append(burst_audio(fmt, [("speech", 400), ("silence", 300)]), fmt)
        client.until("response.done")
        client.close()
        drawn.append([(r["stage"], r["delay_ns"]) for r in sim.trace.records if r.get("stage")])
    assert drawn[0] == drawn[1] and len({d for _, d in drawn[0]}) > 3
