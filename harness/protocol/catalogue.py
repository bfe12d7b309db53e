"""The event catalogue: every client and server event of both dialects, in one table.

Each row names the neutral kind, its GA and beta wire names (None where a dialect lacks the
event), who sends it, and its required and optional fields (besides `type`). Everything else
in the package (codec, rules, simulator) looks names and fields up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from harness.protocol.formats import Dialect


class Kind(str, Enum):
    """Neutral event kinds: one per meaning, whatever the dialect calls it."""

    # server
    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    TRANSCRIPTION_SESSION_UPDATED = "transcription_session_updated"
    CONVERSATION_CREATED = "conversation_created"
    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"
    COMMITTED = "committed"
    CLEARED = "cleared"
    TIMEOUT_TRIGGERED = "timeout_triggered"
    DTMF_RECEIVED = "dtmf_received"
    ITEM_ADDED = "item_added"
    ITEM_DONE = "item_done"
    ITEM_RETRIEVED = "item_retrieved"
    ITEM_TRUNCATED = "item_truncated"
    ITEM_DELETED = "item_deleted"
    INPUT_TRANSCRIPTION_DELTA = "input_transcription_delta"
    INPUT_TRANSCRIPTION_COMPLETED = "input_transcription_completed"
    INPUT_TRANSCRIPTION_FAILED = "input_transcription_failed"
    INPUT_TRANSCRIPTION_SEGMENT = "input_transcription_segment"
    RESPONSE_CREATED = "response_created"
    RESPONSE_DONE = "response_done"
    OUTPUT_ITEM_ADDED = "output_item_added"
    OUTPUT_ITEM_DONE = "output_item_done"
    CONTENT_PART_ADDED = "content_part_added"
    CONTENT_PART_DONE = "content_part_done"
    OUTPUT_AUDIO_DELTA = "output_audio_delta"
    OUTPUT_AUDIO_DONE = "output_audio_done"
    OUTPUT_TRANSCRIPT_DELTA = "output_transcript_delta"
    OUTPUT_TRANSCRIPT_DONE = "output_transcript_done"
    OUTPUT_TEXT_DELTA = "output_text_delta"
    OUTPUT_TEXT_DONE = "output_text_done"
    FUNCTION_CALL_ARGUMENTS_DELTA = "function_call_arguments_delta"
    FUNCTION_CALL_ARGUMENTS_DONE = "function_call_arguments_done"
    RATE_LIMITS_UPDATED = "rate_limits_updated"
    OUTPUT_AUDIO_BUFFER_STARTED = "output_audio_buffer_started"
    OUTPUT_AUDIO_BUFFER_STOPPED = "output_audio_buffer_stopped"
    OUTPUT_AUDIO_BUFFER_CLEARED = "output_audio_buffer_cleared"
    ERROR = "error"
    UNKNOWN = "unknown"
    # client
    SESSION_UPDATE = "session_update"
    TRANSCRIPTION_SESSION_UPDATE = "transcription_session_update"
    INPUT_AUDIO_APPEND = "input_audio_append"
    INPUT_AUDIO_COMMIT = "input_audio_commit"
    INPUT_AUDIO_CLEAR = "input_audio_clear"
    ITEM_CREATE = "item_create"
    ITEM_TRUNCATE = "item_truncate"
    ITEM_DELETE = "item_delete"
    ITEM_RETRIEVE = "item_retrieve"
    RESPONSE_CREATE = "response_create"
    RESPONSE_CANCEL = "response_cancel"
    OUTPUT_AUDIO_BUFFER_CLEAR = "output_audio_buffer_clear"
    # Live only (live_catalogue.py): the Live API's own events with no Realtime equivalent
    SESSION_STARTED = "session_started"
    SESSION_CLOSED = "session_closed"
    INPUT_AUDIO_MUTED = "input_audio_muted"
    INPUT_AUDIO_UNMUTED = "input_audio_unmuted"
    INPUT_AUDIO_REFLECTED = "input_audio_reflected"
    USAGE_UPDATED = "usage_updated"
    INFO = "info"
    TRANSPORT_RINGING = "transport_ringing"
    TRANSPORT_ANSWERED = "transport_answered"
    TRANSPORT_FAILED = "transport_failed"
    DTMF_SENT = "dtmf_sent"
    SESSION_START = "session_start"
    SESSION_CLOSE = "session_close"
    INPUT_AUDIO_MUTE = "input_audio_mute"
    INPUT_AUDIO_UNMUTE = "input_audio_unmute"


CLIENT = "client"
SERVER = "server"


@dataclass(frozen=True)
class EventSpec:
    """One row of the catalogue."""

    kind: Kind
    side: str  # "client" | "server": who sends it
    ga: str | None
    beta: str | None
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def wire_name(self, dialect: Dialect) -> str | None:
        """The Realtime name in `dialect`; None for Live, whose names are in live_catalogue.py."""
        if dialect is Dialect.LIVE:
            return None
        return self.ga if dialect is Dialect.GA else self.beta

    @property
    def known_fields(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)


_R = ("event_id", "response_id")  # every response-scoped server event
_RIOC = (*_R, "item_id", "output_index", "content_index")
_SRV = ("event_id",)
_CLI_OPT = ("event_id",)


def _same(kind: Kind, side: str, name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> EventSpec:
    opt = (*optional, "event_id") if side == CLIENT else optional
    return EventSpec(kind, side, name, name, required, opt)


K = Kind
CATALOGUE: tuple[EventSpec, ...] = (
    # ---- server events (section 3 of the protocol reference)
    _same(K.SESSION_CREATED, SERVER, "session.created", (*_SRV, "session")),
    _same(K.SESSION_UPDATED, SERVER, "session.updated", (*_SRV, "session")),
    EventSpec(K.TRANSCRIPTION_SESSION_UPDATED, SERVER, None, "transcription_session.updated", (*_SRV, "session")),
    _same(K.CONVERSATION_CREATED, SERVER, "conversation.created", (*_SRV, "conversation")),
    _same(K.SPEECH_STARTED, SERVER, "input_audio_buffer.speech_started", (*_SRV, "audio_start_ms", "item_id")),
    _same(K.SPEECH_STOPPED, SERVER, "input_audio_buffer.speech_stopped", (*_SRV, "audio_end_ms", "item_id")),
    _same(K.COMMITTED, SERVER, "input_audio_buffer.committed", (*_SRV, "item_id"), ("previous_item_id",)),
    _same(K.CLEARED, SERVER, "input_audio_buffer.cleared", _SRV),
    EventSpec(K.TIMEOUT_TRIGGERED, SERVER, "input_audio_buffer.timeout_triggered", None,
              (*_SRV, "audio_start_ms", "audio_end_ms", "item_id")),
    EventSpec(K.DTMF_RECEIVED, SERVER, "input_audio_buffer.dtmf_event_received", None, ("event", "received_at"),
              ("event_id",)),
    EventSpec(K.ITEM_ADDED, SERVER, "conversation.item.added", "conversation.item.created", (*_SRV, "item"),
              ("previous_item_id",)),
    EventSpec(K.ITEM_DONE, SERVER, "conversation.item.done", None, (*_SRV, "item"), ("previous_item_id",)),
    _same(K.ITEM_RETRIEVED, SERVER, "conversation.item.retrieved", (*_SRV, "item")),
    _same(K.ITEM_TRUNCATED, SERVER, "conversation.item.truncated", (*_SRV, "item_id", "content_index", "audio_end_ms")),
    _same(K.ITEM_DELETED, SERVER, "conversation.item.deleted", (*_SRV, "item_id")),
    _same(K.INPUT_TRANSCRIPTION_DELTA, SERVER, "conversation.item.input_audio_transcription.delta",
          (*_SRV, "item_id", "delta"), ("content_index", "logprobs")),
    _same(K.INPUT_TRANSCRIPTION_COMPLETED, SERVER, "conversation.item.input_audio_transcription.completed",
          (*_SRV, "item_id", "content_index", "transcript"), ("usage", "logprobs")),
    _same(K.INPUT_TRANSCRIPTION_FAILED, SERVER, "conversation.item.input_audio_transcription.failed",
          (*_SRV, "item_id", "content_index", "error")),
    EventSpec(K.INPUT_TRANSCRIPTION_SEGMENT, SERVER, "conversation.item.input_audio_transcription.segment", None,
              (*_SRV, "item_id", "content_index", "id", "start", "end", "speaker", "text")),
    _same(K.RESPONSE_CREATED, SERVER, "response.created", (*_SRV, "response")),
    _same(K.RESPONSE_DONE, SERVER, "response.done", (*_SRV, "response")),
    _same(K.OUTPUT_ITEM_ADDED, SERVER, "response.output_item.added", (*_R, "output_index", "item")),
    _same(K.OUTPUT_ITEM_DONE, SERVER, "response.output_item.done", (*_R, "output_index", "item")),
    _same(K.CONTENT_PART_ADDED, SERVER, "response.content_part.added", (*_RIOC, "part")),
    _same(K.CONTENT_PART_DONE, SERVER, "response.content_part.done", (*_RIOC, "part")),
    EventSpec(K.OUTPUT_AUDIO_DELTA, SERVER, "response.output_audio.delta", "response.audio.delta", (*_RIOC, "delta")),
    EventSpec(K.OUTPUT_AUDIO_DONE, SERVER, "response.output_audio.done", "response.audio.done", _RIOC),
    EventSpec(K.OUTPUT_TRANSCRIPT_DELTA, SERVER, "response.output_audio_transcript.delta",
              "response.audio_transcript.delta", (*_RIOC, "delta")),
    EventSpec(K.OUTPUT_TRANSCRIPT_DONE, SERVER, "response.output_audio_transcript.done",
              "response.audio_transcript.done", (*_RIOC, "transcript")),
    EventSpec(K.OUTPUT_TEXT_DELTA, SERVER, "response.output_text.delta", "response.text.delta", (*_RIOC, "delta")),
    EventSpec(K.OUTPUT_TEXT_DONE, SERVER, "response.output_text.done", "response.text.done", (*_RIOC, "text")),
    _same(K.FUNCTION_CALL_ARGUMENTS_DELTA, SERVER, "response.function_call_arguments.delta",
          (*_R, "item_id", "output_index", "call_id", "delta")),
    _same(K.FUNCTION_CALL_ARGUMENTS_DONE, SERVER, "response.function_call_arguments.done",
          (*_R, "item_id", "output_index", "call_id", "arguments"), ("name",)),
    _same(K.RATE_LIMITS_UPDATED, SERVER, "rate_limits.updated", (*_SRV, "rate_limits")),
    _same(K.OUTPUT_AUDIO_BUFFER_STARTED, SERVER, "output_audio_buffer.started", (*_SRV, "response_id")),
    _same(K.OUTPUT_AUDIO_BUFFER_STOPPED, SERVER, "output_audio_buffer.stopped", (*_SRV, "response_id")),
    _same(K.OUTPUT_AUDIO_BUFFER_CLEARED, SERVER, "output_audio_buffer.cleared", (*_SRV, "response_id")),
    _same(K.ERROR, SERVER, "error", (*_SRV, "error")),
    # ---- client events (section 2)
    _same(K.SESSION_UPDATE, CLIENT, "session.update", ("session",)),
    EventSpec(K.TRANSCRIPTION_SESSION_UPDATE, CLIENT, None, "transcription_session.update", ("session",),
              ("event_id",)),
    _same(K.INPUT_AUDIO_APPEND, CLIENT, "input_audio_buffer.append", ("audio",)),
    _same(K.INPUT_AUDIO_COMMIT, CLIENT, "input_audio_buffer.commit"),
    _same(K.INPUT_AUDIO_CLEAR, CLIENT, "input_audio_buffer.clear"),
    _same(K.ITEM_CREATE, CLIENT, "conversation.item.create", ("item",), ("previous_item_id",)),
    _same(K.ITEM_TRUNCATE, CLIENT, "conversation.item.truncate", ("item_id", "content_index", "audio_end_ms")),
    _same(K.ITEM_DELETE, CLIENT, "conversation.item.delete", ("item_id",)),
    _same(K.ITEM_RETRIEVE, CLIENT, "conversation.item.retrieve", ("item_id",)),
    _same(K.RESPONSE_CREATE, CLIENT, "response.create", (), ("response",)),
    _same(K.RESPONSE_CANCEL, CLIENT, "response.cancel", (), ("response_id",)),
    _same(K.OUTPUT_AUDIO_BUFFER_CLEAR, CLIENT, "output_audio_buffer.clear"),
)

SPEC_BY_KIND: dict[Kind, EventSpec] = {spec.kind: spec for spec in CATALOGUE}


def _names(side: str) -> dict[str, tuple[EventSpec, Dialect | None]]:
    """Wire name -> (spec, the dialect the name belongs to; None when both dialects use it)."""
    table: dict[str, tuple[EventSpec, Dialect | None]] = {}
    for spec in CATALOGUE:
        if spec.side != side:
            continue
        if spec.ga == spec.beta:
            table[spec.ga] = (spec, None)  # type: ignore[index]
            continue
        if spec.ga is not None:
            table[spec.ga] = (spec, Dialect.GA)
        if spec.beta is not None:
            table[spec.beta] = (spec, Dialect.BETA)
    return table


SERVER_NAMES = _names(SERVER)
CLIENT_NAMES = _names(CLIENT)


def server_kinds() -> list[Kind]:
    return [spec.kind for spec in CATALOGUE if spec.side == SERVER]


def client_kinds() -> list[Kind]:
    return [spec.kind for spec in CATALOGUE if spec.side == CLIENT]
