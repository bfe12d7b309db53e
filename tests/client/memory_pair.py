"""An in-memory caller/server pair on a virtual clock: whole sessions, one thread, exact times.

The caller is the real one (`Session`, the scenarios, the pacer, the receiver, the turn meter);
what is virtual is time and the wire. `VirtualClock.wait` (the session's only way of waiting)
jumps to the next thing that happens, the pacer's next deadline or the server's next send, runs
it, and returns as soon as the session's inbox has something: a session that would take seconds
runs in milliseconds, and every interval it measures is exactly what the server scripted,
however busy the machine is (as websockets and h11 test with in-memory peers).

`ScriptedServer` is a small GA-dialect Realtime server, sans-I/O: the simulator's energy VAD on
the input audio's own clock, fixed delays per stage, a response of fixed-length audio deltas,
`response.cancel`, barge-in (speech during a response cancels it with `turn_detected`),
`conversation.item.truncate`, manual `commit` + `response.create`.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import queue
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.client.connection import ConnectionLost
from harness.client.pacer import Pacer
from harness.audio import from_wire, resample, to_wire
from harness.protocol import AudioFormat, Dialect, Kind, decode_client, make_event
from harness.sim.vad import make_vad

MS = 1_000_000
START_NS = 1_000_000_000_000


@dataclass
class Delays:
    """The server's script, in ms of virtual time."""

    vad_ms: float = 0.0          # speech_started/stopped after the audio that decided it
    commit_ms: float = 200.0     # committed after speech_stopped
    response_ms: float = 0.0     # response.created after the commit (or response.create)
    first_audio_ms: float = 300.0   # first audio delta after response.created
    delta_gap_ms: float = 20.0   # between audio deltas (faster than real time, like the service)
    delta_audio_ms: float = 100.0   # audio per delta
    answer_audio_ms: float = 1000.0
    cancel_ms: float = 15.0      # response.done (cancelled) after response.cancel
    truncate_ms: float = 5.0     # conversation.item.truncated after the truncate
    leading_silence_ms: float = 0.0   # digital silence before the answer's tone
    answer: str = "tone"         # "tone", "silent" (all zero samples) or "none" (transcript only)
    send_format: AudioFormat | None = None   # send answers in this format whatever was declared
    server_vad: bool = True      # False: a target without server VAD (never commits by itself)
    min_speech_ms: int = 20      # the VAD's continuous speech before speech_started (the simulator's setting)


class VirtualClock:
    """The session's clock: now, and a wait that runs the pair up to the next event."""

    def __init__(self) -> None:
        self.t_ns = START_NS
        self.pacer = Pacer(clock_ns=self.now_ns, sleep=lambda _s: None)
        self.server: ScriptedServer | None = None
        self.steps = 0

    def now_ns(self) -> int:
        return self.t_ns

    def wait(self, inbox: "queue.SimpleQueue[Any]", timeout_s: float) -> Any:
        if self.pacer._thread is not None:     # noqa: SLF001 - a real thread would break virtual time
            raise RuntimeError("the virtual clock's pacer must be stepped by the clock, not by a thread")
        deadline = self.t_ns + int(timeout_s * 1e9)
        for _ in range(2_000_000):      # bounded: a session of minutes is well under this
            try:
                return inbox.get_nowait()
            except queue.Empty:
                pass
            candidates = [t for t in (self.pacer.next_deadline_ns(),
                                      self.server.next_due_ns() if self.server else None) if t is not None]
            upcoming = min(candidates) if candidates else None
            if upcoming is None or upcoming > deadline:
                self.t_ns = max(self.t_ns, deadline)
                raise queue.Empty
            self.t_ns = max(self.t_ns, upcoming)
            self.steps += 1
            self.pacer.step()
            if self.server is not None:
                self.server.run_due(self.t_ns)
        raise RuntimeError("virtual clock: too many steps")


