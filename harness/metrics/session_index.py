"""One pass over a session trace: responses by id, marks by turn, appends, speech events.

Everything the turn and incident computations need is gathered here once, keyed by ids
(response id, item id, turn number), so that interleaved responses, items and async
transcription events are matched by identity rather than by order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.trace import Trace

NS_PER_MS = 1_000_000


@dataclass
class ResponseFacts:
    """What the caller saw of one response."""

    id: str
    created_ns: int | None = None
    done_ns: int | None = None
    status: str | None = None
    reason: str | None = None
    first_audio_ns: int | None = None
    audio_ms: float = 0.0
    delta_times_ns: list[int] = field(default_factory=list)
    delta_ms: list[float] = field(default_factory=list)
    audio_done_ns: int | None = None
    transcript_parts: list[str] = field(default_factory=list)
    transcript: str | None = None
    function_args_done_ns: int | None = None
    function_call_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    server_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.transcript if self.transcript is not None else "".join(self.transcript_parts)


def _reason(response: dict[str, Any]) -> str | None:
    details = response.get("status_details") or {}
    if not isinstance(details, dict):
        return None
    if details.get("reason"):
        return str(details["reason"])
    error = details.get("error") or {}
    return str(error.get("code") or error.get("type")) if isinstance(error, dict) and error else None


@dataclass
class SessionIndex:
    trace: Trace
    responses: dict[str, ResponseFacts] = field(default_factory=dict)
    response_order: list[str] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    recvs: list[dict[str, Any]] = field(default_factory=list)
    appends: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    silence_duration_ms: float | None = None
    prefix_padding_ms: float | None = None
    close_ns: int | None = None

    def marks_named(self, name: str, turn: int | None = None) -> list[dict[str, Any]]:
        return [m for m in self.marks if m.get("mark") == name and (turn is None or m.get("turn") == turn)]

    def first_mark(self, name: str, turn: int) -> dict[str, Any] | None:
        found = self.marks_named(name, turn)
        return found[0] if found else None

    def recv_after(self, kind: str, t_ns: int, until_ns: int | None = None) -> list[dict[str, Any]]:
        return [r for r in self.recvs if r.get("kind") == kind and r["t_ns"] >= t_ns
                and (until_ns is None or r["t_ns"] < until_ns)]

    def speech_at(self, input_ms: float, window_ms: float) -> bool | None:
        """Was the caller sending corpus speech in input-audio time [input_ms, input_ms + window_ms]?"""
        seen = False
        for append in self.appends:
            start = append.get("input_ms")
            if start is None:
                continue
            end = start + (append.get("audio_ms") or 0.0)
            if end < input_ms or start > input_ms + window_ms:
                continue
            seen = True
            if append.get("speech"):
                return True
        return False if seen else None


def _turn_detection(session: Any) -> dict[str, Any] | None:
    if not isinstance(session, dict):
        return None
    audio = session.get("audio")
    if isinstance(audio, dict):
        td = (audio.get("input") or {}).get("turn_detection")
    else:
        td = session.get("turn_detection")
    return td if isinstance(td, dict) else None


def index_session(trace: Trace) -> SessionIndex:
    index = SessionIndex(trace=trace)
    td = _turn_detection(trace.header.get("session_config"))
    for record in trace.records:
        kind = record.get("rec")
        if kind == "mark":
            index.marks.append(record)
            if record.get("mark") == "close" and index.close_ns is None:
                index.close_ns = record["t_ns"]
        elif kind == "append":
            index.appends.append(record)
        elif kind == "violation":
            index.violations.append(record)
        elif kind == "recv":
            index.recvs.append(record)
            td = _account(index, record) or td
    if td is not None:
        index.silence_duration_ms = td.get("silence_duration_ms")
        index.prefix_padding_ms = td.get("prefix_padding_ms")
    return index


def _response(index: SessionIndex, rid: Any) -> ResponseFacts | None:
    if not isinstance(rid, str):
        return None
    facts = index.responses.get(rid)
    if facts is None:
        facts = index.responses[rid] = ResponseFacts(id=rid)
        index.response_order.append(rid)
    return facts


def _account(index: SessionIndex, record: dict[str, Any]) -> dict[str, Any] | None:
    """Fold one received event into the response table; returns a newer turn_detection if any."""
    kind, t_ns = record.get("kind"), record["t_ns"]
    event = record.get("event") or {}
    if kind in ("session_created", "session_updated"):
        return _turn_detection(event.get("session"))
    if kind in ("response_created", "response_done"):
        response = event.get("response") or {}
        facts = _response(index, response.get("id"))
        if facts is None:
            return None
        if kind == "response_created":
            facts.created_ns = facts.created_ns or t_ns
        elif facts.done_ns is None:
            facts.done_ns, facts.status, facts.reason = t_ns, response.get("status"), _reason(response)
        return None
    if kind == "error":
        error = event.get("error") or {}
        if isinstance(error, dict) and error.get("type") == "server_error":
            for rid in reversed(index.response_order):
                facts = index.responses[rid]
                if facts.done_ns is None:
                    facts.server_errors.append({"t_ns": t_ns, "code": error.get("code"),
                                                "message": error.get("message")})
                    break
        return None
    facts = _response(index, event.get("response_id"))
    if facts is None:
        return None
    if kind == "output_audio_delta":
        delta = event.get("delta") or {}
        ms = float(delta.get("ms") or 0.0) if isinstance(delta, dict) else 0.0
        facts.first_audio_ns = facts.first_audio_ns or t_ns
        facts.delta_times_ns.append(t_ns)
        facts.delta_ms.append(ms)
        facts.audio_ms += ms
    elif kind == "output_audio_done":
        facts.audio_done_ns = facts.audio_done_ns or t_ns
    elif kind == "output_transcript_delta":
        facts.transcript_parts.append(str(event.get("delta") or ""))
    elif kind in ("output_transcript_done", "output_text_done"):
        facts.transcript = str(event.get("transcript") or event.get("text") or "")
    elif kind == "output_text_delta":
        facts.transcript_parts.append(str(event.get("delta") or ""))
    elif kind == "function_call_arguments_done":
        facts.function_args_done_ns = facts.function_args_done_ns or t_ns
        facts.function_call_ids.append(str(event.get("call_id")))
    elif kind == "output_item_added":
        item = event.get("item") or {}
        if isinstance(item, dict) and item.get("id"):
            facts.item_ids.append(str(item["id"]))
    return None
