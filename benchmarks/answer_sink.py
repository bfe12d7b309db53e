"""A lean answering Realtime target (GA dialect) for benchmarks/run_capacity.py.

    python benchmarks/answer_sink.py --port P [--first-audio-ms 300] [--record FILE]

Why: a caller process's capacity must be measured against a target that answers like the service
(server VAD events, a streamed spoken answer, cancels, truncates) yet costs so little that it is
never the bottleneck, and that records exactly when it sent every frame. The embedded simulator
is faithful but serves about 30 sessions per core (benchmarks/results/sim_capacity.json).

How it stays cheap (one process, one core, plain asyncio):
- websockets' sans-I/O `ServerProtocol` (handshake, framing, ping, close) driven from a plain
  `asyncio.Protocol`: no task, recv coroutine or message queue per connection. Receiving 500 x 50
  appends/s took roughly 65 % of a core this way against roughly 80 % with
  `websockets.asyncio.server.serve` on the 2-core development VM (noisy, shared machine).
- per append: one JSON decode (orjson when importable), one base64 decode, one numpy dot product;
  the energy VAD decides per append on the audio clock (ms counted from bytes, never wall time);
- the answer's deltas (base64 audio and transcript pieces) are serialised once at start-up; per
  frame only the ids are filled in. Timers are `call_later` callbacks, not tasks.

Protocol (GA names): `session.created` on connect; `session.update` -> `session.updated`, parsed
and rendered by `harness.protocol` (so `session.audio.input.turn_detection` threshold,
prefix_padding_ms, silence_duration_ms, create_response, interrupt_response apply). A turn:
speech_started, then after silence_duration_ms of silence speech_stopped, committed and the user
item (conversation.item.added + .done); then response.created, and --first-audio-ms after the
commit output_item.added, conversation.item.added, content_part.added and --answer-ms of audio in
--delta-ms deltas (each with a transcript delta) one every --delta-gap-ms; then output_audio.done,
output_audio_transcript.done, content_part.done, output_item.done, conversation.item.done,
response.done (completed). response.cancel -> cancelled/client_cancelled; speech during a response
-> cancelled/turn_detected (when interrupt_response); conversation.item.truncate -> .truncated;
input_audio_buffer.commit/.clear and response.create work too. pcm16 24 kHz, G.711 u-law/A-law.

Record (--record): one CSV line per frame sent, `event_id,type,intended_ns,sent_ns`, both
`time.perf_counter_ns()` (CLOCK_MONOTONIC, comparable with the caller's stamps on this host).
Intended is the timer's deadline, or the arrival of the client frame the event answers. Kept in
memory and written at exit (SIGTERM, SIGINT); the send lateness summary is printed then.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import gc
import json
import re
import secrets
import signal
import sys
import time
from array import array
from typing import Any

import numpy as np
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from harness.audio import from_wire, to_wire
from harness.protocol import (AudioFormat, Dialect, ProtocolValueError, default_session_config, error_event,
                              error_message, parse_session_update, render_session_object)

try:
    import orjson
    loads, dumps = orjson.loads, orjson.dumps
except ImportError:  # pragma: no cover - orjson is a dependency of the benchmarks
    loads = json.loads

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

GA = Dialect.GA
TAG = "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(5))
ANSWER_TEXT = "Sure, I can help with that. Let me check the details for you and get right back to you."
MIN_SPEECH_MS = 20.0
READ_BYTES = 64 * 1024  # asyncio's default read allocates 256 KiB per recv(), measurably slower here
ids = [0]
REC_N, REC_I, REC_S, REC_T = array("q"), array("q"), array("q"), array("b")
TYPES: dict[str, int] = {}


def next_n() -> int:
    ids[0] += 1
    return ids[0]


def eid(n: int) -> str:
    return f"event_{TAG}{n:016d}"


def new_id(prefix: str) -> str:
    return f"{prefix}{TAG}{next_n():011d}"


class Answer:
    """One output format's answer: the deltas' JSON split around their ids, and the transcript."""

    def __init__(self, fmt: AudioFormat, answer_ms: int, delta_ms: int) -> None:
        t = np.arange(int(fmt.rate_hz * answer_ms / 1000)) / fmt.rate_hz
        wire = to_wire((np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16), fmt.rate_hz, fmt)
        step = int(fmt.bytes_per_ms * delta_ms)
        chunks = [wire[i:i + step] for i in range(0, len(wire), step)]
        words = ANSWER_TEXT.split(" ")  # as many words as natural speech fits in the audio (~60 ms/char)
        while len(" ".join(words)) * 60 < answer_ms:
            words += ANSWER_TEXT.split(" ")
        while len(words) > 1 and len(" ".join(words)) * 60 > answer_ms:
            words.pop()
        cut = [len(words) * i // len(chunks) for i in range(len(chunks) + 1)]
        pieces = [" ".join(words[a:b]) for a, b in zip(cut, cut[1:])]
        self.texts = [(" " if p and a else "") + p for p, a in zip(pieces, cut)]
        self.audio_ms = [len(c) / fmt.bytes_per_ms for c in chunks]
        ids_ = {"event_id": "@E@", "response_id": "@R@", "item_id": "@I@", "output_index": 0, "content_index": 0}
        self.audio = [_split(dumps({"type": "response.output_audio.delta", **ids_,
                                    "delta": binascii.b2a_base64(c, newline=False).decode()})) for c in chunks]
        self.transcript = [_split(dumps({"type": "response.output_audio_transcript.delta", **ids_, "delta": s}))
                           for s in self.texts]


def _split(body: bytes) -> list[bytes]:
    return re.split(rb"@[ERI]@", body)  # literal, event_id, literal, response_id, literal, item_id, literal


class Response:
    def __init__(self, rid: str) -> None:
        self.id = rid
        self.item: str | None = None
        self.previous: str | None = None  # the conversation item before this response's item
        self.k, self.audio_ms = 0, 0.0
        self.handle: asyncio.TimerHandle | None = None


class Conn(asyncio.Protocol):
    """One connection: the websocket, the session config, the VAD state and the active response."""

    def __init__(self, opts: argparse.Namespace, answers: dict[AudioFormat, Answer]) -> None:
        self.o, self.answers, self.ws, self.tr = opts, answers, ServerProtocol(max_size=16 * 2**20), None
        self.open = self.closed = False
        self.frag = b""
        self.sid, self.conv, self.created_s = new_id("sess_"), new_id("conv_"), int(time.time())
        self.cfg = default_session_config(GA)
        self.input_ms = self.buffer_ms = self.run_ms = self.silence_ms = 0.0
        self.in_speech, self.pending, self.last_item = False, None, None
        self.resp: Response | None = None
        self.generated: dict[str, float] = {}  # assistant item -> audio ms sent (truncate bound)
        self.configure()

    # ---- configuration
    def configure(self) -> None:
        cfg, td = self.cfg, self.cfg.turn_detection
        self.bpm = cfg.input_format.bytes_per_ms
        self.pcm16 = cfg.input_format is AudioFormat.PCM16
        self.square = (from_wire(bytes(range(256)), cfg.input_format).astype(np.float64) ** 2
                       if not self.pcm16 else None)
        self.vad = td is not None and td.type == "server_vad"
        dbfs = -70.0 + 60.0 * min(1.0, max(0.0, td.threshold if td else 0.5))
        self.min_ms2 = (10 ** (dbfs / 20.0) * 32768.0) ** 2
        self.prefix = td.prefix_padding_ms if td else 300
        self.silence = td.silence_duration_ms if td else 500
        self.auto = bool(td and td.create_response)
        self.interrupt = bool(td and td.interrupt_response)
        self.answer = self.answers[cfg.output_format]

    def session(self) -> dict[str, Any]:
        return render_session_object(self.cfg, GA, self.sid, "gpt-realtime", self.created_s + 3600)

    # ---- transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport
        if hasattr(transport, "max_size"):
            transport.max_size = READ_BYTES  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.resp is not None and self.resp.handle is not None:
            self.resp.handle.cancel()

    def flush(self) -> None:
        out = self.ws.data_to_send()
        if out and not self.closed:
            data = b"".join(out)
            if data:
                self.tr.write(data)  # type: ignore[union-attr]
            if out[-1] == b"":
                self.tr.close()  # type: ignore[union-attr]

    def send(self, kind: str, body: bytes, n: int, intended: int) -> None:
        if self.closed:
            return
        self.ws.send_text(body)
        data = b"".join(self.ws.data_to_send())
        sent = time.perf_counter_ns()
        self.tr.write(data)  # type: ignore[union-attr]
        REC_N.append(n)
        REC_I.append(intended)
        REC_S.append(sent)
        REC_T.append(TYPES.setdefault(kind, len(TYPES)))

    def emit(self, kind: str, intended: int, **fields: Any) -> None:
        n = next_n()
        self.send(kind, dumps({"type": kind, "event_id": eid(n), **fields}), n, intended)

    def error(self, code: str, message: str, intended: int, param: str | None = None) -> None:
        n = next_n()
        event = error_event(GA, code, message, param, None, server_event_id=eid(n)).to_dict()
        self.send("error", dumps(event), n, intended)

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter_ns()
        ws = self.ws
        ws.receive_data(data)
        for ev in ws.events_received():
            if isinstance(ev, Request):
                ws.send_response(ws.accept(ev))
                self.flush()
                self.open = ws.handshake_exc is None
                if self.open:
                    self.emit("session.created", t, session=self.session())
            elif ev.opcode is Opcode.TEXT or (ev.opcode is Opcode.CONT and self.frag):
                if not ev.fin:
                    self.frag += ev.data
                    continue
                text, self.frag = (self.frag + ev.data if self.frag else ev.data), b""
                self.on_text(text, t)
        self.flush()

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
            if self.resp is None:
                self.error("response_cancel_not_active", error_message("response_cancel_not_active"), t)
            else:
                self.finish("cancelled", "client_cancelled", t)
        elif kind == "conversation.item.truncate":
            self.truncate(msg, t)
        elif kind == "input_audio_buffer.commit":
            if self.buffer_ms < 100:
                self.error("input_audio_buffer_commit_empty",
                           error_message("input_audio_buffer_commit_empty", ms=self.buffer_ms), t)
            else:
                self.in_speech, self.run_ms = False, 0.0
                self.commit(t, auto=False)
        elif kind == "input_audio_buffer.clear":
            self.buffer_ms, self.in_speech, self.run_ms, self.pending = 0.0, False, 0.0, None
            self.emit("input_audio_buffer.cleared", t)
        elif kind == "response.create":
            if self.resp is not None:
                self.error("conversation_already_has_active_response", error_message(
                    "conversation_already_has_active_response", response_id=self.resp.id), t)
            else:
                self.start_response(t)
        else:
            self.error("invalid_value", f"Invalid value: '{kind}'. This target does not support it.", t, "type")

    def append(self, audio: Any, t: int) -> None:
        try:
            raw = binascii.a2b_base64(audio)
        except (binascii.Error, TypeError, ValueError):
            self.error("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes.", t, "audio")
            return
        ms = len(raw) / self.bpm
        self.input_ms += ms
        self.buffer_ms += ms
        if not self.vad or not raw:
            return
        if self.pcm16:
            x = np.frombuffer(raw, "<i2", len(raw) // 2).astype(np.float32)
            speech = float(x @ x) >= self.min_ms2 * max(1, x.size)
        else:
            speech = float(self.square[np.frombuffer(raw, np.uint8)].mean()) >= self.min_ms2  # type: ignore[index]
        if not self.in_speech:
            self.run_ms = self.run_ms + ms if speech else 0.0
            if self.run_ms >= MIN_SPEECH_MS:
                self.in_speech, self.silence_ms, self.pending = True, 0.0, new_id("item_")
                onset = self.input_ms - self.run_ms
                self.emit("input_audio_buffer.speech_started", t, audio_start_ms=int(max(0.0, onset - self.prefix)),
                          item_id=self.pending)
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
                self.commit(t, auto=True)

    def commit(self, t: int, auto: bool) -> None:
        item_id, previous = self.pending or new_id("item_"), self.last_item
        self.pending, self.last_item, self.buffer_ms = None, item_id, 0.0
        self.emit("input_audio_buffer.committed", t, item_id=item_id, previous_item_id=previous)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.emit("conversation.item.added", t, previous_item_id=previous, item=item)
        self.emit("conversation.item.done", t, previous_item_id=previous, item=item)
        if auto and self.auto and self.resp is None:
            self.start_response(t)

    def truncate(self, msg: dict[str, Any], t: int) -> None:
        item_id, end = msg.get("item_id"), msg.get("audio_end_ms")
        if item_id not in self.generated:
            self.error("item_truncate_invalid_item_id", error_message("item_truncate_invalid_item_id",
                                                                      item_id=item_id), t, "item_id")
        elif not isinstance(end, int) or end < 0 or end > self.generated[item_id] + 0.5:
            self.error("item_truncate_invalid_audio_end_ms", error_message(
                "item_truncate_invalid_audio_end_ms", generated_ms=int(self.generated[item_id]), audio_end_ms=end),
                t, "audio_end_ms")
        else:
            self.emit("conversation.item.truncated", t, item_id=item_id, content_index=0, audio_end_ms=end)

    # ---- the response
    def response_obj(self, rid: str, status: str, details: Any, output: list[Any], done: bool) -> dict[str, Any]:
        usage = {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0} if done else None
        return {"object": "realtime.response", "id": rid, "status": status, "status_details": details,
                "output": output, "conversation_id": self.conv, "usage": usage, "metadata": None,
                "output_modalities": ["audio"], "max_output_tokens": "inf",
                "audio": {"output": {"format": self.cfg.output_format.render(GA), "voice": "marin"}}}

    def item_obj(self, item_id: str, status: str, transcript: str | None) -> dict[str, Any]:
        content = [] if transcript is None else [{"type": "output_audio", "transcript": transcript}]
        return {"id": item_id, "object": "realtime.item", "type": "message", "status": status,
                "role": "assistant", "content": content}

    def start_response(self, t: int) -> None:
        r = self.resp = Response(new_id("resp_"))
        self.emit("response.created", t, response=self.response_obj(r.id, "in_progress", None, [], False))
        self.later(r, t + self.o.first_audio_ms * 1_000_000, self.first_audio)

    def later(self, r: Response, due: int, step: Any) -> None:
        r.handle = asyncio.get_running_loop().call_later(max(0, due - time.perf_counter_ns()) / 1e9, step, r, due)

    def first_audio(self, r: Response, due: int) -> None:
        r.item = item_id = new_id("item_")
        r.previous, previous, self.last_item, self.generated[item_id] = self.last_item, self.last_item, item_id, 0.0
        item = self.item_obj(item_id, "in_progress", None)
        self.emit("response.output_item.added", due, response_id=r.id, output_index=0, item=item)
        self.emit("conversation.item.added", due, previous_item_id=previous, item=item)
        self.emit("response.content_part.added", due, response_id=r.id, item_id=item_id, output_index=0,
                  content_index=0, part={"type": "audio", "transcript": ""})
        self.delta(r, due)

    def delta(self, r: Response, due: int) -> None:
        if self.closed or self.resp is not r:
            return
        ans, k, rid, iid = self.answer, r.k, r.id.encode(), r.item.encode()  # type: ignore[union-attr]
        for kind, parts in (("response.output_audio.delta", ans.audio[k]),
                            ("response.output_audio_transcript.delta", ans.transcript[k])):
            n = next_n()
            self.send(kind, b"".join((parts[0], eid(n).encode(), parts[1], rid, parts[2], iid, parts[3])), n, due)
        r.k, r.audio_ms = k + 1, r.audio_ms + ans.audio_ms[k]
        self.generated[r.item] = r.audio_ms  # type: ignore[index]
        if r.k < len(ans.audio):
            self.later(r, due + self.o.delta_gap_ms * 1_000_000, self.delta)
        else:
            self.finish("completed", None, due)

    def finish(self, status: str, reason: str | None, t: int) -> None:
        """Close whatever is open, then response.done; the response is no longer active."""
        r = self.resp
        assert r is not None
        if r.handle is not None:
            r.handle.cancel()
        self.resp = None
        output: list[Any] = []
        if r.item is not None:
            base = {"response_id": r.id, "item_id": r.item, "output_index": 0, "content_index": 0}
            text = "".join(self.answer.texts[:r.k])
            item = self.item_obj(r.item, "completed" if status == "completed" else "incomplete", text)
            self.emit("response.output_audio.done", t, **base)
            self.emit("response.output_audio_transcript.done", t, **base, transcript=text)
            self.emit("response.content_part.done", t, **base, part={"type": "audio", "transcript": text})
            self.emit("response.output_item.done", t, response_id=r.id, output_index=0, item=item)
            self.emit("conversation.item.done", t, previous_item_id=r.previous, item=item)
            output = [item]
        details = None if reason is None else {"type": "cancelled", "reason": reason}
        self.emit("response.done", t, response=self.response_obj(r.id, status, details, output, True))


def write_record(path: str | None) -> dict[str, Any]:
    """Write the record (if asked) and return the send lateness summary."""
    late = (np.frombuffer(REC_S, np.int64) - np.frombuffer(REC_I, np.int64)) / 1e6
    summary: dict[str, Any] = {"frames": int(late.size)}
    if late.size:
        p50, p99 = np.percentile(late, [50, 99])
        summary.update(lateness_p50_ms=round(float(p50), 3), lateness_p99_ms=round(float(p99), 3),
                       lateness_max_ms=round(float(late.max()), 3))
    if path:
        names = {v: k for k, v in TYPES.items()}
        with open(path, "w", encoding="ascii", buffering=1 << 20) as out:
            out.write("event_id,type,intended_ns,sent_ns\n")
            for n, k, i, s in zip(REC_N, REC_T, REC_I, REC_S):
                out.write(f"{eid(n)},{names[k]},{i},{s}\n")
    return summary


async def serve(opts: argparse.Namespace) -> None:
    answers = {fmt: Answer(fmt, opts.answer_ms, opts.delta_ms) for fmt in AudioFormat}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(opts, answers), opts.host, opts.port, backlog=1024)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    gc.collect()
    gc.freeze()  # start-up objects (templates, numpy) never scanned again: fewer, shorter GC pauses
    port = server.sockets[0].getsockname()[1]
    print(f"ready ws://{opts.host}:{port}/v1/realtime", flush=True)
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
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed on the ready line)")
    parser.add_argument("--first-audio-ms", type=int, default=300, help="commit -> first audio delta")
    parser.add_argument("--answer-ms", type=int, default=2000, help="audio per answer")
    parser.add_argument("--delta-ms", type=int, default=100, help="audio per delta")
    parser.add_argument("--delta-gap-ms", type=int, default=20, help="between deltas (faster than real time)")
    parser.add_argument("--record", default=None, help="CSV of every frame sent: event_id,type,intended_ns,sent_ns")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop by itself after this long")
    opts = parser.parse_args()
    asyncio.run(serve(opts))
    print("sink " + json.dumps(write_record(opts.record)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
