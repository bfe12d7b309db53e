"""The Live API's event catalogue (`/v1/live/sessions`), read from the openai SDK's `openai.types.live`.

Live is not a third shape of Realtime: it has no responses, items or input buffer, so its events
are a table of their own. Each row maps a Live wire name to the neutral `Kind` of the same meaning
(an audio chunk is `OUTPUT_AUDIO_DELTA` in every dialect) or to a Live-only kind, with the fields
the SDK's model requires and allows (besides `type`). tests/protocol/test_live_catalogue.py holds
every row against the SDK's models, both ways.

Modelled: the events a voice caller and the simulator exchange, plus the SIP transport and
informational events (so a trace names them). Not modelled (they decode as `Kind.UNKNOWN`):
delegation, decisions, instructions/thinking/commentary appends and fixture playback.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.protocol.catalogue import CLIENT, SERVER, Kind


@dataclass(frozen=True)
class LiveEventSpec:
    """One Live event: its kind, sender, wire name and fields (as the SDK's model declares them)."""

    kind: Kind
    side: str  # "client" | "server"
    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def known_fields(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)


_CID = ("client_event_id",)  # most server events echo the client command's event_id
_EID = ("event_id",)         # every client command may carry one


def _server(kind: Kind, name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = _CID) -> LiveEventSpec:
    return LiveEventSpec(kind, SERVER, name, required, optional)


def _client(kind: Kind, name: str, required: tuple[str, ...] = ()) -> LiveEventSpec:
    return LiveEventSpec(kind, CLIENT, name, required, _EID)


K = Kind
LIVE_CATALOGUE: tuple[LiveEventSpec, ...] = (
    # ---- server events
    _server(K.SESSION_STARTED, "session.started", ("event_id", "session")),
    _server(K.SESSION_UPDATED, "session.updated", ("event_id", "session")),
    _server(K.INPUT_AUDIO_MUTED, "session.input_audio.muted", ("event_id",)),
    _server(K.INPUT_AUDIO_UNMUTED, "session.input_audio.unmuted", ("event_id",)),
    # a sideband connection's reflection of the caller's audio (always pcm16 24 kHz, no ids)
    _server(K.INPUT_AUDIO_REFLECTED, "session.input_audio.append", ("audio",), ()),
    # no event_id: the primary WebSocket's chunks carry only the audio (times only on a sideband)
    _server(K.OUTPUT_AUDIO_DELTA, "session.output_audio.delta", ("delta",), ("start_ms", "end_ms")),
    _server(K.INPUT_TRANSCRIPTION_DELTA, "session.input_transcript.delta", ("delta", "end_ms", "event_id", "start_ms")),
    _server(K.OUTPUT_TRANSCRIPT_DELTA, "session.output_transcript.delta", ("delta", "end_ms", "event_id", "start_ms")),
    _server(K.USAGE_UPDATED, "session.usage.updated", ("event_id", "usage"), (*_CID, "context_window")),
    _server(K.SESSION_CLOSED, "session.closed", ("event_id", "reason", "session", "usage")),
    _server(K.ERROR, "error", ("error", "event_id")),
    _server(K.INFO, "info", ("code", "event_id", "message")),
    _server(K.DTMF_RECEIVED, "transport.dtmf.received", ("event", "event_id"), ()),
    _server(K.DTMF_SENT, "transport.dtmf.sent", ("event", "event_id")),
    _server(K.TRANSPORT_RINGING, "transport.ringing", ("event_id", "session_id"), ()),
    _server(K.TRANSPORT_ANSWERED, "transport.answered", ("event_id", "session_id"), ()),
    _server(K.TRANSPORT_FAILED, "transport.failed", ("error", "event_id", "session_id"), ()),
    # ---- client events
    _client(K.SESSION_START, "session.start", ("session",)),
    _client(K.SESSION_UPDATE, "session.update", ("session",)),
    _client(K.INPUT_AUDIO_APPEND, "session.input_audio.append", ("audio",)),
    _client(K.INPUT_AUDIO_MUTE, "session.input_audio.mute"),
    _client(K.INPUT_AUDIO_UNMUTE, "session.input_audio.unmute"),
    _client(K.RESPONSE_CREATE, "response.create"),
    _client(K.SESSION_CLOSE, "session.close"),
)

# the reasons `session.closed` gives (SessionClosedEvent.reason)
CLOSE_REASONS: tuple[str, ...] = ("close_requested", "expired", "content", "remote_hangup", "connection_lost")

LIVE_SERVER_NAMES: dict[str, LiveEventSpec] = {s.name: s for s in LIVE_CATALOGUE if s.side == SERVER}
LIVE_CLIENT_NAMES: dict[str, LiveEventSpec] = {s.name: s for s in LIVE_CATALOGUE if s.side == CLIENT}
LIVE_SPEC_BY_KIND: dict[tuple[Kind, str], LiveEventSpec] = {(s.kind, s.side): s for s in LIVE_CATALOGUE}


def live_spec(kind: Kind) -> LiveEventSpec | None:
    """The Live row of `kind` (client or server: no kind is both), None when Live has no such event."""
    return LIVE_SPEC_BY_KIND.get((kind, SERVER)) or LIVE_SPEC_BY_KIND.get((kind, CLIENT))
