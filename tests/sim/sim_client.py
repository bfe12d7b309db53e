"""A deliberately small raw client for the simulator tests (the real caller lives in harness.client).

It speaks JSON over `websockets.sync.client`, records every received event with its arrival time,
and builds session.update bodies and speech-like test audio (tone bursts with exact silence).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import numpy as np
from websockets.sync.client import connect

from harness.audio import to_wire
from harness.protocol import AudioFormat, ConnectionRules, RemoteProtocolError, decode_client, decode_server

RATE_HZ = 24000


def burst_audio(fmt: AudioFormat, plan: list[tuple[str, int]], dbfs: float = -18.0) -> bytes:
    """Wire audio from [("silence", ms), ("speech", ms), ...]; speech is a 4 Hz-modulated harmonic tone."""
    parts = []
    for kind, ms in plan:
        n = RATE_HZ * ms // 1000
        if kind == "silence":
            parts.append(np.zeros(n))
        else:
            t = np.arange(n) / RATE_HZ
            wave = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 4))
            envelope = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 4 * t))
            parts.append(wave / np.sqrt(np.mean(wave**2)) * envelope * 10 ** (dbfs / 20) * 32767)
    samples = np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)
    return to_wire(samples, RATE_HZ, fmt)


def session_body(dialect: str, fmt: AudioFormat, turn_detection: dict[str, Any] | None | str = "default",
                 **extra: Any) -> dict[str, Any]:
    """A session.update `session` object in the dialect's shape."""
    td: Any = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200} \
        if turn_detection == "default" else turn_detection
    if dialect == "ga":
        body: dict[str, Any] = {"type": "realtime", "audio": {
            "input": {"format": fmt.render("ga"), "turn_detection": td},
            "output": {"format": fmt.render("ga")}}}
    else:
        body = {"input_audio_format": fmt.value, "output_audio_format": fmt.value, "turn_detection": td}
    body.update(extra)
    return body


