"""The receive loop of one connection: stamp, decode, check, record, play, hand over.

For every frame: the arrival is stamped right after the socket read (in the connection), the
text is decoded by `harness.protocol.decode_server`, checked against the client-side state
tables (`ConnectionRules`, violations go into the trace) and written to the trace; writing it
also feeds the session's turn meter, whose `ResponseLog` is the one record of what the server
said about each response. Here only the caller's own loudspeaker is kept (a `Player` per
response), and the event goes to the session's inbox for the scenario. Nothing here blocks
except the socket read, so the loop is one greenlet under Locust and one thread elsewhere.

Audio deltas are the bulk of what arrives: their trace record is built directly (the payload's
size from its base64 length, no decode), never by walking the event.
"""

from __future__ import annotations

import base64
import binascii
import queue
from dataclasses import dataclass
from typing import Any, Callable

from harness.audio.levels import AUDIBLE_PEAK, chunk_levels, chunk_peak
from harness.client.connection import ConnectionLost
from harness.client.playout import Player
from harness.protocol import AudioFormat, ConnectionRules, Dialect, Event, Kind, RemoteProtocolError, decode_server
from harness.protocol.live_rules import LiveConnectionRules
from harness.trace.vocabulary import Mark


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


def b64_decoded_len(text: str) -> int:
    """Bytes a base64 text decodes to, without decoding it."""
    n = len(text)
    if n == 0:
        return 0
    padding = 2 if text.endswith("==") else 1 if text.endswith("=") else 0
    return n * 3 // 4 - padding


