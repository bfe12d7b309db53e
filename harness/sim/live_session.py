"""The simulator's Live front-end (`/v1/live/sessions`): a Live session over the Realtime engine.

A `LiveSession` is the simulator's Realtime session (GA inside: the same input turns, VAD, latency
model, answers, barge-in and faults) with a Live face:
- in: `session.start` configures the engine (the format, server VAD that answers and is interrupted
  by speech, input transcription) and answers `session.started`; `session.input_audio.append` feeds
  the input buffer (silence while muted); mute/unmute, `session.update`, `session.close` are Live's.
- out: `LiveOutbox` turns each engine event into its Live form on the way out. Audio and transcript
  deltas become `session.output_audio.delta` / `session.*_transcript.delta`; what Live has no event
  for (responses, items, VAD, commits, rate limits) is stamped and recorded in the server trace, so
  every deadline chained to it holds, but never written to the socket.

Timeline: Live's `start_ms`/`end_ms` are session milliseconds. The input transcript carries the
VAD's speech start and end in input-audio time (which is session time for a caller that streams
from `session.started` on); the output transcript the session time at which its audio is queued.
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from harness.protocol import Dialect, Kind, ProtocolValueError, RemoteProtocolError, decode_client, make_event
from harness.protocol.live_catalogue import LIVE_CLIENT_NAMES
from harness.protocol.live_session import LIVE_DEFAULT_MODEL, LiveStart, parse_session_start, render_session_resource
from harness.protocol.server_errors import undecodable_message
from harness.sim.outbox import ERROR_LANE, Outbox, Outgoing, dumps
from harness.sim.session import Session

if TYPE_CHECKING:
    from harness.sim.server import ServerContext

K = Kind
_APPEND = b"session.input_audio.append"
_GA_AUDIO_DELTA = make_event(K.OUTPUT_AUDIO_DELTA, Dialect.GA).type
_GA_TRANSCRIPT_DELTA = make_event(K.OUTPUT_TRANSCRIPT_DELTA, Dialect.GA).type
_GA_INPUT_TRANSCRIPT = make_event(K.INPUT_TRANSCRIPTION_DELTA, Dialect.GA).type
_GA_SPEECH_STARTED = make_event(K.SPEECH_STARTED, Dialect.GA).type
_GA_SPEECH_STOPPED = make_event(K.SPEECH_STOPPED, Dialect.GA).type
_LIVE_AUDIO_DELTA = make_event(K.OUTPUT_AUDIO_DELTA, Dialect.LIVE).type
_LIVE_AUDIO_HEAD = b'{"type":"' + _LIVE_AUDIO_DELTA.encode() + b'","delta":'
_DELTA_KEY = b'"delta":'
_HIDDEN = b""  # an Outbox payload that is stamped and recorded but not written (see Outbox._pump)


def is_live_path(path: str) -> bool:
    """Whether a request path (query allowed) is the Live endpoint."""
    return path.split("?", 1)[0].rstrip("/").endswith("/live/sessions")


class LiveOutbox(Outbox):
    """The session's outbox, translating engine (GA) events into Live events as they are queued."""

    session: "LiveSession"

    def put(self, item: Outgoing) -> Outgoing:
        if item.payload is not None and item.kind is not None:
            self._payload(item)
        elif item.event is not None:
            self._event(item)
        return super().put(item)

    def put_live(self, item: Outgoing) -> Outgoing:
        """Queue an event that is already Live's."""
        return super().put(item)

    def _payload(self, item: Outgoing) -> None:
        payload = item.payload
        assert payload is not None
        if item.kind == _GA_AUDIO_DELTA:  # the hot path: keep the encoded audio, replace the head
            item.payload = _LIVE_AUDIO_HEAD + payload[payload.index(_DELTA_KEY) + len(_DELTA_KEY):]
            item.kind, item.eid = _LIVE_AUDIO_DELTA, None
        elif item.kind == _GA_TRANSCRIPT_DELTA:
            now_ms = self.session.session_ms()
            item.payload = dumps(self.session.live_event(K.OUTPUT_TRANSCRIPT_DELTA, event_id=item.eid,
                                                         delta=orjson.loads(payload)["delta"],
                                                         start_ms=now_ms, end_ms=now_ms))
            item.kind = "session.output_transcript.delta"
        else:
            item.payload = _HIDDEN
            item.note["live"] = "not sent"

    def _event(self, item: Outgoing) -> None:
        event = item.event
        assert event is not None
        type_ = event.get("type")
        s = self.session
        if type_ == "error":  # already Live's shape (LiveSession.error_event)
            return
        if type_ == _GA_SPEECH_STARTED:
            s.speech_start_ms = int(event["audio_start_ms"])
        elif type_ == _GA_SPEECH_STOPPED:
            s.speech_end_ms = int(event["audio_end_ms"])
        elif type_ == _GA_INPUT_TRANSCRIPT:
            item.event = s.live_event(K.INPUT_TRANSCRIPTION_DELTA, event_id=event["event_id"], delta=event["delta"],
                                      start_ms=s.speech_start_ms, end_ms=max(s.speech_end_ms, s.speech_start_ms))
            return
        item.payload = _HIDDEN
        item.note["live"] = "not sent"


