"""One simulated Realtime session: the state behind a connection and its reaction to each client event.

Client frames arrive through `handle_text` with their arrival time; everything the session says
goes through its `Outbox` on deadlines. Input audio, the VAD and commits live in `InputTurns`
(turns.py); a response in progress is a `ResponseRun` (responder.py).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import orjson

from harness.protocol import (
    CATALOGUE,
    CLIENT,
    Dialect,
    Kind,
    ProtocolValueError,
    RemoteProtocolError,
    decode_client,
    error_event,
    make_event,
)
from harness.protocol.refusals import refusal
from harness.protocol.server_errors import INVALID_REQUEST, undecodable_message
from harness.sim.answers import ToolCall, spoken_answer, tool_arguments, wants_tool
from harness.sim.conversation import Conversation, Item, render
from harness.sim.ids import IdMaker
from harness.sim.items import parse_client_item
from harness.sim.outbox import ERROR_LANE, Outbox, Outgoing
from harness.sim.responder import ResponseRun, tool_output_text
from harness.sim.session_settings import (
    SessionSettings,
    apply_session_update,
    parse_response_overrides,
    render_session,
)
from harness.sim.turns import InputTurns

if TYPE_CHECKING:
    from harness.sim.server import ServerContext

K = Kind


class Session:
    """State of one connection; `handle_text` / `handle_binary` are called by the server loop."""

    def __init__(self, ctx: ServerContext, ws: Any, dialect: Dialect, index: int, model: str) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.trace = ctx.trace
        self.voice = ctx.voice
        self.ws = ws
        self.dialect = dialect
        self.index = index
        self.ids = IdMaker()
        self.session_id = self.ids.session()
        self.conversation_id = self.ids.conversation()
        self.latency = self.cfg.latency_model.sampler(self.cfg.seed, index)
        self.faults = self.cfg.fault_plan.chooser(self.cfg.seed, index)
        # the target behaviours of this whole session (refuse, vad_without_speech, no_server_vad, ...)
        self.session_faults = self.cfg.fault_plan.session_faults(self.cfg.seed, index)
        self.rng = random.Random(f"{self.cfg.seed}:answers:{index}")
        self.settings = SessionSettings.default(dialect, model)
        self.created_at_s = time.time()
        self.max_duration_s = self.cfg.session_limit_s(dialect is Dialect.BETA)
        self.conversation = Conversation()
        self.outbox = Outbox(ws, self.trace, self.session_id, self.cfg.outbox_limit, ctx.lateness)
        self.turns = InputTurns(self)
        self.active: ResponseRun | None = None
        self.out_of_band: dict[str, ResponseRun] = {}
        self.responses_started = 0
        self.assistant_audio_present = False
        self.expiry: Any = None  # the session_expired timer, set by the server
        self.started_s = 0.0
        self.peer = "?"

    # ---- output helpers
    def wire_name(self, kind: Kind) -> str:
        """The name of a server event kind in this session's dialect (the catalogue's, via make_event)."""
        name = _WIRE_NAMES.get((kind, self.dialect))
        if name is None:
            name = _WIRE_NAMES[(kind, self.dialect)] = make_event(kind, self.dialect).type
        return name

    def event(self, kind: Kind, **fields: Any) -> dict[str, Any]:
        """The wire object of a server event (what make_event(...).to_dict() gives, without building an Event)."""
        name = _WIRE_NAMES.get((kind, self.dialect)) or self.wire_name(kind)
        return {"type": name, "event_id": self.ids.event(), **fields}

    def error_event(self, type_: str, code: str | None, message: str, param: str | None,
                    client_event_id: str | None) -> dict[str, Any]:
        return error_event(self.dialect, code, message, param, client_event_id, type_,
                           server_event_id=self.ids.event()).to_dict()

    def send_error(self, code: str | None, message: str, param: str | None = None,
                   client_event_id: str | None = None, type_: str = INVALID_REQUEST) -> None:
        self.trace.record("error", self.session_id, code=code, param=param)
        self.outbox.put(Outgoing(event=self.error_event(type_, code, message, param, client_event_id), lane=ERROR_LANE))

    def put(self, kind: Kind, **fields: Any) -> Outgoing:
        return self.outbox.put(Outgoing(event=self.event(kind, **fields)))

    @property
    def input_audio_ms_total(self) -> float:
        return self.turns.input_ms

    # ---- lifecycle
    def open(self) -> None:
        self.put(K.SESSION_CREATED, session=render_session(self))
        if self.dialect is Dialect.BETA:
            self.put(K.CONVERSATION_CREATED, conversation={"id": self.conversation_id, "object": "realtime.conversation"})

    async def abort_socket(self) -> None:
        """Fault: drop the TCP connection without a close frame."""
        self.ws.abort()
        self.outbox.close()

    async def close_socket(self, code: int, reason: str = "") -> None:
        self.outbox.close()
        await self.ws.close(code, reason)

    def shutdown(self) -> None:
        for run in [self.active, *self.out_of_band.values()]:
            if run is not None:
                run.stop()
        self.outbox.close()

    # ---- input
    def handle_binary(self, size: int) -> None:
        self.send_error("invalid_event", f"Binary frames are not supported ({size} bytes received); "
                        "send each event as a JSON text frame.")

    def handle_text(self, text: str | bytes, t_ns: int) -> None:
        """One text frame (str, or its UTF-8 bytes: invalid UTF-8 raises UnicodeDecodeError)."""
        # the hot path: an append (50 a second per caller) goes straight to the input buffer; anything
        # else, or anything odd, takes the general path below, which decodes it again with the codec
        try:
            obj = orjson.loads(text)
        except Exception:  # noqa: BLE001 - the codec below says what is wrong
            obj = None
            if isinstance(text, bytes):
                text = text.decode("utf-8")
        if type(obj) is dict and obj.get("type") == "input_audio_buffer.append":
            if self.cfg.discard:
                return
            eid = obj.get("event_id")
            eid = eid if isinstance(eid, str) else None
            try:
                self.turns.append(obj.get("audio"), t_ns, eid)
            except ProtocolValueError as exc:
                self.send_error(exc.code, exc.message, exc.param, eid)
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        try:
            event = decode_client(text, self.dialect)
        except RemoteProtocolError as exc:
            self.send_error(exc.code, undecodable_message(exc.code, exc.message))
            return
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if self.cfg.discard and event.kind is not K.SESSION_UPDATE:
            return
        handler = _HANDLERS.get(event.kind)
        if handler is None or (event.name_dialect is not None and event.name_dialect is not self.dialect):
            self.send_error("invalid_value", f"Invalid value: '{event.type}'. Supported values are: "
                            f"{', '.join(sorted(_client_names(self.dialect)))}.", "type", client_event_id)
            return
        try:
            handler(self, event.fields, t_ns, client_event_id)
        except ProtocolValueError as exc:
            self.send_error(exc.code, exc.message, exc.param, client_event_id)

    # ---- client events
    def _session_update(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        session = fields.get("session")
        if not isinstance(session, dict):
            raise ProtocolValueError("missing_required_parameter", "session", "Missing required parameter: 'session'.")
        if "ignore_session_update" not in self.session_faults:
            self.settings = apply_session_update(self, session)
            self.turns.configure()
        self.put(K.SESSION_UPDATED, session=render_session(self))

    def _append(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        self.turns.append(fields.get("audio"), t_ns, eid)

    def _commit(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        self.turns.manual_commit(t_ns, eid)

    def _clear(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        self.turns.clear()
        self.put(K.CLEARED)

    def _item_create(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        item = parse_client_item(fields.get("item"), self.ids, self.conversation)
        previous = fields.get("previous_item_id")
        if previous is not None and not isinstance(previous, str):
            raise ProtocolValueError("invalid_type", "previous_item_id", "Invalid type for 'previous_item_id': expected a string.")
        before = self.conversation.add(item, previous)
        self.announce_item(item, before)

    def announce_item(self, item: Item, previous_id: str | None) -> None:
        wire = render(item, self.dialect)
        self.put(K.ITEM_ADDED, previous_item_id=previous_id, item=wire)
        if self.dialect is Dialect.GA:
            self.put(K.ITEM_DONE, previous_item_id=previous_id, item=wire)

    def _item_truncate(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        item_id = _id_param(fields, "item_id")
        self.refuse_if_the_rules_say(K.ITEM_TRUNCATE, fields)
        item = self.conversation.truncate(item_id, fields.get("content_index"), fields.get("audio_end_ms"))
        self.put(K.ITEM_TRUNCATED, item_id=item.id, content_index=0, audio_end_ms=fields["audio_end_ms"])

    def _item_delete(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        item_id = _id_param(fields, "item_id")
        self.conversation.delete(item_id)
        self.put(K.ITEM_DELETED, item_id=item_id)

    def _item_retrieve(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        item = self.conversation.retrieve(_id_param(fields, "item_id"))
        self.put(K.ITEM_RETRIEVED, item=render(item, self.dialect, with_audio=True))

    def _response_create(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        settings = parse_response_overrides(self, fields.get("response"))
        self.refuse_if_the_rules_say(K.RESPONSE_CREATE, fields)
        self.start_response(settings, t_ns, "response.create")

    def _response_cancel(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        wanted = _id_param(fields, "response_id", required=False)
        self.refuse_if_the_rules_say(K.RESPONSE_CANCEL, fields)
        run = self.out_of_band.get(wanted) if wanted else self.active
        if run is None or (wanted and run.id != wanted):
            run = self.active
        assert run is not None   # the rules refused a cancel with nothing running
        self.cancel_response(run, "client_cancelled", t_ns)

    # ---- the connection rules the service enforces (harness.protocol.refusals), on this state
    def refuse_if_the_rules_say(self, kind: Kind, fields: dict[str, Any]) -> None:
        refused = refusal(kind, fields, self)   # this session is the rules' ConnectionView
        if refused is not None:
            raise ProtocolValueError(refused.code, refused.param, refused.message)

    @property
    def input_ms(self) -> float:
        return self.turns.buffer_ms

    @property
    def active_response_id(self) -> str | None:
        return self.active.id if self.active is not None and not self.active.finished else None

    @property
    def cancellable_ids(self) -> set[str]:
        return {run.id for run in [self.active, *self.out_of_band.values()] if run is not None and not run.finished}

    @property
    def item_ids(self) -> Conversation:
        return self.conversation


    def _output_clear(self, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        # WebRTC/SIP only on the real service; over WebSocket there is no server-side playout buffer
        raise ProtocolValueError("invalid_value", "type",
                                 "output_audio_buffer.clear is only supported for WebRTC and SIP connections.")

    # ---- responses
    def start_response(self, settings: Any, trigger: int | Outgoing, after: str) -> ResponseRun:
        self.responses_started += 1
        answer = self._plan_answer(settings)
        run = ResponseRun(self, settings, answer, self.faults.next_response(), trigger, after)
        if settings.in_conversation:
            self.active = run
        else:
            self.out_of_band[run.id] = run
        self.trace.record("response", self.session_id, response_id=run.id, number=self.responses_started,
                          after=after, answer=type(answer).__name__, faults=[f.describe() for f in run.faults])
        run.start()
        return run

    def _plan_answer(self, settings: Any) -> Any:
        items = self.conversation.items
        if items and items[-1].type == "function_call_output":
            return spoken_answer(self.cfg.reply_text, self.cfg.ms_per_char, None,
                                 tool_output_text(items[-1].output or ""), self.rng, self.voice.clip_count)
        transcript = self.turns.last_transcript
        tool = wants_tool(self.cfg.function_call, settings.tools, settings.tool_choice, transcript,
                          self.responses_started)
        if tool is not None:
            return ToolCall(tool["name"], tool_arguments(self.cfg.function_call, tool, transcript))
        return spoken_answer(self.cfg.reply_text, self.cfg.ms_per_char, transcript, None, self.rng,
                             self.voice.clip_count)

    def cancel_response(self, run: ResponseRun, reason: str, trigger: int | Outgoing) -> None:
        """Stop `run` now; its .done events and response.done (cancelled) are due cancel_ack later."""
        run.stop()
        self.outbox.drop(run.id)
        if run.created is None or run.created.sent_ns is None:
            # the client never saw this response: it simply does not happen
            self.trace.record("response_abandoned", self.session_id, response_id=run.id, reason=reason)
            run.finished = True
            self.response_finished(run)
            return
        delay = self.latency.delay_ns("cancel_ack")
        outs = run.closing_events("cancelled", {"type": "cancelled", "reason": reason}, None, (trigger, delay))
        for out in outs:
            self.outbox.put(out)

    def response_finished(self, run: ResponseRun) -> None:
        if self.active is run:
            self.active = None
        self.out_of_band.pop(run.id, None)
        if any(i.audio_ms > 0 for i in run.output):
            self.assistant_audio_present = True
        self.turns.response_finished()

    def false_vad_trigger(self) -> None:
        """Fault: the VAD "hears" speech in silent input and barges in on the active response."""
        self.turns.false_start()


_WIRE_NAMES: dict[tuple[Kind, Dialect], str] = {}


def _id_param(fields: dict[str, Any], key: str, required: bool = True) -> Any:
    value = fields.get(key)
    if value is None and required:
        raise ProtocolValueError("missing_required_parameter", key, f"Missing required parameter: '{key}'.")
    if value is not None and not isinstance(value, str):
        raise ProtocolValueError("invalid_type", key,
                                 f"Invalid type for '{key}': expected a string, but got {type(value).__name__}.")
    return value


def _client_names(dialect: Dialect) -> set[str]:
    return {name for spec in CATALOGUE if spec.side == CLIENT for name in [spec.wire_name(dialect)] if name}


_HANDLERS = {
    K.SESSION_UPDATE: Session._session_update,
    K.INPUT_AUDIO_APPEND: Session._append,
    K.INPUT_AUDIO_COMMIT: Session._commit,
    K.INPUT_AUDIO_CLEAR: Session._clear,
    K.ITEM_CREATE: Session._item_create,
    K.ITEM_TRUNCATE: Session._item_truncate,
    K.ITEM_DELETE: Session._item_delete,
    K.ITEM_RETRIEVE: Session._item_retrieve,
    K.RESPONSE_CREATE: Session._response_create,
    K.RESPONSE_CANCEL: Session._response_cancel,
    K.OUTPUT_AUDIO_BUFFER_CLEAR: Session._output_clear,
}