class RawClient:
    def __init__(self, url: str, dialect: str = "ga", headers: dict[str, str] | None = None,
                 subprotocols: list[str] | None = None) -> None:
        hdrs = {"Authorization": "Bearer sk-test"} if headers is None else dict(headers)
        if dialect == "beta" and not subprotocols:
            hdrs["OpenAI-Beta"] = "realtime=v1"
        self.dialect = dialect
        self.ws = connect(url + "?model=gpt-realtime", additional_headers=hdrs, subprotocols=subprotocols,
                          max_size=None, compression=None, open_timeout=10).__enter__()
        self.events: list[dict[str, Any]] = []
        self._seq = 0
        self.rules = ConnectionRules("client", dialect)
        self.violations: list[Any] = []

    def send(self, type_: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        event = {"type": type_, "event_id": f"evt_client_{self._seq}", **fields}
        text = json.dumps(event)
        self.violations += self.rules.observe(decode_client(text), sent=True)
        self.ws.send(text)
        return event

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        text = self.ws.recv(timeout=timeout)
        t_ns = time.perf_counter_ns()
        try:
            event = json.loads(text)
            self.violations += self.rules.observe(decode_server(text), sent=False)
        except (ValueError, RemoteProtocolError):
            event = {"type": "<malformed>", "raw": text}
        event["_t_ns"] = t_ns
        self.events.append(event)
        return event

    def until(self, type_: str, timeout: float = 10.0, **match: Any) -> list[dict[str, Any]]:
        """Events received up to and including the first `type_` whose fields equal `match`."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {type_} within {timeout} s; got {[e['type'] for e in got]}")
            event = self.recv(left)
            got.append(event)
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return got

    def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.recv(left))
            except TimeoutError:
                break
        return got

    def append(self, wire: bytes, fmt: AudioFormat, chunk_ms: int = 20) -> int:
        """Send audio as appends of `chunk_ms` (as fast as possible: the VAD runs on audio time)."""
        step = int(fmt.rate_hz * chunk_ms / 1000) * fmt.bytes_per_sample
        count = 0
        for i in range(0, len(wire), step):
            self.send("input_audio_buffer.append", audio=base64.b64encode(wire[i:i + step]).decode())
            count += 1
        return count

    def configure(self, fmt: AudioFormat, turn_detection: Any = "default", **extra: Any) -> dict[str, Any]:
        self.send("session.update", session=session_body(self.dialect, fmt, turn_detection, **extra))
        return self.until("session.updated")[-1]

    def assert_conformant(self) -> None:
        """The simulator broke none of harness.protocol's connection rules so far."""
        remote = [v for v in self.violations if v.side == "remote"]
        assert remote == [], remote

    def close(self) -> None:
        self.ws.close()


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


NAMES = {
    "ga": {"item_added": "conversation.item.added", "audio_delta": "response.output_audio.delta",
           "audio_done": "response.output_audio.done", "transcript_delta": "response.output_audio_transcript.delta",
           "transcript_done": "response.output_audio_transcript.done", "assistant_part": "output_audio"},
    "beta": {"item_added": "conversation.item.created", "audio_delta": "response.audio.delta",
             "audio_done": "response.audio.done", "transcript_delta": "response.audio_transcript.delta",
             "transcript_done": "response.audio_transcript.done", "assistant_part": "audio"},
}


def check_user_item(events: list[dict[str, Any]], dialect: str, item_id: str, previous: str | None) -> int:
    """The committed + item events for user item `item_id`, starting at events[0]; returns events used."""
    n = NAMES[dialect]
    assert events[0]["type"] == "input_audio_buffer.committed"
    assert events[0]["item_id"] == item_id and events[0]["previous_item_id"] == previous
    wanted = [n["item_added"]] + (["conversation.item.done"] if dialect == "ga" else [])
    assert types(events[1:1 + len(wanted)]) == wanted
    for event in events[1:1 + len(wanted)]:
        assert event["previous_item_id"] == previous
        item = event["item"]
        assert (item["id"], item["type"], item["role"], item["status"]) == (item_id, "message", "user", "completed")
        assert item["content"][0]["type"] == "input_audio"
    return 1 + len(wanted)


def check_audio_response(events: list[dict[str, Any]], dialect: str, fmt: AudioFormat,
                         previous: str | None) -> dict[str, Any]:
    """events = response.created ... response.done of one completed audio response (sequence a, steps 7-15).

    Checks every event's type, order and cross-references; returns facts (ids, transcript, audio_ms).
    """
    n = NAMES[dialect]
    created, rate, item_added_ev = events[0], events[1], events[2]
    assert created["type"] == "response.created" and created["response"]["status"] == "in_progress"
    assert created["response"]["output"] == [] and created["response"]["usage"] is None
    rid = created["response"]["id"]
    assert rate["type"] == "rate_limits.updated"
    assert item_added_ev["type"] == "response.output_item.added" and item_added_ev["response_id"] == rid
    assert item_added_ev["output_index"] == 0
    item = item_added_ev["item"]
    aid = item["id"]
    assert (item["type"], item["role"], item["status"]) == ("message", "assistant", "in_progress")
    conv_added = events[3]
    assert conv_added["type"] == n["item_added"] and conv_added["item"]["id"] == aid
    assert conv_added["previous_item_id"] == previous
    part_added = events[4]
    assert part_added["type"] == "response.content_part.added"
    assert (part_added["response_id"], part_added["item_id"], part_added["output_index"],
            part_added["content_index"]) == (rid, aid, 0, 0)
    assert part_added["part"]["type"] == "audio"
    rest = events[5:]
    tail = [n["audio_done"], n["transcript_done"], "response.content_part.done", "response.output_item.done"]
    tail += ["conversation.item.done"] if dialect == "ga" else []
    tail += ["response.done"]
    deltas, closing = rest[:-len(tail)], rest[-len(tail):]
    assert types(closing) == tail
    assert deltas and set(types(deltas)) == {n["audio_delta"], n["transcript_delta"]}
    audio = b"".join(base64.b64decode(e["delta"]) for e in deltas if e["type"] == n["audio_delta"])
    transcript = "".join(e["delta"] for e in deltas if e["type"] == n["transcript_delta"])
    for e in deltas + closing[:3]:
        assert (e["response_id"], e["item_id"], e["output_index"], e["content_index"]) == (rid, aid, 0, 0)
    assert closing[1]["transcript"] == transcript and transcript
    assert closing[2]["part"] == {"type": "audio", "transcript": transcript}
    done_item = closing[3]["item"]
    assert closing[3]["response_id"] == rid and done_item["id"] == aid and done_item["status"] == "completed"
    assert done_item["content"] == [{"type": n["assistant_part"], "transcript": transcript}]
    response = closing[-1]["response"]
    assert response["id"] == rid and response["status"] == "completed" and response["status_details"] is None
    assert [o["id"] for o in response["output"]] == [aid]
    assert response["usage"]["output_token_details"]["audio_tokens"] > 0
    if dialect == "ga":
        assert response["audio"]["output"]["format"] == fmt.render("ga")
    else:
        assert response["output_audio_format"] == fmt.value
    assert len(audio) % fmt.bytes_per_sample == 0
    return {"response_id": rid, "item_id": aid, "transcript": transcript,
            "audio_ms": fmt.duration_ms(len(audio)), "deltas": deltas}
