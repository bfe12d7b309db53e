"""One response from `response.created` to `response.done`: the event sequence (a)/(e) of the
protocol reference in the session's dialect, paced on deadlines, with the configured faults.

The deltas are one generic stream (audio with transcript deltas, text deltas, or function-call
argument deltas); the first is due `first_audio` after `response.created` was sent and each next
one `delta_gap` after the previous (or `rtf` x its audio duration while `slow_audio` is active).
A fault fires just before delta number `after_deltas` (clamped to the last delta); a shape fault
(text only, silent audio, another format, leading silence) shapes the whole response instead.
Cancellation (client cancel, barge-in, false VAD) is driven by the session through `closing_events`.

A response is a chain of steps, not a task: each delta is built when the one before it has been
sent (its `on_sent`), so the latency draws come in the order the stages happen and a cancel (which
drops the response's queued frames) leaves nothing to run. Audio deltas carry base64 that the
voice encoded once per format and chunk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import replace
from functools import partial

import orjson
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.protocol import AudioFormat, Dialect, Kind
from harness.protocol.server_errors import SERVER_ERROR, error_message
from harness.sim.answers import SpokenAnswer, ToolCall
from harness.sim.conversation import Item, render
from harness.sim.faults import SHAPE_FAULTS, Fault, ResponseShape
from harness.sim.outbox import OutboxFull, Outgoing

if TYPE_CHECKING:
    from harness.sim.session import Session

K = Kind
log = logging.getLogger("harness.sim")
RATE_LIMITS = [
    {"name": "requests", "limit": 20000, "remaining": 19999, "reset_seconds": 0.003},
    {"name": "tokens", "limit": 15000000, "remaining": 14995000, "reset_seconds": 0.02},
]


@dataclass
class ResponseSettings:
    """The effective settings of one response (session config plus response.create overrides)."""

    audio: bool = True
    output_format: AudioFormat = AudioFormat.PCM16
    voice: str = "marin"
    max_output_tokens: int | str = "inf"
    instructions: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    in_conversation: bool = True
    metadata: dict[str, Any] | None = None
    temperature: float = 0.8


def _split_text(text: str, pieces: int) -> list[str]:
    """`text` cut into `pieces` consecutive slices at word boundaries where possible."""
    if pieces <= 1:
        return [text]
    words = text.split(" ")
    out, start = [], 0
    for i in range(1, pieces + 1):
        end = round(len(words) * i / pieces)
        chunk = " ".join(words[start:end])
        out.append(chunk if start == 0 or not chunk else " " + chunk)
        start = end
    return out


class ResponseRun:
    """Streams one response; the session owns it while it is active."""

    def __init__(self, session: Session, settings: ResponseSettings, answer: SpokenAnswer | ToolCall,
                 faults: list[Fault], trigger: int | Outgoing, stage_trigger: str) -> None:
        self.s = session
        self.id = session.ids.response()
        self._shapes = [f for f in faults if f.kind in SHAPE_FAULTS]
        self.shape = ResponseShape.of(self._shapes, settings.output_format)
        self.settings = replace(settings, audio=False) if self.shape.text_only else settings
        self.answer = answer
        self.faults = [f for f in faults if f.kind not in SHAPE_FAULTS]
        self._wire_format = self.shape.wire_format or settings.output_format
        self._lead_bytes = 0
        self.trigger = trigger
        self.stage_trigger = stage_trigger
        self.output: list[Item] = []
        self.item: Item | None = None
        self.part_open = False
        self.stream_open = False  # deltas started and their .done not sent yet
        self.text_sent = ""
        self.deltas_sent = 0
        self.finished = False  # response.done queued
        self.stopped = False  # no further step runs
        self.created: Outgoing | None = None
        self.first_delay_ns = 0
        self._chunks: list[tuple[int, int]] = []  # (start byte, length) of each delta's audio
        self._texts: list[str] = []
        self._full_text = ""
        self._index = 0
        self._slow_rtf: float | None = None
        self._extra_ns = 0

    # ---- rendering
    def response_object(self, status: str, details: dict[str, Any] | None, with_usage: bool) -> dict[str, Any]:
        st = self.settings
        obj: dict[str, Any] = {
            "object": "realtime.response", "id": self.id, "status": status, "status_details": details,
            "output": [render(i, self.s.dialect) for i in self.output],
            "conversation_id": self.s.conversation_id if st.in_conversation else None,
            "usage": self._usage() if with_usage else None, "metadata": st.metadata,
        }
        modalities = ["audio"] if st.audio else ["text"]
        if self.s.dialect is Dialect.GA:
            obj.update(output_modalities=modalities, max_output_tokens=st.max_output_tokens,
                       audio={"output": {"format": st.output_format.render(Dialect.GA), "voice": st.voice}})
        else:
            obj.update(modalities=["text", "audio"] if st.audio else ["text"], voice=st.voice,
                       output_audio_format=st.output_format.value, temperature=st.temperature,
                       max_output_tokens=st.max_output_tokens)
        return obj

    def _usage(self) -> dict[str, Any]:
        # a response cancelled before any output reports zero usage, as the service does
        in_audio = int(self.s.input_audio_ms_total / 100) if self.output else 0
        in_text = len(self.settings.instructions) // 4 + 4 if self.output else 0
        out_audio = sum(int(i.audio_ms / 50) for i in self.output)
        out_text = len(self.text_sent) // 4 + (1 if self.text_sent else 0)
        return {
            "total_tokens": in_audio + in_text + out_audio + out_text, "input_tokens": in_audio + in_text,
            "output_tokens": out_audio + out_text,
            "input_token_details": {"text_tokens": in_text, "audio_tokens": in_audio, "image_tokens": 0,
                                    "cached_tokens": 0,
                                    "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    # ---- sending
    def _out(self, kind: Kind, stage: str | None = None, trigger: int | Outgoing | None = None,
             delay_ns: int | None = None, **fields: Any) -> Outgoing:
        delay = delay_ns if delay_ns is not None else self.s.latency.delay_ns(stage) if stage else 0
        return Outgoing(event=self.s.event(kind, **fields), stage=stage, trigger=trigger, delay_ns=delay,
                        response_id=self.id)

    def _emit(self, kind: Kind, **fields: Any) -> Outgoing:
        """Queue an event that is due once the frames before it in the response's lane have gone."""
        return self.s.outbox.put(self._out(kind, **fields))

    def _ids(self) -> dict[str, Any]:
        assert self.item is not None
        return {"response_id": self.id, "item_id": self.item.id, "output_index": len(self.output) - 1}

    # ---- the run: each step is queued when the frame before it has been sent (its on_sent), so
    # there is no task and no wait per delta; a cancel drops what is queued and nothing follows
    def start(self) -> None:
        self._guard(self._begin)

    def stop(self) -> None:
        """No further step runs (cancel, barge-in, the session ending)."""
        self.stopped = True

    def _guard(self, step: Any, *args: Any) -> None:
        """Run one step; a bug ends this response (failed), a client that does not read ends the socket."""
        if self.stopped:
            return
        try:
            step(*args)
        except OutboxFull:
            self.stopped = True
            self.s.outbox.close()
            asyncio.ensure_future(self.s.ws.close(1008, "client is not reading its events"))
        except Exception as exc:  # noqa: BLE001 - a bug here must end this response, not the server
            self.stopped = True
            log.exception("harness sim: response %s failed", self.id)
            self.s.trace.record("internal_error", self.s.session_id, response_id=self.id, error=repr(exc))
            if not self.finished and not self.s.outbox.closed:
                self.s.send_error(None, error_message("server_error"), type_=SERVER_ERROR)
                details = {"type": "failed", "error": {"type": "server_error", "code": None}}
                for out in self.closing_events("failed", details, None, None):
                    self.s.outbox.put(out)

    def _then(self, out: Outgoing, step: Any, *args: Any) -> Outgoing:
        """`step(*args)` runs once `out` has been sent."""
        out.on_sent = partial(self._guard, step, *args)
        return out

    def _begin(self) -> None:
        for shape in self._shapes:
            self.s.trace.record("fault", self.s.session_id, kind=shape.kind, response_id=self.id, after_deltas=0,
                                params=dict(shape.params))
        self.created = self._out(K.RESPONSE_CREATED, stage="response_start", trigger=self.trigger,
                                 response=self.response_object("in_progress", None, False))
        self.created.note["after"] = self.stage_trigger
        # output appears when generation produces it: the item and part events share the first delta's deadline
        self.first_delay_ns = self.s.latency.delay_ns("first_audio")
        self.s.outbox.put(self.created)
        self._emit(K.RATE_LIMITS_UPDATED, rate_limits=RATE_LIMITS)
        if isinstance(self.answer, ToolCall):
            item = Item(self.s.ids.item(), "function_call", status="in_progress", call_id=self.s.ids.call(),
                        name=self.answer.name, arguments="")
        else:
            part_type = "audio" if self.settings.audio else "text"
            item = Item(self.s.ids.item(), "message", role="assistant", status="in_progress",
                        parts=[{"type": part_type, "transcript": ""} if self.settings.audio
                               else {"type": "text", "text": ""}])
        added = self._out(K.OUTPUT_ITEM_ADDED, None, self.created, self.first_delay_ns, response_id=self.id,
                          output_index=len(self.output), item=render(item, self.s.dialect))
        self.s.outbox.put(self._then(added, self._item_opened, item))

    def _item_opened(self, item: Item) -> None:
        # from here on the client knows the item (a cancel closes it)
        self.output.append(item)
        self.item = item
        previous = None
        if self.settings.in_conversation:
            previous = self.s.conversation.add(item)
            self._emit(K.ITEM_ADDED, previous_item_id=previous, item=render(item, self.s.dialect))
        if isinstance(self.answer, ToolCall):
            self._plan_tool_call(self.answer)
        else:
            self._plan_message(self.answer, item)
            if self.settings.audio:
                self._templates()
        self.stream_open = True
        self._step(None)

    def _templates(self) -> None:
        """Audio and transcript deltas as byte templates: the same JSON `dumps` gives for their
        objects (ids are alphanumeric; a transcript piece is JSON-encoded), without building them."""
        ids = self._ids()
        tail = (f'","response_id":"{ids["response_id"]}","item_id":"{ids["item_id"]}",'
                f'"output_index":{ids["output_index"]},"content_index":0,"delta":').encode()
        self._audio_name = self.s.wire_name(K.OUTPUT_AUDIO_DELTA)
        self._transcript_name = self.s.wire_name(K.OUTPUT_TRANSCRIPT_DELTA)
        self._audio_head = b'{"type":"' + self._audio_name.encode() + b'","event_id":"'
        self._transcript_head = b'{"type":"' + self._transcript_name.encode() + b'","event_id":"'
        self._tail = tail

    def _plan_message(self, answer: SpokenAnswer, item: Item) -> None:
        st = self.settings
        item.parts = []  # content is announced by content_part.added
        part = {"type": "audio", "transcript": ""} if st.audio else {"type": "text", "text": ""}
        self._emit(K.CONTENT_PART_ADDED, **self._ids(), content_index=0, part=dict(part))
        item.parts = [part]
        self.part_open = True
        if st.audio:
            fmt = self._wire_format
            self._lead_bytes = int(self.shape.lead_ms * fmt.rate_hz / 1000) * fmt.bytes_per_sample
            total = int(answer.audio_ms * fmt.rate_hz / 1000) * fmt.bytes_per_sample + self._lead_bytes
            step = int(self.s.cfg.delta_ms * fmt.rate_hz / 1000) * fmt.bytes_per_sample
            self._chunks = [(i, min(step, total - i)) for i in range(0, total, step)] or [(0, 0)]
        else:
            self._chunks = [(0, 0)] * max(1, math.ceil(answer.audio_ms / self.s.cfg.delta_ms))
        self._texts = _split_text(answer.text, len(self._chunks))
        self._full_text = answer.text

    def _plan_tool_call(self, call: ToolCall) -> None:
        pieces = max(1, min(4, math.ceil(len(call.arguments) / 16)))
        size = math.ceil(len(call.arguments) / pieces) or 1
        self._texts = [call.arguments[i:i + size] for i in range(0, len(call.arguments), size)] or [""]
        self._chunks = [(0, 0)] * len(self._texts)
        self._full_text = call.arguments

    def _step(self, previous: Outgoing | None) -> None:
        """Fire the faults due before delta `self._index`, then queue that delta (or finish)."""
        index = self._index
        if index >= len(self._chunks):
            self.close_open("completed", None, self._full_text)
            return
        last = len(self._chunks) - 1
        for fault in self.faults:
            if min(fault.after_deltas, last) != index:
                continue
            outcome = self._fire(fault, self._full_text)
            if outcome == "stop":
                return
            if outcome == "slow":
                self._slow_rtf = fault.number("rtf")
            if outcome == "stall":
                self._extra_ns += int(fault.number("ms") * 1e6)
        self._send_delta(index, previous)

    def _send_delta(self, index: int, previous: Outgoing | None) -> None:
        assert self.item is not None and self.created is not None
        start, length = self._chunks[index]
        text = self._texts[index]
        stage, trigger = ("first_audio", self.created) if previous is None else ("delta_gap", previous)
        delay = self.first_delay_ns if previous is None else None
        item, fmt = self.item, self._wire_format
        chunk_ms = fmt.duration_ms(length) if length else 0.0
        if item.type == "function_call":
            out = self._out(K.FUNCTION_CALL_ARGUMENTS_DELTA, stage, trigger, delay, **self._ids(),
                            call_id=item.call_id, delta=text)
        elif self.settings.audio:
            answer = self.answer
            assert isinstance(answer, SpokenAnswer)
            eid = self.s.ids.event()
            if self._lead_bytes or self.shape.peak_dbfs is not None:
                audio = self.s.voice.shaped_base64(fmt, answer.clip, start, length, self._lead_bytes,
                                                   self.shape.peak_dbfs)
            else:
                audio = self.s.voice.delta_base64(fmt, answer.clip, start, length)
            payload = b"".join((self._audio_head, eid.encode(), self._tail, b'"', audio, b'"}'))
            out = Outgoing(payload=payload, kind=self._audio_name, eid=eid, stage=stage, trigger=trigger,
                           delay_ns=delay if delay is not None else self.s.latency.delay_ns(stage),
                           response_id=self.id, note={"audio_ms": chunk_ms})
        else:
            out = self._out(K.OUTPUT_TEXT_DELTA, stage, trigger, delay, **self._ids(), content_index=0, delta=text)
        slow_rtf, extra_ns = self._slow_rtf, self._extra_ns
        if slow_rtf is not None and previous is not None:
            out.delay_ns = int(slow_rtf * chunk_ms * 1e6)
            out.note["slow_audio_rtf"] = slow_rtf
        out.delay_ns += extra_ns
        if extra_ns:
            out.note["stall_ns"] = extra_ns
        self._extra_ns = 0
        self.s.outbox.put(self._then(out, self._delta_sent, out, text, chunk_ms))
        if item.type == "message" and self.settings.audio:
            # its transcript piece follows it at once (due when it is sent: the same write)
            eid = self.s.ids.event()
            transcript = Outgoing(payload=b"".join((self._transcript_head, eid.encode(), self._tail, _json_text(text),
                                                    b"}")), kind=self._transcript_name, eid=eid, trigger=out,
                                  response_id=self.id)
            transcript.on_sent = partial(self._transcript_sent, text)
            self.s.outbox.put(transcript)

    def _transcript_sent(self, text: str) -> None:
        self.text_sent += text

    def _delta_sent(self, out: Outgoing, text: str, chunk_ms: float) -> None:
        item = self.item
        assert item is not None
        self.deltas_sent += 1
        item.audio_ms += chunk_ms
        if item.type == "function_call":
            item.arguments = (item.arguments or "") + text
        elif not self.settings.audio:
            self.text_sent += text
        self._index += 1
        self._step(out)

    def _fire(self, fault: Fault, full_text: str) -> str:
        """Apply one fault; returns "stop" (the response ends here), "slow", "stall" or "go"."""
        self.s.trace.record("fault", self.s.session_id, kind=fault.kind, response_id=self.id,
                            after_deltas=self.deltas_sent, params=dict(fault.params))
        kind = fault.kind
        if kind == "drop_socket":
            self.s.outbox.put(Outgoing(action=self.s.abort_socket, response_id=self.id, note={"fault": kind}))
            return "stop"
        if kind == "close":
            code = int(fault.number("code"))
            self.s.outbox.put(Outgoing(action=lambda: self.s.close_socket(code), response_id=self.id,
                                              note={"fault": kind, "code": code}))
            return "stop"
        if kind == "malformed_json":
            self.s.outbox.put(Outgoing(raw='{"type": "response.output_audio.delta", "delta": "AAAA',
                                              response_id=self.id, note={"fault": kind}))
            return "go"
        if kind == "unknown_event":
            # a future or vendor event: a caller must record it and carry on
            self.s.outbox.put(Outgoing(raw=json.dumps({"type": "response.vendor_extension.delta",
                                                              "event_id": f"event_x{self.deltas_sent}",
                                                              "response_id": self.id, "delta": {"note": "x"}}),
                                              response_id=self.id, note={"fault": kind}))
            return "go"
        if kind == "error_no_done":
            # the target reports an error for this response and then forgets it: no response.done
            self.s.outbox.put(Outgoing(event=self.s.error_event(
                SERVER_ERROR, fault.text("code"), error_message("server_error"), None, None),
                response_id=self.id, note={"fault": kind}))
            self.stopped = self.finished = True
            self.stream_open = self.part_open = False
            self.s.response_finished(self)
            return "stop"
        if kind in ("error_event", "failed"):
            self.s.outbox.put(Outgoing(event=self.s.error_event(
                SERVER_ERROR, fault.text("code"), error_message("server_error"), None, None),
                response_id=self.id, note={"fault": kind}))
            if kind == "error_event":
                return "go"
            details = {"type": "failed", "error": {"type": "server_error", "code": fault.text("code")}}
            self.close_open("failed", details, None)
            return "stop"
        if kind == "incomplete":
            details = {"type": "incomplete", "reason": fault.text("reason")}
            self.close_open("incomplete", details, None)
            return "stop"
        if kind == "cut_audio":
            self.close_open("completed", None, full_text)
            return "stop"
        if kind == "false_vad":
            self.s.false_vad_trigger()
            return "stop"
        return "slow" if kind == "slow_audio" else "stall" if kind == "stall" else "go"

    def closing_events(self, status: str, details: dict[str, Any] | None, final_text: str | None,
                       target: tuple[int | Outgoing, int] | None) -> list[Outgoing]:
        """The .done events for whatever is open, then response.done; all due at `target` if given.

        `final_text` is the text the .done events carry (None: what was sent so far). An item that
        did not complete is marked incomplete.
        """
        outs: list[Outgoing] = []
        item = self.item
        text = self.text_sent if final_text is None else final_text
        item_status = "completed" if status == "completed" else "incomplete"
        if item is not None and self.stream_open:
            ids = self._ids()
            if item.type == "function_call":
                item.arguments = text
                outs.append(self._out(K.FUNCTION_CALL_ARGUMENTS_DONE, **ids, call_id=item.call_id, name=item.name,
                                      arguments=text))
            elif self.settings.audio:
                outs.append(self._out(K.OUTPUT_AUDIO_DONE, **ids, content_index=0))
                outs.append(self._out(K.OUTPUT_TRANSCRIPT_DONE, **ids, content_index=0, transcript=text))
            else:
                outs.append(self._out(K.OUTPUT_TEXT_DONE, **ids, content_index=0, text=text))
        if item is not None and self.part_open:
            part = {"type": "audio", "transcript": text} if self.settings.audio else {"type": "text", "text": text}
            item.parts = [part]
            outs.append(self._out(K.CONTENT_PART_DONE, **self._ids(), content_index=0, part=dict(part)))
        if item is not None:
            item.status = item_status
            outs.append(self._out(K.OUTPUT_ITEM_DONE, response_id=self.id, output_index=len(self.output) - 1,
                                  item=render(item, self.s.dialect)))
            if self.settings.in_conversation and self.s.dialect is Dialect.GA:
                outs.append(self._out(K.ITEM_DONE, previous_item_id=self.s.conversation.previous_id(item.id),
                                      item=render(item, self.s.dialect)))
        done = self._out(K.RESPONSE_DONE, response=self.response_object(status, details, True))
        done.note.update(status=status, reason=(details or {}).get("reason"))
        outs.append(done)
        if target is not None:
            trigger, delay = target
            for out in outs:
                out.trigger, out.delay_ns = trigger, delay
            done.stage = "cancel_ack"
        self.stream_open = self.part_open = False
        self.finished = True
        self.s.response_finished(self)
        return outs

    def close_open(self, status: str, details: dict[str, Any] | None, final_text: str | None) -> None:
        """Finish the response from inside its own task (normal end, incomplete, failed, cut short)."""
        for out in self.closing_events(status, details, final_text, None):
            self.s.outbox.put(out)


def _json_text(text: str) -> bytes:
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError:  # a lone surrogate: json escapes it, as `dumps` does
        return json.dumps(text).encode("ascii")


def tool_output_text(output: str) -> str:
    """A short readable form of a function_call_output for the spoken follow-up."""
    try:
        value = json.loads(output)
    except ValueError:
        return output
    return json.dumps(value, separators=(", ", ": ")) if not isinstance(value, str) else value
