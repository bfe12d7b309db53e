"""A lean answering Realtime target (GA dialect) for benchmarks/run_capacity.py.

    python benchmarks/answer_sink.py --port P [--first-audio-ms 300] [--record FILE]

Why: a caller's capacity must be measured against a target that answers like the service (VAD
events, a streamed answer, cancels, truncates), costs too little to be the bottleneck and says when
it sent every frame; the embedded simulator serves about 30 sessions per core.

Cost: the connection is `lean_ws.LeanConnection` (websockets does the handshake; framing, no task
or queue per connection, is done there: see its docstring for the measurement). Per append one
orjson and one base64 decode and a dot product: the energy VAD decides per append on the audio
clock (ms from bytes). Deltas are serialised at start-up; per frame only ids are filled in.

Protocol: see `Conn`. --record FILE: a CSV line per frame sent, `event_id,type,intended_ns,sent_ns`
(perf_counter_ns: CLOCK_MONOTONIC, comparable with the caller's stamps); intended is the timer's
deadline or the arrival of the frame answered. Written at exit (SIGTERM, SIGINT, --max-seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import gc
import itertools
import json
import re
import secrets
import signal
import string
import sys
import time
from typing import Any, Callable

import numpy as np

from harness.audio import from_wire, to_wire
from harness.protocol import (AudioFormat, Dialect, ProtocolValueError, default_session_config, error_event,
                              error_message, parse_session_update, render_session_object)
from lean_ws import LeanConnection, SendRecord  # beside this file

try:
    from orjson import dumps, loads
except ImportError:  # pragma: no cover
    loads = json.loads  # type: ignore[assignment]

    def dumps(obj: Any) -> bytes:  # type: ignore[misc]
        return json.dumps(obj, separators=(",", ":")).encode()

GA = Dialect.GA
TAG = "".join(secrets.choice(string.ascii_letters) for _ in range(5))  # ids unique to this sink process
TEXT = "Sure, I can help with that. Let me check the details for you and get right back to you."
MIN_SPEECH_MS = 20.0
COUNTER = itertools.count(1)


def eid(n: int) -> str:
    return f"event_{TAG}{n:016d}"


def new_id(prefix: str) -> str:
    return f"{prefix}{TAG}{next(COUNTER):011d}"


class Answer:
    """One output format's answer: each delta's JSON split around its ids, and the transcript pieces."""

    def __init__(self, fmt: AudioFormat, answer_ms: int, delta_ms: int) -> None:
        t = np.arange(int(fmt.rate_hz * answer_ms / 1000)) / fmt.rate_hz
        wire = to_wire((np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16), fmt.rate_hz, fmt)
        step = int(fmt.bytes_per_ms * delta_ms)
        chunks = [wire[i:i + step] for i in range(0, len(wire), step)]
        words = TEXT.split(" ") * (1 + answer_ms // 5000)  # about 60 ms of speech per character
        while len(words) > 1 and len(" ".join(words)) * 60 > answer_ms:
            words.pop()
        cut = [len(words) * i // len(chunks) for i in range(len(chunks) + 1)]
        self.texts = [(" " if a and b > a else "") + " ".join(words[a:b]) for a, b in zip(cut, cut[1:])]
        self.audio_ms = [len(c) / fmt.bytes_per_ms for c in chunks]
        ids = {"event_id": "@E@", "response_id": "@R@", "item_id": "@I@", "output_index": 0, "content_index": 0}
        self.deltas = [(re.split(rb"@[ERI]@", dumps({"type": "response.output_audio.delta", **ids,
                                                       "delta": binascii.b2a_base64(c, newline=False).decode()})),
                        re.split(rb"@[ERI]@", dumps({"type": "response.output_audio_transcript.delta", **ids,
                                                       "delta": s}))) for c, s in zip(chunks, self.texts)]


class Response:
    def __init__(self) -> None:
        self.id, self.item = new_id("resp_"), ""  # item: the assistant item, once output began
        self.previous: str | None = None
        self.k, self.audio_ms = 0, 0.0
        self.handle: asyncio.TimerHandle | None = None


class Conn(LeanConnection):
    """One connection. GA events: session.created; session.update -> session.updated (via
    `harness.protocol`: session.audio.input turn_detection and formats pcm16/G.711 apply). A turn:
    speech_started; after silence_duration_ms of silence speech_stopped, committed, the user item
    (conversation.item.added/.done), response.created; --first-audio-ms after the commit
    output_item.added, conversation.item.added, content_part.added and the audio deltas (each with a
    transcript delta) one per --delta-gap-ms; output_audio.done, output_audio_transcript.done,
    content_part.done, output_item.done, conversation.item.done, response.done. response.cancel ->
    cancelled/client_cancelled; speech during a response -> cancelled/turn_detected (if
    interrupt_response); conversation.item.truncate -> .truncated; anything else -> `error`.
    """

    record = SendRecord(eid)

    def __init__(self, opts: argparse.Namespace, answers: dict[AudioFormat, Answer]) -> None:
        super().__init__()
        self.o, self.answers = opts, answers
        self.sid, self.conv, self.born = new_id("sess_"), new_id("conv_"), int(time.time())
        self.cfg = default_session_config(GA)
        self.input_ms = self.run_ms = self.silence_ms = 0.0
        self.in_speech, self.pending = False, ""
        self.last_item: str | None = None
        self.resp: Response | None = None
        self.generated: dict[str, float] = {}  # assistant item -> audio ms sent (the truncate bound)
        self.configure()

    def configure(self) -> None:
        cfg, td = self.cfg, self.cfg.turn_detection
        self.bpm, self.answer = cfg.input_format.bytes_per_ms, self.answers[cfg.output_format]
        self.square = None if cfg.input_format is AudioFormat.PCM16 else \
            from_wire(bytes(range(256)), cfg.input_format).astype(np.float64) ** 2  # G.711 byte -> sample^2
        self.vad = td is not None and td.type == "server_vad"
        dbfs = -70.0 + 60.0 * min(1.0, max(0.0, td.threshold if td else 0.5))  # as the simulator's energy VAD
        self.min_ms2 = (10 ** (dbfs / 20.0) * 32768.0) ** 2
        self.prefix: int = td.prefix_padding_ms if td else 300
        self.silence: int = td.silence_duration_ms if td else 500
        self.auto, self.interrupt = bool(td and td.create_response), bool(td and td.interrupt_response)

    def on_open(self, t: int) -> None:
        self.emit("session.created", t, session=self.session())

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.resp is not None and self.resp.handle is not None:
            self.resp.handle.cancel()

    def emit(self, kind: str, intended: int, **fields: Any) -> None:
        n = next(COUNTER)
        self.send_text(kind, dumps({"type": kind, "event_id": eid(n), **fields}), n, intended)

    def error(self, code: str, message: str, t: int, param: str | None = None) -> None:
        n = next(COUNTER)
        self.send_text("error", dumps(error_event(GA, code, message, param, server_event_id=eid(n)).to_dict()), n, t)

    # ---- client events
    def on_text(self, text: bytes, t: int) -> None:
        try:
            msg = loads(text)
            kind = msg.get("type")
        except (ValueError, AttributeError):
            self.error("invalid_json", error_message("invalid_json", detail="not a JSON object"), t)
            return
        if kind == "input_audio_buffer.append":
            self.append(msg.get("audio"), t)
        elif kind == "session.update":
            try:
                self.cfg = parse_session_update(msg.get("session"), GA, self.cfg)
            except ProtocolValueError as exc:
                self.error(exc.code, exc.message, t, exc.param)
                return
            self.configure()
            self.emit("session.updated", t, session=self.session())
        elif kind == "response.cancel":
            if self.resp is None or msg.get("response_id") not in (None, self.resp.id):
                self.error("response_cancel_not_active", error_message("response_cancel_not_active"), t)
            else:
                self.finish("cancelled", "client_cancelled", t)
        elif kind == "conversation.item.truncate":
            item_id, end = msg.get("item_id"), msg.get("audio_end_ms")
            if not isinstance(end, int) or not 0 <= end <= self.generated.get(item_id, -1) + 0.5:
                self.error("item_truncate_invalid_item_id", f"Cannot truncate '{item_id}' at {end!r} ms.", t, "item_id")
            else:
                self.emit("conversation.item.truncated", t, item_id=item_id, content_index=0, audio_end_ms=end)
        else:
            self.error("invalid_value", f"Invalid value: '{kind}'. This test target does not support it.", t, "type")

    def append(self, audio: Any, t: int) -> None:
        try:
            raw = binascii.a2b_base64(audio)
        except (binascii.Error, TypeError, ValueError):
            self.error("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes.", t, "audio")
            return
        ms = len(raw) / self.bpm
        self.input_ms += ms
        if not self.vad or not raw:
            return
        if self.square is None:
            x = np.frombuffer(raw, "<i2", len(raw) // 2).astype(np.float32)
            speech = float(x @ x) >= self.min_ms2 * max(1, x.size)
        else:
            speech = float(self.square[np.frombuffer(raw, np.uint8)].mean()) >= self.min_ms2
        if not self.in_speech:
            self.run_ms = self.run_ms + ms if speech else 0.0
            if self.run_ms >= MIN_SPEECH_MS:
                self.in_speech, self.silence_ms, self.pending = True, 0.0, new_id("item_")
                start = int(max(0.0, self.input_ms - self.run_ms - self.prefix))
                self.emit("input_audio_buffer.speech_started", t, audio_start_ms=start, item_id=self.pending)
                if self.resp is not None and self.interrupt:
                    self.finish("cancelled", "turn_detected", t)
        elif speech:
            self.silence_ms = 0.0
        else:
            self.silence_ms += ms
            if self.silence_ms >= self.silence:
                self.in_speech, self.run_ms = False, 0.0
                self.emit("input_audio_buffer.speech_stopped", t, audio_end_ms=int(round(self.input_ms)),
                          item_id=self.pending)
                self.commit(t)

    def commit(self, t: int) -> None:
        item_id, previous, self.last_item = self.pending, self.last_item, self.pending
        self.emit("input_audio_buffer.committed", t, item_id=item_id, previous_item_id=previous)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.emit("conversation.item.added", t, previous_item_id=previous, item=item)
        self.emit("conversation.item.done", t, previous_item_id=previous, item=item)
        if self.auto and self.resp is None:
            r = self.resp = Response()
            self.emit("response.created", t, response=self.response_obj(r, "in_progress", None, [], False))
            self.later(r, t + self.o.first_audio_ms * 1_000_000, self.first_audio)

    # ---- the response
    def session(self) -> dict[str, Any]:
        return render_session_object(self.cfg, GA, self.sid, "gpt-realtime", self.born + 3600)

    def response_obj(self, r: Response, status: str, details: Any, output: list[Any], done: bool) -> dict[str, Any]:
        return {"object": "realtime.response", "id": r.id, "status": status, "status_details": details,
                "output": output, "conversation_id": self.conv, "metadata": None,
                "usage": {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0} if done else None,
                "output_modalities": ["audio"], "max_output_tokens": "inf",
                "audio": {"output": {"format": self.cfg.output_format.render(GA), "voice": "marin"}}}

    def item_obj(self, r: Response, status: str, transcript: str | None) -> dict[str, Any]:
        return {"id": r.item, "object": "realtime.item", "type": "message", "status": status, "role": "assistant",
                "content": [] if transcript is None else [{"type": "output_audio", "transcript": transcript}]}

    def later(self, r: Response, due: int, step: Callable[[Response, int], None]) -> None:
        r.handle = asyncio.get_running_loop().call_later(max(0, due - time.perf_counter_ns()) / 1e9, step, r, due)

    def first_audio(self, r: Response, due: int) -> None:
        r.previous, r.item = self.last_item, new_id("item_")
        self.last_item, self.generated[r.item] = r.item, 0.0
        item = self.item_obj(r, "in_progress", None)
        self.emit("response.output_item.added", due, response_id=r.id, output_index=0, item=item)
        self.emit("conversation.item.added", due, previous_item_id=r.previous, item=item)
        self.emit("response.content_part.added", due, response_id=r.id, item_id=r.item, output_index=0,
                  content_index=0, part={"type": "audio", "transcript": ""})
        self.delta(r, due)

    def delta(self, r: Response, due: int) -> None:
        if self.closed or self.resp is not r:
            return
        rid, iid = r.id.encode(), r.item.encode()
        for kind, p in zip(("response.output_audio.delta", "response.output_audio_transcript.delta"),
                           self.answer.deltas[r.k]):
            n = next(COUNTER)
            self.send_text(kind, b"".join((p[0], eid(n).encode(), p[1], rid, p[2], iid, p[3])), n, due)
        r.audio_ms += self.answer.audio_ms[r.k]
        r.k += 1
        self.generated[r.item] = r.audio_ms
        if r.k < len(self.answer.deltas):
            self.later(r, due + self.o.delta_gap_ms * 1_000_000, self.delta)
        else:
            self.finish("completed", None, due)

    def finish(self, status: str, reason: str | None, t: int) -> None:
        """Close whatever is open, then response.done; the response is no longer active."""
        r, self.resp = self.resp, None
        assert r is not None
        if r.handle is not None:
            r.handle.cancel()
        output: list[Any] = []
        if r.item:
            ids = {"response_id": r.id, "item_id": r.item, "output_index": 0, "content_index": 0}
            text = "".join(self.answer.texts[:r.k])
            item = self.item_obj(r, "completed" if status == "completed" else "incomplete", text)
            self.emit("response.output_audio.done", t, **ids)
            self.emit("response.output_audio_transcript.done", t, **ids, transcript=text)
            self.emit("response.content_part.done", t, **ids, part={"type": "audio", "transcript": text})
            self.emit("response.output_item.done", t, response_id=r.id, output_index=0, item=item)
            self.emit("conversation.item.done", t, previous_item_id=r.previous, item=item)
            output = [item]
        details = None if reason is None else {"type": "cancelled", "reason": reason}
        self.emit("response.done", t, response=self.response_obj(r, status, details, output, True))


async def serve(opts: argparse.Namespace) -> None:
    answers = {fmt: Answer(fmt, opts.answer_ms, opts.delta_ms) for fmt in AudioFormat}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(opts, answers), opts.host, opts.port, backlog=1024)
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    gc.collect()
    gc.freeze()  # start-up objects are never scanned again: fewer, shorter collection pauses
    print(f"ready ws://{opts.host}:{server.sockets[0].getsockname()[1]}/v1/realtime", flush=True)
    try:
        await asyncio.wait_for(stop, opts.max_seconds)
    except asyncio.TimeoutError:
        pass
    for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not kill the record being written
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (shown on the ready line)")
    parser.add_argument("--first-audio-ms", type=int, default=300, help="commit -> first audio delta")
    parser.add_argument("--answer-ms", type=int, default=2000, help="audio per answer")
    parser.add_argument("--delta-ms", type=int, default=100, help="audio per delta")
    parser.add_argument("--delta-gap-ms", type=int, default=20, help="time between deltas (faster than real time)")
    parser.add_argument("--record", default=None, help="CSV of every frame sent: event_id,type,intended_ns,sent_ns")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop by itself after this long")
    opts = parser.parse_args()
    asyncio.run(serve(opts))
    print("sink " + json.dumps(Conn.record.finish(opts.record)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
