"""A hostile target: absurdly nested JSON, a huge transcript with a script in it, a frame over the
size limit. The caller records what it can, keeps its trace bounded, ends the session (no hang),
and the timeline shows the target's text as text."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from websockets.asyncio.server import serve

from harness.client import SessionSpec
from harness.client.connection import MAX_MESSAGE_BYTES
from harness.scenarios import run_scenario
from harness.trace import read_trace
from harness.trace.scrub import MAX_TRACE_STRING_CHARS

SCRIPT = "<script>alert('owned')</script>"


def _hostile_frames() -> list[str]:
    deep_object: Any = "bottom"
    for _ in range(200):
        deep_object = {"a": deep_object}
    return [
        "[" * 200_000 + "]" * 200_000,   # deeper than json can decode
        json.dumps({"type": "response.vendor.thing", "event_id": "e_deep", "payload": deep_object}),
        json.dumps({"type": "response.created", "event_id": "e1",
                    "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress", "output": []}}),
        json.dumps({"type": "response.output_audio_transcript.delta", "event_id": "e2", "response_id": "resp_1",
                    "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": SCRIPT + "x" * 2_000_000}),
        json.dumps({"type": "response.done", "event_id": "e3",
                    "response": {"id": "resp_1", "object": "realtime.response", "status": "completed", "output": []}}),
        "x" * (MAX_MESSAGE_BYTES + 1024),   # over the caller's frame limit: it closes with 1009
    ]


async def _handler(ws: Any) -> None:
    session = {"id": "sess_hostile", "object": "realtime.session", "type": "realtime"}
    await ws.send(json.dumps({"type": "session.created", "event_id": "e0", "session": session}))
    async for message in ws:
        if json.loads(message).get("type") == "session.update":
            await ws.send(json.dumps({"type": "session.updated", "event_id": "eu", "session": session}))
            await asyncio.sleep(0.3)
            for frame in _hostile_frames():
                await ws.send(frame)


@pytest.fixture()
def hostile_url() -> Iterator[str]:
    ready, box = threading.Event(), {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        async with serve(_handler, "127.0.0.1", 0, max_size=None) as server:
            box["url"] = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/realtime"
            box["stop"] = loop.create_future()
            ready.set()
            await box["stop"]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield box["url"]
    loop.call_soon_threadsafe(box["stop"].set_result, None)
    thread.join(10)


def test_a_hostile_target_ends_the_session_with_a_bounded_trace_and_escaped_text(
        hostile_url: str, tmp_path: Path) -> None:
    result: dict[str, Any] = {}
    spec = SessionSpec(url=hostile_url, turns=1, turn_timeout_s=5, trace_dir=tmp_path, auth="none")
    worker = threading.Thread(target=lambda: result.update(r=run_scenario(spec)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the session did not end"
    path = spec.trace_path()
    assert path.stat().st_size < 1_000_000          # a 2 MB transcript and a 16 MB frame did not land in it
    trace = read_trace(path)
    violations = [r for r in trace.records if r.get("rec") == "violation"]
    assert any("nested too deeply" in str(v.get("message")) for v in violations)
    transcript = next(r for r in trace.records if r.get("type") == "response.output_audio_transcript.delta")
    assert len(transcript["event"]["delta"]) < MAX_TRACE_STRING_CHARS + 100 and "<cut:" in transcript["event"]["delta"]
    assert any(r.get("mark") == "close" and r.get("code") == 1009 for r in trace.records)
    assert trace.footer is not None and trace.footer["reason"] in ("closed", "error")

    from harness.report import render_session_timeline

    render_session_timeline(path, tmp_path / "timeline.html")
    assert SCRIPT not in (tmp_path / "timeline.html").read_text(encoding="utf-8")