class LiveSession(Session):
    """One Live connection; the engine underneath speaks GA (see the module docstring)."""

    wire_dialect = Dialect.LIVE

    def __init__(self, ctx: ServerContext, ws: Any, index: int) -> None:
        super().__init__(ctx, ws, Dialect.GA, index, LIVE_DEFAULT_MODEL)
        outbox = LiveOutbox(ws, self.trace, self.session_id, self.cfg.outbox_limit, ctx.lateness)
        outbox.session = self
        self.outbox = outbox
        self.live_outbox = outbox
        self.start: LiveStart | None = None
        self.started_ns = time.perf_counter_ns()
        self.muted = False
        self.speech_start_ms = 0
        self.speech_end_ms = 0
        self._silence: dict[int, str] = {}

    # ---- output
    def session_ms(self) -> int:
        return (time.perf_counter_ns() - self.started_ns) // 1_000_000

    def live_event(self, kind: Kind, **fields: Any) -> dict[str, Any]:
        return make_event(kind, Dialect.LIVE, **fields).to_dict()

    def put_live(self, kind: Kind, client_event_id: str | None = None, **fields: Any) -> Outgoing:
        if client_event_id is not None:
            fields["client_event_id"] = client_event_id
        return self.live_outbox.put_live(Outgoing(event=self.live_event(kind, event_id=self.ids.event(), **fields)))

    def error_event(self, type_: str, code: str | None, message: str, param: str | None,
                    client_event_id: str | None) -> dict[str, Any]:
        error: dict[str, Any] = {"type": type_, "code": code or "server_error", "message": message}
        if param is not None:
            error["param"] = param
        if client_event_id is not None:
            error["client_event_id"] = client_event_id
        event = self.live_event(K.ERROR, event_id=self.ids.event(), error=error)
        if client_event_id is not None:
            event["client_event_id"] = client_event_id
        return event

    def resource(self) -> dict[str, Any]:
        assert self.start is not None
        return render_session_resource(self.start, self.session_id, int(self.created_at_s + self.max_duration_s))

    def open(self) -> None:
        """Live says nothing until the client's `session.start`."""

    # ---- input
    def handle_text(self, text: str | bytes, t_ns: int) -> None:
        if isinstance(text, bytes) and _APPEND in text[:64] and self.start is not None:
            obj = _loads(text)
            if type(obj) is dict and obj.get("type") == "session.input_audio.append":
                self._append_live(obj, t_ns)
                return
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        try:
            event = decode_client(text, Dialect.LIVE)
        except RemoteProtocolError as exc:
            self.send_error(exc.code, undecodable_message(exc.code, exc.message))
            return
        eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        handler = _HANDLERS.get(event.kind)
        if handler is None:
            self.send_error("invalid_value", f"Invalid value: '{event.type}'. Supported values are: "
                            f"{', '.join(sorted(_SUPPORTED))}.", "type", eid)
            return
        if self.start is None and event.kind is not K.SESSION_START:
            self.send_error("session_not_started", "Send session.start and wait for session.started first.",
                            None, eid)
            return
        try:
            handler(self, event.fields, t_ns, eid)
        except ProtocolValueError as exc:
            self.send_error(exc.code, exc.message, exc.param, eid)

    def _append_live(self, fields: dict[str, Any], t_ns: int, eid: str | None = None) -> None:
        if self.cfg.discard:
            return
        audio = fields.get("audio")
        if self.muted and isinstance(audio, str):
            audio = self._silent(audio)  # a muted input sends silence to the model
        try:
            self.turns.append(audio, t_ns, eid)
        except ProtocolValueError as exc:
            self.send_error(exc.code, exc.message, exc.param, eid)

    def _silent(self, audio: str) -> str:
        size = len(base64.b64decode(audio, validate=False))
        cached = self._silence.get(size)
        if cached is None:
            fmt = self.settings.input_format
            cached = self._silence[size] = base64.b64encode(fmt.silence_byte * size).decode("ascii")
        return cached

    def _start(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        if self.start is not None:
            raise ProtocolValueError("session_already_started", None, "session.start was already sent.")
        start = parse_session_start(fields.get("session"))
        fmt = start.audio_format.render(Dialect.GA)
        engine = {"type": "realtime",
                  "audio": {"input": {"format": fmt, "transcription": {"model": "gpt-4o-transcribe"},
                                      "turn_detection": {"type": "server_vad"}},
                            "output": {"format": fmt}}}
        self.settings = replace(self.settings, model=start.model)
        self._session_update({"session": engine}, t_ns, None)
        self.start = start
        self.started_ns = time.perf_counter_ns()
        self.trace.record("live_start", self.session_id, model=start.model, format=start.audio_format.value)
        self.put_live(K.SESSION_STARTED, eid, session=self.resource())

    def _update(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        session = fields.get("session")
        if not isinstance(session, dict):
            raise ProtocolValueError("missing_required_parameter", "session", "Missing required parameter: 'session'.")
        for key in session:
            if session[key]:  # delegation and triggers: nothing the simulator runs
                raise ProtocolValueError("unsupported_value", f"session.{key}",
                                         f"session.{key} is not supported by the simulator.")
        self.put_live(K.SESSION_UPDATED, eid, session=self.resource())

    def _mute(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        self.muted = True
        self.put_live(K.INPUT_AUDIO_MUTED, eid)

    def _unmute(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        self.muted = False
        self.put_live(K.INPUT_AUDIO_UNMUTED, eid)

    def _respond(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        raise ProtocolValueError("unsupported_value", None, "response.create requires Responses delegation, "
                                 "which the simulator does not offer.")

    def _close(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        seconds = float(int(time.time() - self.created_at_s))
        self.put_live(K.SESSION_CLOSED, eid, reason="close_requested", session=self.resource(),
                      usage={"seconds": seconds})
        self.live_outbox.put_live(Outgoing(action=lambda: self.close_socket(1000, "session closed"), lane=ERROR_LANE))


def _loads(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


_HANDLERS = {
    K.SESSION_START: LiveSession._start,
    K.INPUT_AUDIO_APPEND: LiveSession._append_live,
    K.SESSION_UPDATE: LiveSession._update,
    K.INPUT_AUDIO_MUTE: LiveSession._mute,
    K.INPUT_AUDIO_UNMUTE: LiveSession._unmute,
    K.RESPONSE_CREATE: LiveSession._respond,
    K.SESSION_CLOSE: LiveSession._close,
}
_SUPPORTED = [name for name, spec in LIVE_CLIENT_NAMES.items() if spec.kind in _HANDLERS]