class Receiver:
    def __init__(self, conn: Any, recorder: Any, fmt: AudioFormat, inbox: "queue.SimpleQueue[Incoming]",
                 jitter_ms: float = 0.0, dialect: Dialect | None = None,
                 on_speech_started: Callable[[int], None] | None = None,
                 answer_of: Callable[[int], str | None] | None = None) -> None:
        """`answer_of(t_ns)` names the answer a Live audio chunk arriving then belongs to (Live
        chunks carry no response id; the session's meter delimits answers, see metrics.live_meter)."""
        self._conn = conn
        self._rec = recorder
        self._inbox = inbox
        self._bytes_per_ms = fmt.bytes_per_ms
        self._fmt = fmt
        self._audible: set[str] = set()     # responses with an audible sample already
        self._jitter_ms = jitter_ms
        self._live = dialect is Dialect.LIVE    # Live: its own session rules, not Realtime's tables
        self.rules: ConnectionRules | LiveConnectionRules = (
            LiveConnectionRules("client") if self._live
            else ConnectionRules(perspective="client", dialect=dialect, appends_observed=False))
        self._dialect = dialect
        self._answer_of = answer_of
        self._on_speech_started = on_speech_started   # the session's checks that need its own knowledge
        self.players: dict[str, Player] = {}
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
            self.lost = exc.with_traceback(None)   # no traceback: it would hold this frame (a cycle)
        except OSError as exc:   # the socket was released under us (abort): say what ended it
            self.lost = conn.ended(str(exc))
        except Exception as exc:  # a bug must end this session as an error, not hang it
            self._rec.mark(Mark.ERROR, message=f"receive loop: {type(exc).__name__}: {exc}")
            self.lost = ConnectionLost(str(exc), 1011, "internal error", "client")
        finally:
            self.ended(self.lost)

    def release(self) -> None:
        """The session is over: forget its callbacks (they reference it; see Session._release)."""
        self._on_speech_started = None
        self._answer_of = None

    def ended(self, lost: ConnectionLost | None) -> None:
        """The connection is over: record how (before the session hears of it, so its turns end
        after the close is on record), then tell the session."""
        self.running = False
        self.lost = lost
        if lost is not None:
            self._rec.mark(Mark.CLOSE, code=lost.code, reason=lost.reason, by=lost.by)
        self._inbox.put(Incoming(0, local="closed"))

    def handle(self, t_ns: int, text: str) -> Event | None:
        rec = self._rec
        try:
            event = decode_server(text, self._dialect)
        except RemoteProtocolError as exc:
            rec.violation(t_ns, "decodable_event", "remote", exc.message, None)
            return None
        kind = event.kind
        delta = event.fields.get("delta") if kind is Kind.OUTPUT_AUDIO_DELTA else None
        response_id = event.get("response_id")
        if self._live and kind is Kind.OUTPUT_AUDIO_DELTA and self._answer_of is not None:
            response_id = self._answer_of(t_ns)
        if isinstance(delta, str):
            summary = self._delta_summary(response_id, delta)
            ms = summary["ms"]
            fields = {**event.fields, "delta": summary}
            rec.recv(t_ns, event.type, kind.value, {"type": event.type, **fields}, scrubbed=True)
        else:
            ms = 0.0
            rec.recv(t_ns, event.type, kind.value, event.to_dict(), self._bytes_per_ms)
        for v in self.rules.observe(event, sent=False):
            rec.violation(t_ns, v.rule, v.side, v.message, v.event_type)
        if kind is Kind.SPEECH_STARTED and self._on_speech_started is not None:
            self._on_speech_started(t_ns)
        self._account(t_ns, event, ms, response_id)
        self._inbox.put(Incoming(t_ns, event))
        return event

    def _delta_summary(self, response_id: Any, delta: str) -> dict[str, Any]:
        """What the trace keeps of an audio delta: its size, and what the caller would hear.

        Until a response has been audible, each delta is decoded (in its declared format) and its
        peak kept; the first audible delta also gives the offset of its first audible sample and
        its zero-crossing rate (harness.audio.levels). After that, only the size (from the base64
        length): a normal answer costs one decode.
        """
        nbytes = b64_decoded_len(delta)
        summary: dict[str, Any] = {"bytes": nbytes, "ms": nbytes / self._bytes_per_ms}
        if not isinstance(response_id, str) or response_id in self._audible:
            return summary
        try:
            raw = base64.b64decode(delta)
        except (binascii.Error, ValueError):
            summary["invalid_base64"] = True
            return summary
        peak = chunk_peak(raw, self._fmt)
        summary["peak"] = peak
        if peak >= AUDIBLE_PEAK:
            levels = chunk_levels(raw, self._fmt)
            self._audible.add(response_id)
            summary["audible_at_ms"] = levels.first_audible_ms
            summary["crossing_rate"] = levels.crossing_rate
        return summary

    def observe_sent(self, t_ns: int, event: Event) -> None:
        """Check a client event we sent against the state tables (local violations)."""
        for v in self.rules.observe(event, sent=True):
            self._rec.violation(t_ns, v.rule, v.side, v.message, v.event_type)

    def _account(self, t_ns: int, event: Event, ms: float, response_id: Any) -> None:
        """The caller's loudspeaker: each response's audio arrivals, playout start and underruns."""
        kind = event.kind
        if kind is Kind.OUTPUT_AUDIO_DELTA:
            player = self._player(response_id)
            if player is None or player.stopped_ns is not None:
                return
            if not player.arrivals:
                player.item_id = event.get("item_id")
            gap = player.add(t_ns, ms)
            if len(player.arrivals) == 1:
                self._rec.mark(Mark.PLAYOUT_START, player.start_ns, response_id=player.response_id,
                               item_id=player.item_id)
            if gap is not None:
                self._rec.mark(Mark.UNDERRUN, gap.t_ns, response_id=player.response_id, ms=gap.ms)
        elif kind is Kind.OUTPUT_AUDIO_DONE:
            self._audio_over(event.get("response_id"))
        elif kind is Kind.RESPONSE_DONE:
            self._audio_over((event.get("response") or {}).get("id"))

    def _audio_over(self, response_id: Any) -> None:
        player = self._player(response_id)
        if player is not None:
            player.audio_done = True

    def _player(self, response_id: Any) -> Player | None:
        if not isinstance(response_id, str):
            return None
        player = self.players.get(response_id)
        if player is None:
            player = self.players[response_id] = Player(response_id, jitter_ms=self._jitter_ms)
        return player
