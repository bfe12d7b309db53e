"""The receive loop of one connection: stamp, decode, check, record, account, hand over.

For every frame: the arrival is stamped right after the socket read (in the connection), the
text is decoded by `harness.protocol.decode_server`, checked against the client-side state
tables (`ConnectionRules`, violations go into the trace), written to the trace, accounted in
the per-response state (audio received, the playout model, function calls) and put in the
session's inbox for the scenario. Nothing here blocks except the socket read, so the loop is
one greenlet under Locust and one thread elsewhere.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from typing import Any

from harness.client.connection import ConnectionLost
from harness.client.playout import Player
from harness.protocol import AudioFormat, ConnectionRules, Dialect, Event, Kind, RemoteProtocolError, decode_server


@dataclass
class Incoming:
    """One item of a session's inbox: a server event, or a local happening (`local` set)."""

    t_ns: int
    event: Event | None = None
    local: str | None = None    # "utterance_sent", "playout_end", "closed", "stream_failed"
    turn: int | None = None
    response_id: str | None = None

    @property
    def kind(self) -> Kind | None:
        return self.event.kind if self.event is not None else None


@dataclass
class ResponseState:
    """What the caller knows about one response, updated by the receive loop."""

    id: str
    created_ns: int
    player: Player
    done_ns: int | None = None
    status: str | None = None
    reason: str | None = None
    audio_ms: float = 0.0
    first_audio_ns: int | None = None
    audio_done: bool = False
    function_calls: list[dict[str, Any]] = field(default_factory=list)   # args-done fields + received_ns

    @property
    def done(self) -> bool:
        return self.done_ns is not None


def b64_decoded_len(text: str) -> int:
    """Bytes a base64 text decodes to, without decoding it."""
    n = len(text)
    if n == 0:
        return 0
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return n * 3 // 4 - padding


class Receiver:
    def __init__(self, conn: Any, recorder: Any, fmt: AudioFormat, inbox: "queue.SimpleQueue[Incoming]",
                 jitter_ms: float = 0.0, dialect: Dialect | None = None) -> None:
        self._conn = conn
        self._rec = recorder
        self._inbox = inbox
        self._bytes_per_ms = fmt.bytes_per_ms
        self._jitter_ms = jitter_ms
        self.rules = ConnectionRules(perspective="client", dialect=dialect)
        self.responses: dict[str, ResponseState] = {}
        self.lost: ConnectionLost | None = None
        self.running = True

    def run(self) -> None:
        """Receive until the connection ends; then put a "closed" item in the inbox."""
        conn = self._conn
        try:
            while True:
                got = conn.receive()
                if got is None:
                    continue
                t_ns, texts = got
                for text in texts:
                    self.handle(t_ns, text)
        except ConnectionLost as exc:
            self.lost = exc
        except OSError as exc:   # the socket was released under us (abort): say what ended it
            self.lost = conn.ended(str(exc))
        except Exception as exc:  # a bug must end this session as an error, not hang it
            self._rec.mark("error", message=f"receive loop: {type(exc).__name__}: {exc}")
            self.lost = ConnectionLost(str(exc), 1011, "internal error", "client")
        finally:
            self.running = False
            lost = self.lost
            self._inbox.put(Incoming(0, local="closed"))
            if lost is not None:
                self._rec.mark("close", code=lost.code, reason=lost.reason, by=lost.by)

    def handle(self, t_ns: int, text: str) -> Event | None:
        rec = self._rec
        try:
            event = decode_server(text)
        except RemoteProtocolError as exc:
            rec.violation(t_ns, "decodable_event", "remote", exc.message, None)
            return None
        wire = event.to_dict()
        rec.recv(t_ns, event.type, event.kind.value, wire, self._bytes_per_ms)
        for v in self.rules.observe(event, sent=False):
            rec.violation(t_ns, v.rule, v.side, v.message, v.event_type)
        self._account(t_ns, event)
        self._inbox.put(Incoming(t_ns, event))
        return event

    def observe_sent(self, t_ns: int, event: Event) -> None:
        """Check a client event we sent against the state tables (local violations)."""
        for v in self.rules.observe(event, sent=True):
            self._rec.violation(t_ns, v.rule, v.side, v.message, v.event_type)

    def _account(self, t_ns: int, event: Event) -> None:
        kind = event.kind
        if kind is Kind.OUTPUT_AUDIO_DELTA:
            state = self._response(event.get("response_id"), t_ns)
            delta = event.get("delta")
            ms = b64_decoded_len(delta) / self._bytes_per_ms if isinstance(delta, str) else 0.0
            state.audio_ms += ms
            player = state.player
            if player.stopped_ns is not None:
                return
            if state.first_audio_ns is None:
                state.first_audio_ns = t_ns
                player.item_id = event.get("item_id")
            gap = player.add(t_ns, ms)
            if len(player.arrivals) == 1:
                self._rec.mark("playout_start", player.start_ns, response_id=state.id, item_id=player.item_id)
            if gap is not None:
                self._rec.mark("underrun", gap.t_ns, response_id=state.id, ms=gap.ms)
        elif kind is Kind.RESPONSE_CREATED:
            self._response((event.get("response") or {}).get("id"), t_ns)
        elif kind is Kind.OUTPUT_AUDIO_DONE:
            state = self._response(event.get("response_id"), t_ns)
            state.audio_done = state.player.audio_done = True
        elif kind is Kind.FUNCTION_CALL_ARGUMENTS_DONE:
            self._response(event.get("response_id"), t_ns).function_calls.append({**event.fields, "received_ns": t_ns})
        elif kind is Kind.RESPONSE_DONE:
            body = event.get("response") or {}
            state = self._response(body.get("id"), t_ns)
            state.done_ns = t_ns
            state.status = body.get("status")
            details = body.get("status_details") or {}
            state.reason = details.get("reason") if isinstance(details, dict) else None
            state.audio_done = state.player.audio_done = True

    def _response(self, response_id: Any, t_ns: int) -> ResponseState:
        key = str(response_id) if response_id is not None else "?"
        state = self.responses.get(key)
        if state is None:
            state = ResponseState(key, t_ns, Player(key, jitter_ms=self._jitter_ms))
            self.responses[key] = state
        return state
