"""The openai SDK's own realtime client talks to the simulator, and every event the simulator sends
validates strictly against the SDK's pydantic models (GA and beta)."""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from typing import Annotated, Any

import pydantic
import pytest
from sim_client import burst_audio

from harness.protocol import AudioFormat
from harness.sim import SimConfig

openai = pytest.importorskip("openai")

TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _adapter(union_alias: Any) -> pydantic.TypeAdapter:
    union = typing.get_args(union_alias)[0] if typing.get_origin(union_alias) is Annotated else union_alias
    return pydantic.TypeAdapter(Annotated[union, pydantic.Discriminator("type")])


async def _drive(conn: Any, adapter: pydantic.TypeAdapter, session: dict, fmt_session: dict) -> list[dict]:
    """A VAD turn, a required tool call with its output, then a cancelled answer; returns raw events."""
    seen: list[dict] = []

    async def until(type_: str) -> dict:
        while True:
            raw = await asyncio.wait_for(conn.recv_bytes(), 10)
            adapter.validate_json(raw)  # strict: every field type the SDK declares
            event = json.loads(raw)
            assert type(conn.parse_event(raw)).__name__ != "dict"
            seen.append(event)
            if event["type"] == type_:
                return event

    await until("session.created")
    await conn.session.update(session={**session, **fmt_session})
    await until("session.updated")
    audio = burst_audio(AudioFormat.PCM16, [("silence", 200), ("speech", 500), ("silence", 400)])
    for i in range(0, len(audio), 4800):
        await conn.input_audio_buffer.append(audio=base64.b64encode(audio[i:i + 4800]).decode())
    assert (await until("response.done"))["response"]["status"] == "completed"
    await conn.session.update(session={**session, "tools": [TOOL], "tool_choice": "required"})
    await until("session.updated")
    await conn.response.create()
    call = (await until("response.done"))["response"]["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call["call_id"],
                                              "output": '{"sky": "clear"}'})
    await conn.session.update(session={**session, "tool_choice": "none"})
    await until("session.updated")
    await conn.response.create()
    delta = await until("response.output_audio.delta" if "type" in session else "response.audio.delta")
    await conn.response.cancel()
    done = await until("response.done")
    assert done["response"]["status"] == "cancelled" and done["response"]["id"] == delta["response_id"]
    await conn.conversation.item.truncate(item_id=delta["item_id"], content_index=0, audio_end_ms=50)
    await until("conversation.item.truncated")
    return seen


def _run(sim: Any, beta: bool) -> list[dict]:
    from openai import AsyncOpenAI

    async def main() -> list[dict]:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=f"ws://127.0.0.1:{sim.port}/v1")
        if beta:
            from openai.types.beta.realtime import RealtimeServerEvent
            async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
                return await _drive(conn, _adapter(RealtimeServerEvent), {},
                                    {"input_audio_format": "pcm16", "output_audio_format": "pcm16",
                                     "turn_detection": {"type": "server_vad", "silence_duration_ms": 200}})
        from openai.types.realtime import RealtimeServerEvent as GAEvent
        async with client.realtime.connect(model="gpt-realtime") as conn:
            return await _drive(conn, _adapter(GAEvent), {"type": "realtime"},
                                {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                                                     "turn_detection": {"type": "server_vad",
                                                                        "silence_duration_ms": 200}}}})

    return asyncio.run(main())


@pytest.mark.processes
def test_the_ga_sdk_client_parses_every_event_of_turns_tool_calls_and_cancels(sim_factory) -> None:
    sim = sim_factory(SimConfig(reply_text="Here is a short answer for the SDK.",
                                latency={"first_audio": "fixed:20", "delta_gap": "fixed:20"}))
    events = _run(sim, beta=False)
    kinds = {e["type"] for e in events}
    assert {"response.output_audio.delta", "response.function_call_arguments.done", "conversation.item.done",
            "input_audio_buffer.speech_stopped", "conversation.item.truncated"} <= kinds


@pytest.mark.processes
def test_the_beta_sdk_client_parses_every_event_of_turns_tool_calls_and_cancels(sim_factory) -> None:
    openai_beta = getattr(__import__("openai").AsyncOpenAI(api_key="x").beta, "realtime", None)
    if openai_beta is None:
        pytest.skip("this openai SDK has no beta realtime client")
    sim = sim_factory(SimConfig(reply_text="Here is a short answer for the SDK.",
                                latency={"first_audio": "fixed:20", "delta_gap": "fixed:20"}))
    events = _run(sim, beta=True)
    kinds = {e["type"] for e in events}
    assert {"response.audio.delta", "conversation.created", "conversation.item.created"} <= kinds
    assert "conversation.item.done" not in kinds