class MemoryConnection:
    """What the session sends goes straight to the server; what the server sends goes to the receiver."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.receiver: Any = None
        self.closed = False

    def attach_receiver(self, receiver: Any) -> None:
        self.receiver = receiver
        self.server.connected(self)

    def send_text(self, data: bytes | str) -> int:
        if self.closed:
            raise ConnectionLost("connection is closed", 1000, by="client")
        self.server.receive(data.decode() if isinstance(data, bytes) else data)
        return 0

    def deliver(self, t_ns: int, text: str) -> None:
        if not self.closed and self.receiver is not None:
            self.receiver.handle(t_ns, text)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.abort()

    def abort(self) -> None:
        self.closed = True


@dataclass
class _Response:
    id: str
    item_id: str
    done: bool = False
    audio_sent_ms: float = 0.0


@dataclass
class ScriptedServer:
    clock: VirtualClock
    delays: Delays = field(default_factory=Delays)
    sent: list[dict[str, Any]] = field(default_factory=list)     # every event sent, with its t_ns
    received: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock.server = self
        self._queue: list[tuple[int, int, tuple[str | None, dict[str, Any]]]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self.conn: MemoryConnection | None = None
        self.input_ms = 0.0
        self.turn_detection: dict[str, Any] | None = {"type": "server_vad", "threshold": 0.5,
                                                      "prefix_padding_ms": 300, "silence_duration_ms": 500}
        self.vad: Any = None
        self.item_id: str | None = None
        self.active: _Response | None = None
        self.input_format = AudioFormat.PCM16     # what the session.update declared
        self.output_format = AudioFormat.PCM16
        self.responses: dict[str, _Response] = {}

    # -- the pair's side -----------------------------------------------------------------------
    def connect(self, url: str, headers: Any, timeout_s: float, poll_s: float = 1.0) -> MemoryConnection:
        self.conn = MemoryConnection(self)
        return self.conn

    def connected(self, conn: MemoryConnection) -> None:
        self._send(0.0, Kind.SESSION_CREATED, session=self._session())

    def next_due_ns(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def run_due(self, now_ns: int) -> None:
        while self._queue and self._queue[0][0] <= now_ns:
            t_ns, _, (of, event) = heapq.heappop(self._queue)
            if of is not None:
                if self.responses[of].done:
                    continue        # its response was cancelled: the rest of its script is not sent
                if event["type"] == "response.done":
                    self.responses[of].done = True
            self.sent.append({"t_ns": t_ns, **event})
            assert self.conn is not None
            self.conn.deliver(t_ns, json.dumps(event))

    # -- protocol --------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    def _session(self) -> dict[str, Any]:
        return {"id": "sess_1", "object": "realtime.session", "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                                    "turn_detection": self.turn_detection},
                          "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}}}

    def _send(self, after_ms: float, kind: Kind, at_ns: int | None = None, of: str | None = None,
              **fields: Any) -> int:
        """Queue an event `after_ms` after `at_ns` (default now); `of` names the response whose
        script it belongs to (dropped if that response was cancelled meanwhile)."""
        t_ns = (self.clock.now_ns() if at_ns is None else at_ns) + int(after_ms * MS)
        event = make_event(kind, Dialect.GA, event_id=self._id("event"), **fields).to_dict()
        heapq.heappush(self._queue, (t_ns, next(self._order), (of, event)))
        return t_ns

    def receive(self, text: str) -> None:
        event = decode_client(text)
        now = self.clock.now_ns()
        self.received.append({"t_ns": now, "type": event.type})
        kind = event.kind
        if kind is Kind.SESSION_UPDATE:
            session = event.get("session") or {}
            audio = session.get("audio") or {}
            self.input_format = _format_of((audio.get("input") or {}).get("format"))
            self.output_format = _format_of((audio.get("output") or {}).get("format"))
            td = (audio.get("input") or {}).get("turn_detection", self.turn_detection)
            self.turn_detection = td
            if td:
                self.vad = make_vad("energy", 24000, float(td.get("threshold", 0.5)),
                                    int(td.get("prefix_padding_ms", 300)), int(td.get("silence_duration_ms", 500)),
                                    self.delays.min_speech_ms, self.input_ms)
            self._send(0.0, Kind.SESSION_UPDATED, session={**self._session(), **session})   # the update, applied
        elif kind is Kind.INPUT_AUDIO_APPEND:
            self._append(base64.b64decode(event.get("audio") or ""))
        elif kind is Kind.INPUT_AUDIO_COMMIT:
            item = self._id("item")
            self._send(0.0, Kind.COMMITTED, item_id=item, previous_item_id=None)
            self.item_id = item
        elif kind is Kind.RESPONSE_CREATE:
            self._respond(self.clock.now_ns())
        elif kind is Kind.RESPONSE_CANCEL:
            if self.active is not None and not self.active.done:
                self._cancel(self.active, "client_cancelled", self.delays.cancel_ms)
        elif kind is Kind.ITEM_TRUNCATE:
            self._send(self.delays.truncate_ms, Kind.ITEM_TRUNCATED, item_id=event.get("item_id"),
                       content_index=event.get("content_index", 0), audio_end_ms=event.get("audio_end_ms", 0))

    def _append(self, raw: bytes) -> None:
        samples = from_wire(raw, self.input_format)
        if self.input_format is not AudioFormat.PCM16:
            samples = resample(samples, 8000, 24000)     # the VAD runs at 24 kHz
        self.input_ms += len(samples) / 24.0
        if self.vad is None or not self.turn_detection or not self.delays.server_vad:
            return
        for decision in self.vad.feed(samples):
            if decision.kind == "started":
                self.item_id = self._id("item")
                self._send(self.delays.vad_ms, Kind.SPEECH_STARTED, audio_start_ms=decision.audio_ms,
                           item_id=self.item_id)
                if self.active is not None and not self.active.done:       # barge-in
                    self._cancel(self.active, "turn_detected", self.delays.vad_ms)
            else:
                stop_ns = self._send(self.delays.vad_ms, Kind.SPEECH_STOPPED, audio_end_ms=decision.audio_ms,
                                     item_id=self.item_id)
                commit_ns = self._send(self.delays.commit_ms, Kind.COMMITTED, at_ns=stop_ns, item_id=self.item_id,
                                       previous_item_id=None)
                self._respond(commit_ns)

    def _respond(self, after_ns: int) -> None:
        d = self.delays
        rid, item = self._id("resp"), self._id("item")
        response = self.responses[rid] = _Response(rid, item)
        self.active = response
        created = self._send(d.response_ms, Kind.RESPONSE_CREATED, at_ns=after_ns,
                             response={"id": rid, "object": "realtime.response", "status": "in_progress", "output": []})
        message = {"id": item, "object": "realtime.item", "type": "message", "role": "assistant", "content": []}
        self._send(0.0, Kind.OUTPUT_ITEM_ADDED, at_ns=created, of=rid, response_id=rid, output_index=0, item=message)
        part = {"type": "audio", "transcript": ""}
        scoped = {"response_id": rid, "item_id": item, "output_index": 0, "content_index": 0}
        self._send(0.0, Kind.CONTENT_PART_ADDED, at_ns=created, of=rid, part=part, **scoped)
        t_ns = created + int(d.first_audio_ms * MS)
        self._send(0.0, Kind.OUTPUT_TRANSCRIPT_DELTA, at_ns=t_ns, of=rid, delta="Sure.", **scoped)
        for chunk in _answer_chunks(d, self.output_format if d.send_format is None else d.send_format):
            self._send(0.0, Kind.OUTPUT_AUDIO_DELTA, at_ns=t_ns, of=rid, delta=chunk, **scoped)
            t_ns += int(d.delta_gap_ms * MS)
        for kind, extra in ((Kind.OUTPUT_AUDIO_DONE, {}), (Kind.OUTPUT_TRANSCRIPT_DONE, {"transcript": "Sure."}),
                            (Kind.CONTENT_PART_DONE, {"part": {**part, "transcript": "Sure."}})):
            self._send(0.0, kind, at_ns=t_ns, of=rid, **scoped, **extra)
        self._send(0.0, Kind.OUTPUT_ITEM_DONE, at_ns=t_ns, of=rid, response_id=rid, output_index=0,
                   item={**message, "status": "completed"})
        done = {"id": rid, "object": "realtime.response", "status": "completed", "output": []}
        self._send(0.0, Kind.RESPONSE_DONE, at_ns=t_ns, of=rid, response=done)

    def _cancel(self, response: _Response, reason: str, after_ms: float) -> None:  # noqa: D102
        response.done = True      # everything queued for it is dropped, but this response.done
        body = {"id": response.id, "object": "realtime.response", "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": reason}, "output": []}
        self._send(after_ms, Kind.RESPONSE_DONE, response=body)


def _format_of(spec: Any) -> AudioFormat:
    kind = spec.get("type") if isinstance(spec, dict) else None
    return {"audio/pcmu": AudioFormat.G711_ULAW, "audio/pcma": AudioFormat.G711_ALAW}.get(str(kind), AudioFormat.PCM16)


def _answer_chunks(d: Delays, fmt: AudioFormat) -> list[str]:
    """The answer's audio deltas in `fmt`: silence, then a 440 Hz tone at -12 dBFS."""
    if d.answer == "none":
        return []
    per_ms = fmt.rate_hz // 1000
    total = int(d.answer_audio_ms * per_ms)
    audio = np.zeros(total, dtype=np.int16)
    if d.answer == "tone":
        start = int(d.leading_silence_ms * per_ms)
        t = np.arange(total - start) / float(fmt.rate_hz)
        audio[start:] = (8000 * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)
        if start < total:
            audio[start] = 8000       # the first audible sample is exactly at the leading silence's end
    wire = to_wire(audio, fmt.rate_hz, fmt)
    step = int(d.delta_audio_ms * per_ms) * (2 if fmt is AudioFormat.PCM16 else 1)
    return [base64.b64encode(wire[i:i + step]).decode() for i in range(0, len(wire), step)]
