"""A hostile client gets errors and never hurts the server or other sessions; `harness sim` runs,
prints its URL first, logs per connection and stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading

import pytest
from sim_client import RawClient, burst_audio
from websockets.exceptions import ConnectionClosed

from harness.protocol import AudioFormat
from harness.sim import SimConfig

GARBAGE = ["", "null", "[1, 2]", '"text"', "{", '{"type": 5}', '{"type": null}', "\x00\x01",
           '{"type": "input_audio_buffer.append", "audio": 123}',
           '{"type": "input_audio_buffer.append", "audio": "***not base64***"}',
           '{"type": "conversation.item.create", "item": "nope"}',
           '{"type": "conversation.item.truncate", "item_id": [], "content_index": "x", "audio_end_ms": -1}',
           '{"type": "session.update", "session": 42}', '{"type": "response.create", "response": 7}',
           '{"type": "response.cancel", "response_id": {"a": 1}}']


@pytest.mark.processes
def test_a_hostile_client_gets_one_error_per_bad_event_while_another_session_runs_normally(sim_factory) -> None:
    sim = sim_factory(SimConfig(max_message_bytes=256 * 1024, reply_text="Still here.",
                                latency={"first_audio": "fixed:5", "delta_gap": "fixed:2"}))
    fmt = AudioFormat.PCM16
    outcome: dict[str, object] = {}

    def polite() -> None:
        client = RawClient(sim.url)
        client.until("session.created")
        client.configure(fmt)
        for _ in range(3):
            client.append(burst_audio(fmt, [("speech", 300), ("silence", 300)]), fmt)
            outcome.setdefault("statuses", []).append(client.until("response.done")[-1]["response"]["status"])
        client.close()

    worker = threading.Thread(target=polite)
    worker.start()
    hostile = RawClient(sim.url)
    hostile.until("session.created")
    for text in GARBAGE:
        hostile.ws.send(text)
    hostile.ws.send(b"\xff" * 1000)
    flood = 3000
    for i in range(flood):  # thousands of events per second
        hostile.ws.send('{"type": "no.such.event", "event_id": "f%d"}' % i)
    errors = [e for e in (hostile.recv(10) for _ in range(len(GARBAGE) + 1 + flood)) if e["type"] == "error"]
    assert len(errors) == len(GARBAGE) + 1 + flood
    assert {e["error"]["type"] for e in errors} == {"invalid_request_error"}
    # an oversized frame ends only this connection (1009 message too big)
    with pytest.raises(ConnectionClosed) as info:
        hostile.ws.send('{"type": "input_audio_buffer.append", "audio": "%s"}' % ("A" * 400_000))
        hostile.recv(10)
    assert info.value.sent is not None and info.value.sent.code == 1009 or info.value.rcvd.code == 1009
    worker.join(30)
    assert outcome["statuses"] == ["completed"] * 3
    assert not [r for r in sim.trace.records if r["rec"] == "internal_error"]
    fresh = RawClient(sim.url)
    assert fresh.recv()["type"] == "session.created"
    fresh.close()


def test_an_append_that_is_too_large_for_the_service_is_an_error_not_a_crash(sim_factory) -> None:
    sim = sim_factory(SimConfig())
    client = RawClient(sim.url)
    client.until("session.created")
    big = base64.b64encode(b"\x00" * (15 * 1024 * 1024 + 10)).decode()
    client.send("input_audio_buffer.append", audio=big)
    assert client.until("error", timeout=20)[-1]["error"]["param"] == "audio"
    client.configure(AudioFormat.PCM16)
    client.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_harness_sim_prints_its_url_first_and_stops_cleanly_on_a_signal(tmp_path, sig: int) -> None:
    trace = tmp_path / "trace.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sim", "--port", "0", "--latency", "first_audio=fixed:5",
         "--fault", "incomplete:nth=1", "--trace-file", str(trace), "--reply-text", "Ok."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("harness sim: listening on ws://127.0.0.1:") and first.endswith("/v1/realtime")
        url = first.rsplit(" ", 1)[1]
        client = RawClient(url)
        client.until("session.created")
        client.configure(AudioFormat.PCM16, turn_detection=None)
        client.send("response.create")
        assert client.until("response.done")[-1]["response"]["status"] == "incomplete"
        client.close()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    connection_lines = [line for line in err.splitlines() if line.startswith("harness sim: sess_")]
    assert len(connection_lines) == 1 and "ga" in connection_lines[0]
    assert "sk-test" not in err
    recorded = trace.read_text().splitlines()
    assert any('"stage":"first_audio"' in line for line in recorded) and any('"rec":"close"' in line for line in recorded)


def test_harness_sim_reports_bad_settings_in_one_line_with_exit_code_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "sim", "--port", "0", "--latency", "first_audio=gauss:3"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("harness sim: error: latency first_audio=")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_start_in_process_runs_the_same_config_in_a_child_and_its_trace_is_readable() -> None:
    from harness.sim import start_in_process

    cfg = SimConfig(seed=3, reply_text="From a child.", latency={"first_audio": "fixed:40", "delta_gap": "fixed:3"},
                    faults=["incomplete:nth=2,reason=content_filter"])
    assert SimConfig.from_mapping(__import__("tomllib").loads(cfg.to_toml())) == cfg
    with start_in_process(cfg) as sim:
        client = RawClient(sim.url)
        client.until("session.created")
        client.configure(AudioFormat.PCM16, turn_detection=None)
        statuses = []
        for _ in range(2):
            client.send("response.create")
            statuses.append(client.until("response.done")[-1]["response"])
        client.close()
        assert [r["status"] for r in statuses] == ["completed", "incomplete"]
        assert statuses[0]["output"][0]["content"][0]["transcript"] == "From a child."
    first_audio = [r for r in sim.read_records() if r.get("stage") == "first_audio"]
    assert [r["delay_ns"] for r in first_audio] == [40_000_000, 40_000_000]
