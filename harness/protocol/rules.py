"""Per-connection protocol state as explicit tables, checked from either side.

`ConnectionRules(perspective)` is fed every event of one connection in order, sent and
received, and returns the rules each event broke as data (`Violation`); it never raises. The
caller uses it to check the target (violations become the conformance section of the report);
the simulator can use it to check a client. A violation is "remote" when the peer broke the
rule and "local" when our own side did (relative to `perspective`).

The rules cover a response's life (created -> items -> parts -> deltas -> done events ->
response.done; nothing for R after its response.done), one active default-conversation
response at a time, items, and the input buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from harness.protocol.catalogue import CLIENT, SERVER, Kind
from harness.protocol.events import Event
from harness.protocol.formats import AudioFormat, Dialect, parse_audio_format
from harness.protocol.refusals import refusal

# rule name -> one-line description (names are stable: they become report rows)
RULES: dict[str, str] = {
    "unknown_event_type": "an event type the protocol catalogue does not know",
    "missing_required_field": "a known event without one of its required fields",
    "wrong_dialect_name": "an event name that belongs to the other dialect",
    "event_before_session_created": "a server event before session.created",
    "response_event_for_unknown_response": "a response-scoped event naming a response never created",
    "response_event_after_done": "an event for a response after its response.done",
    "response_created_while_active": "a new default-conversation response before the previous one was done",
    "response_done_twice": "a second response.done for the same response",
    "response_done_bad_status": "response.done whose status is not completed, cancelled, incomplete or failed",
    "delta_for_unknown_item": "an output delta for an item never added to its response",
    "delta_after_done": "an audio/transcript/text delta after that content's .done event",
    "output_item_done_twice": "a second response.output_item.done for the same item",
    "speech_stopped_without_started": "speech_stopped for an item whose speech_started never came",
    "commit_without_audio": "input_audio_buffer.commit with under 100 ms of audio appended since the last commit or clear",
    "cancel_without_active_response": "response.cancel sent while no response was active (a benign race)",
    "response_create_while_active": "response.create sent while a response was still active",
    "truncate_unknown_item": "conversation.item.truncate for an item this connection never saw",
}
# Rules the caller's session checks with what only it knows (what it asked for, the audio it sent,
# its timers); recorded as violations like the ones above, by the same names in every report.
SESSION_RULES: dict[str, str] = {
    "session_config_drift": "session.updated acknowledges another value than the session.update asked for",
    "session_update_ignored": "session.updated still holds the initial session where the update asked for more",
    "vad_event_without_turn_detection": "speech_started while turn detection was off",
    "speech_started_before_speech": "speech_started before the caller had sent any speech",
    "error_without_response_done": "a server_error for a response that never got its response.done",
    "no_server_vad_commit": "no commit within the silence window plus 1.5 s of the speech end (the caller committed)",
}

_DELTA_FAMILY = {
    Kind.OUTPUT_AUDIO_DELTA: "audio", Kind.OUTPUT_TRANSCRIPT_DELTA: "transcript", Kind.OUTPUT_TEXT_DELTA: "text",
}
_DONE_FAMILY = {
    Kind.OUTPUT_AUDIO_DONE: "audio", Kind.OUTPUT_TRANSCRIPT_DONE: "transcript", Kind.OUTPUT_TEXT_DONE: "text",
}
_RESPONSE_SCOPED = frozenset({
    Kind.OUTPUT_ITEM_ADDED, Kind.OUTPUT_ITEM_DONE, Kind.CONTENT_PART_ADDED, Kind.CONTENT_PART_DONE,
    *_DELTA_FAMILY, *_DONE_FAMILY, Kind.FUNCTION_CALL_ARGUMENTS_DELTA, Kind.FUNCTION_CALL_ARGUMENTS_DONE,
})
_DONE_STATUSES = frozenset({"completed", "cancelled", "incomplete", "failed"})

# A response or item id as the event carried it: None when the field is missing (the event is still
# tracked, under None, so that what follows it is checked; a missing required field is reported
# by `_generic` from the catalogue).
WireId: TypeAlias = str | None


@dataclass(frozen=True)
class Violation:
    rule: str
    side: str  # "local" | "remote"
    message: str
    event_type: str


@dataclass
class _Response:
    done: bool = False
    in_conversation: bool = True
    items: set[WireId] = field(default_factory=set)
    items_done: set[WireId] = field(default_factory=set)
    closed: set[tuple[Any, Any, str]] = field(default_factory=set)


class ConnectionRules:
    """The state of one connection, seen from `perspective` ("client" or "server")."""

    def __init__(self, perspective: str = CLIENT, dialect: Dialect | str | None = None) -> None:
        if perspective not in (CLIENT, SERVER):
            raise ValueError(f"perspective must be 'client' or 'server', not {perspective!r}")
        self.perspective = perspective
        self.dialect = Dialect(dialect) if dialect is not None else None
        self.session_created = False
        self.responses: dict[WireId, _Response] = {}
        self.items: set[WireId] = set()
        self.speech_open: set[WireId] = set()
        self.input_format = AudioFormat.PCM16   # the service's default until a session says otherwise
        self.input_ms = 0.0                     # appended since the last commit or clear

    @property
    def active_response_ids(self) -> list[WireId]:
        return [rid for rid, r in self.responses.items() if not r.done and r.in_conversation]

    # -- the view refusals.refusal() reads (the same rules the simulator enforces) ---------------
    @property
    def active_response_id(self) -> str | None:
        active = self.active_response_ids
        return str(active[0]) if active else None

    @property
    def cancellable_ids(self) -> set[str]:
        return {str(rid) for rid, r in self.responses.items() if not r.done and rid is not None}

    @property
    def item_ids(self) -> set[str]:
        return {item for item in self.items if item is not None}

    def _session(self, session: Any) -> None:
        if not isinstance(session, dict):
            return
        audio = session.get("audio")
        given = ((audio.get("input") or {}).get("format") if isinstance(audio, dict)
                 else session.get("input_audio_format"))
        fmt = parse_audio_format(given)
        if fmt is not None:
            self.input_format = fmt

    def observe(self, event: Event, sent: bool) -> list[Violation]:
        """Check one event (`sent` by this side or received) and update the state."""
        author = self.perspective if sent else (SERVER if self.perspective == CLIENT else CLIENT)
        side = "local" if sent else "remote"
        found: list[tuple[str, str]] = []
        try:
            if author == SERVER:
                self._server_event(event, found)
            else:
                self._client_event(event, found)
        except (TypeError, AttributeError, KeyError) as exc:  # hostile shapes must not crash the checker
            found.append(("missing_required_field", f"malformed {event.type}: {exc}"))
        return [Violation(rule, side, message, event.type) for rule, message in found]

    # -- checks -----------------------------------------------------------------------------
    def _generic(self, event: Event, out: list[tuple[str, str]]) -> bool:
        if event.kind is Kind.UNKNOWN:
            out.append(("unknown_event_type", f"unknown event type {event.type!r}"))
            return False
        if event.missing_fields:
            out.append(("missing_required_field", f"{event.type} lacks {', '.join(event.missing_fields)}"))
        if self.dialect is not None and event.name_dialect is not None and event.name_dialect is not self.dialect:
            out.append(("wrong_dialect_name", f"{event.type} is a {event.name_dialect.value} name on a "
                                              f"{self.dialect.value} connection"))
        return True

    def _server_event(self, event: Event, out: list[tuple[str, str]]) -> None:
        if not self._generic(event, out):
            return
        kind = event.kind
        if kind is Kind.SESSION_CREATED:
            self.session_created = True
            self._session(event.get("session"))
            return
        if not self.session_created:
            out.append(("event_before_session_created", f"{event.type} before session.created"))
            self.session_created = True  # report once
        if kind is Kind.SESSION_UPDATED:
            self._session(event.get("session"))
        elif kind is Kind.SPEECH_STARTED:
            self.speech_open.add(event.get("item_id"))
        elif kind is Kind.SPEECH_STOPPED:
            item_id = event.get("item_id")
            if item_id not in self.speech_open:
                out.append(("speech_stopped_without_started", f"speech_stopped for {item_id!r}"))
            self.speech_open.discard(item_id)
        elif kind in (Kind.COMMITTED, Kind.CLEARED):
            self.input_ms = 0.0
            if kind is Kind.COMMITTED:
                self.items.add(event.get("item_id"))
        elif kind in (Kind.ITEM_ADDED, Kind.ITEM_DONE, Kind.ITEM_RETRIEVED):
            item = event.get("item") or {}
            self.items.add(item.get("id"))
        elif kind is Kind.RESPONSE_CREATED:
            self._response_created(event, out)
        elif kind is Kind.RESPONSE_DONE:
            self._response_done(event, out)
        elif kind in _RESPONSE_SCOPED:
            self._response_scoped(event, out)

    def _response_created(self, event: Event, out: list[tuple[str, str]]) -> None:
        response = event.get("response") or {}
        rid = response.get("id")
        in_conversation = not ("conversation_id" in response and response["conversation_id"] is None)
        if in_conversation and self.active_response_ids:
            out.append(("response_created_while_active",
                        f"{rid} created while {self.active_response_ids[0]} was active"))
        self.responses[rid] = _Response(in_conversation=in_conversation)

    def _response_done(self, event: Event, out: list[tuple[str, str]]) -> None:
        response = event.get("response") or {}
        rid = response.get("id")
        state = self.responses.get(rid)
        if state is None:
            out.append(("response_event_for_unknown_response", f"response.done for unknown {rid}"))
            state = self.responses[rid] = _Response()
        elif state.done:
            out.append(("response_done_twice", f"second response.done for {rid}"))
        if response.get("status") not in _DONE_STATUSES:
            out.append(("response_done_bad_status", f"response.done status {response.get('status')!r}"))
        state.done = True

    def _response_scoped(self, event: Event, out: list[tuple[str, str]]) -> None:
        rid = event.get("response_id")
        state = self.responses.get(rid)
        if state is None:
            out.append(("response_event_for_unknown_response", f"{event.type} for unknown response {rid}"))
            state = self.responses[rid] = _Response()
        elif state.done:
            out.append(("response_event_after_done", f"{event.type} after response.done of {rid}"))
        kind = event.kind
        if kind is Kind.OUTPUT_ITEM_ADDED:
            item_id = (event.get("item") or {}).get("id")
            state.items.add(item_id)
            self.items.add(item_id)
            return
        if kind is Kind.OUTPUT_ITEM_DONE:
            item_id = (event.get("item") or {}).get("id")
            if item_id in state.items_done:
                out.append(("output_item_done_twice", f"output_item.done twice for {item_id}"))
            state.items_done.add(item_id)
            return
        item_id = event.get("item_id")
        if item_id not in state.items:
            out.append(("delta_for_unknown_item", f"{event.type} for item {item_id!r} not in {rid}"))
        family = _DELTA_FAMILY.get(kind)
        if family is not None and (item_id, event.get("content_index"), family) in state.closed:
            out.append(("delta_after_done", f"{event.type} after its {family} .done (item {item_id})"))
        done_family = _DONE_FAMILY.get(kind)
        if done_family is not None:
            state.closed.add((item_id, event.get("content_index"), done_family))

    def _client_event(self, event: Event, out: list[tuple[str, str]]) -> None:
        if not self._generic(event, out):
            return
        kind = event.kind
        refused = refusal(kind, event.fields, self)
        if refused is not None:
            out.append((refused.rule, refused.message))
        if kind is Kind.INPUT_AUDIO_APPEND:
            audio = event.get("audio")
            if isinstance(audio, str):
                self.input_ms += self.input_format.duration_ms(len(audio) * 3 // 4 - audio[-2:].count("="))
        elif kind in (Kind.INPUT_AUDIO_CLEAR, Kind.INPUT_AUDIO_COMMIT):
            self.input_ms = 0.0
        elif kind is Kind.SESSION_UPDATE:
            self._session(event.get("session"))
        elif kind is Kind.ITEM_CREATE:
            self.items.add((event.get("item") or {}).get("id"))
