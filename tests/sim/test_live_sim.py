"""The simulator speaks Live at /v1/live/sessions: the openai SDK's own `client.live` connects, starts a
session, is answered, barges in, mutes, is refused what the simulator does not run, and closes; every
frame it receives validates strictly against the SDK's `openai.types.live` server models."""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from typing import Annotated, Any

import pytest
from sim_client import burst_audio

from harness.protocol import AudioFormat, Dialect
from harness.sim import SimConfig

openai = pytest.importorskip("openai")
live_types = pytest.importorskip("openai.types.live")
pydantic = pytest.importorskip("pydantic")

_UNION = typing.get_args(live_types.ServerEvent)[0]
ADAPTER = pydantic.TypeAdapter(Annotated[_UNION, pydantic.Discriminator("type")])
CHUNK_MS = 100


def _strict(raw: bytes) -> dict[str, Any]:
    parsed = ADAPTER.validate_json(raw)
    event = json.loads(raw)
    assert set(event) <= set(type(parsed).model_fields), f"{event['type']}: a field the SDK does not declare"
    return event


class _Reader:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []

    async def until(self, type_: str, timeout_s: float = 10.0) -> dict[str, Any]:
        for _ in range(5000):
            event = _strict(await asyncio.wait_for(self.conn.recv_bytes(), timeout_s))
            self.seen.append(event)
            if event["type"] == type_:
                return event
        raise AssertionError(f"no {type_} in 5000 events")

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Every event that arrives within `seconds`."""
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                raw = await asyncio.wait_for(self.conn.recv_bytes(), left)
            except asyncio.TimeoutError:
                break
            got.append(_strict(raw))
        self.seen.extend(got)
        return got


async def _send_audio(conn: Any, audio: bytes, fmt: AudioFormat) -> None:
    step = int(fmt.bytes_per_ms * CHUNK_MS)
    for i in range(0, len(audio), step):
        await conn.session.input_audio.append(audio=base64.b64encode(audio[i:i + step]).decode())


async def _exchange(port: int, fmt: AudioFormat) -> list[dict[str, Any]]:
    client = openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=f"ws://127.0.0.1:{port}/v1")
    async with client.live.connect() as conn:
        r = _Reader(conn)
        await conn.session.start(session={"model": "gpt-live-1", "audio": {"format": fmt.render(Dialect.LIVE)}},
                                 event_id="start_1")
        started = await r.until("session.started")
        assert started["client_event_id"] == "start_1"
        assert started["session"]["audio"]["format"] == fmt.render(Dialect.LIVE)
        # a turn: the answer comes as output audio in the session's format
        await _send_audio(conn, burst_audio(fmt, [("silence", 300), ("speech", 700), ("silence", 900)]), fmt)
        first = await r.until("session.output_audio.delta")
        assert len(base64.b64decode(first["delta"])) % fmt.bytes_per_sample == 0
        # barge-in: speech over the answer stops its audio
        await _send_audio(conn, burst_audio(fmt, [("speech", 600)]), fmt)
        await r.quiet(0.3)   # what was already on the way
        after = await r.quiet(0.3)
        assert not [e for e in after if e["type"] == "session.output_audio.delta"]
        await conn.session.input_audio.mute(event_id="mute_1")
        assert (await r.until("session.input_audio.muted"))["client_event_id"] == "mute_1"
        await conn.session.input_audio.unmute()
        await r.until("session.input_audio.unmuted")
        await conn.session.update(session={})
        await r.until("session.updated")
        await conn.send({"type": "response.create", "event_id": "resp_1"})
        error = await r.until("error")
        assert error["error"]["client_event_id"] == "resp_1" and "delegation" in error["error"]["message"]
        await conn.session.close()
        closed = await r.until("session.closed")
        assert closed["reason"] == "close_requested"
        return r.seen


@pytest.mark.parametrize("fmt", [AudioFormat.PCM16, AudioFormat.G711_ULAW, AudioFormat.G711_ALAW])
def test_the_sdk_live_client_completes_a_session_against_the_simulator(sim_factory, fmt: AudioFormat) -> None:
    sim = sim_factory(SimConfig(reply_text="Here is a long enough answer for the caller to interrupt it.",
                                latency={"first_audio": "fixed:20", "delta_gap": "fixed:20"}))
    seen = asyncio.run(_exchange(sim.port, fmt))
    kinds = {e["type"] for e in seen}
    assert {"session.started", "session.output_audio.delta",
            "session.output_transcript.delta", "session.closed"} <= kinds
    # nothing of Realtime leaks onto a Live connection
    assert not [k for k in kinds if k.startswith(("response.", "input_audio_buffer.", "conversation."))]
    connect = sim.trace.select("connect")[-1]
    assert connect["dialect"] == "live"


def test_commands_before_session_start_and_unknown_commands_are_refused(sim_factory) -> None:
    from websockets.sync.client import connect

    sim = sim_factory(SimConfig())
    with connect(f"ws://127.0.0.1:{sim.port}/v1/live/sessions", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "session.input_audio.mute", "event_id": "m"}))
        early = _strict(ws.recv(timeout=10).encode())
        assert early["error"]["code"] == "session_not_started"
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": ""}))
        unknown = _strict(ws.recv(timeout=10).encode())
        assert unknown["error"]["param"] == "type" and "session.start" in unknown["error"]["message"]
        ws.send(json.dumps({"type": "session.start", "session": {"model": "gpt-live-1",
                                                                 "audio": {"format": {"type": "audio/pcm", "rate": 16000}}}}))
        bad_rate = _strict(ws.recv(timeout=10).encode())
        assert bad_rate["error"]["param"] == "session.audio.format.rate"
        ws.send("{not json")   # in the Realtime dialects' words (tests/sim/test_errors.py)
        broken = _strict(ws.recv(timeout=10).encode())
        assert broken["error"]["code"] == "invalid_json"
        assert broken["error"]["message"].startswith("We could not parse the JSON body of your request.")


def test_the_live_answer_keeps_the_latency_model_it_was_given(sim_factory) -> None:
    """first_audio=fixed:300: the first Live chunk is scheduled 300 ms after its response began, and the
    caller hears nothing sooner than the model's stages add up to after the audio that ended the turn."""
    import time

    from websockets.sync.client import connect

    sim = sim_factory(SimConfig(latency={"speech_start": "fixed:0", "vad_decision": "fixed:0", "commit": "fixed:10",
                                         "response_start": "fixed:20", "first_audio": "fixed:300",
                                         "delta_gap": "fixed:20"}))
    fmt = AudioFormat.G711_ULAW
    with connect(f"ws://127.0.0.1:{sim.port}/v1/live/sessions", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "session.start",
                            "session": {"model": "gpt-live-1", "audio": {"format": fmt.render(Dialect.LIVE)}}}))
        assert _strict(ws.recv(timeout=10).encode())["type"] == "session.started"
        audio = burst_audio(fmt, [("silence", 200), ("speech", 600), ("silence", 1000)])
        step = int(fmt.bytes_per_ms * CHUNK_MS)
        for i in range(0, len(audio), step):
            ws.send(json.dumps({"type": "session.input_audio.append",
                                "audio": base64.b64encode(audio[i:i + step]).decode()}))
        sent_s = time.perf_counter()
        for _ in range(200):
            event = _strict(ws.recv(timeout=10).encode())
            if event["type"] == "session.output_audio.delta":
                break
        heard_ms = (time.perf_counter() - sent_s) * 1000
    assert heard_ms >= 300 + 20 + 10 - 5   # never sooner than the stages (the VAD decided on audio already sent)
    first = [r for r in sim.trace.select("send") if r.get("stage") == "first_audio"][0]
    assert first["type"] == "session.output_audio.delta" and first["delay_ns"] == 300_000_000
    assert first["sent_ns"] - first["trigger_ns"] >= 300_000_000
