"""What one connection's server said about its responses, kept once for the caller and the metrics.

`ResponseLog.observe(t_ns, kind, fields)` folds one received server event (its neutral kind and
its fields as the trace keeps them: an audio delta's `delta` is `{"bytes", "ms"}`, not audio)
into a table of `ResponseFacts` keyed by response id, plus the turn-detection settings the
server acknowledged. The caller's live session reads the same table the metrics build when they
replay a trace, so the two can never hold different views of a response.

Every response-scoped event is matched by its `response_id` (or the `response.id` of
`response.created`/`response.done`), never by order; a server `error` of type `server_error`
is charged to the newest response not yet done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from harness.protocol.catalogue import Kind


@dataclass
class ResponseFacts:
    """What the caller saw of one response."""

    id: str
    created_ns: int | None = None
    done_ns: int | None = None
    status: str | None = None
    reason: str | None = None
    first_audio_ns: int | None = None
    first_item_id: str | None = None     # item of the first audio delta (what a truncate names)
    audio_ms: float = 0.0
    # what the caller would hear (from the receiver's per-delta levels): the arrival of the delta
    # holding the first audible sample, that sample's position in the response's audio, the
    # loudest peak of the deltas checked, and the zero-crossing rate of the first audible delta
    first_audible_ns: int | None = None
    leading_silence_ms: float | None = None
    peak: int | None = None
    crossing_rate: float | None = None
    delta_times_ns: list[int] = field(default_factory=list)
    delta_ms: list[float] = field(default_factory=list)
    audio_done_ns: int | None = None
    transcript_parts: list[str] = field(default_factory=list)
    transcript: str | None = None
    function_args_done_ns: int | None = None
    function_calls: list[dict[str, Any]] = field(default_factory=list)   # args-done fields + received_ns
    item_ids: list[str] = field(default_factory=list)
    server_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.done_ns is not None

    @property
    def audio_over(self) -> bool:
        """No more audio will come: its audio.done or its response.done was seen."""
        return self.audio_done_ns is not None or self.done_ns is not None

    @property
    def text(self) -> str:
        return self.transcript if self.transcript is not None else "".join(self.transcript_parts)

    @property
    def function_call_ids(self) -> list[str]:
        return [str(call.get("call_id")) for call in self.function_calls]


def status_reason(response: dict[str, Any]) -> str | None:
    """`status_details.reason`, else the code (or type) of `status_details.error`."""
    details = response.get("status_details") or {}
    if not isinstance(details, dict):
        return None
    if details.get("reason"):
        return str(details["reason"])
    error = details.get("error") or {}
    return str(error.get("code") or error.get("type")) if isinstance(error, dict) and error else None


def turn_detection_of(session: Any) -> dict[str, Any] | None:
    """The turn_detection object of a session object of either dialect (GA nests it in audio.input)."""
    if not isinstance(session, dict):
        return None
    audio = session.get("audio")
    if isinstance(audio, dict):
        td = (audio.get("input") or {}).get("turn_detection")
    else:
        td = session.get("turn_detection")
    return td if isinstance(td, dict) else None


def _delta_ms(fields: dict[str, Any]) -> float:
    delta = fields.get("delta")
    if isinstance(delta, dict):
        return float(delta.get("ms") or 0.0)
    return 0.0


class ResponseLog:
    """The responses of one connection, by id, in creation order."""

    def __init__(self) -> None:
        self.responses: dict[str, ResponseFacts] = {}
        self.order: list[str] = []
        self.turn_detection: dict[str, Any] | None = None

    def get(self, response_id: str | None) -> ResponseFacts | None:
        return self.responses.get(response_id) if response_id is not None else None

    def facts(self, response_id: Any) -> ResponseFacts | None:
        """The facts of `response_id`, created on first sight; None for a missing/odd id."""
        if not isinstance(response_id, str):
            return None
        found = self.responses.get(response_id)
        if found is None:
            found = self.responses[response_id] = ResponseFacts(id=response_id)
            self.order.append(response_id)
        return found

    def observe(self, t_ns: int, kind: str, fields: dict[str, Any]) -> ResponseFacts | None:
        """Fold one received event in; returns the response it concerned, if any."""
        handler = _HANDLERS.get(kind)
        if handler is None:
            return None
        return handler(self, t_ns, fields)


def _session(log: ResponseLog, t_ns: int, fields: dict[str, Any]) -> None:
    td = turn_detection_of(fields.get("session"))
    if td is not None:
        log.turn_detection = td
    return None


def _created(log: ResponseLog, t_ns: int, fields: dict[str, Any]) -> ResponseFacts | None:
    facts = log.facts((fields.get("response") or {}).get("id"))
    if facts is not None and facts.created_ns is None:
        facts.created_ns = t_ns
    return facts


def _done(log: ResponseLog, t_ns: int, fields: dict[str, Any]) -> ResponseFacts | None:
    response = fields.get("response") or {}
    facts = log.facts(response.get("id"))
    if facts is not None and facts.done_ns is None:
        facts.done_ns, facts.status, facts.reason = t_ns, response.get("status"), status_reason(response)
    return facts


def _error(log: ResponseLog, t_ns: int, fields: dict[str, Any]) -> ResponseFacts | None:
    error = fields.get("error") or {}
    if not isinstance(error, dict) or error.get("type") != "server_error":
        return None
    for rid in reversed(log.order):
        facts = log.responses[rid]
        if facts.done_ns is None:
            facts.server_errors.append({"t_ns": t_ns, "code": error.get("code"), "message": error.get("message")})
            return facts
    return None


def _audio_delta(log: ResponseLog, t_ns: int, fields: dict[str, Any]) -> ResponseFacts | None:
    facts = log.facts(fields.get("response_id"))
    if facts is None:
        return None
    ms = _delta_ms(fields)
    delta = fields.get("delta")
    if isinstance(delta, dict):
        peak = delta.get("peak")
        if isinstance(peak, int):
            facts.peak = peak if facts.peak is None else max(facts.peak, peak)
        audible_at = delta.get("audible_at_ms")
        if facts.first_audible_ns is None and isinstance(audible_at, (int, float)):
            facts.first_audible_ns = t_ns
            facts.leading_silence_ms = facts.audio_ms + float(audible_at)
            rate = delta.get("crossing_rate")
            facts.crossing_rate = float(rate) if isinstance(rate, (int, float)) else None
    if facts.first_audio_ns is None:
        facts.first_audio_ns = t_ns
        item_id = fields.get("item_id")
        facts.first_item_id = item_id if isinstance(item_id, str) else None
    facts.delta_times_ns.append(t_ns)
    facts.delta_ms.append(ms)
    facts.audio_ms += ms
    return facts


def _scoped(update: Callable[[ResponseFacts, int, dict[str, Any]], None]) -> Callable[..., ResponseFacts | None]:
    def handle(log: ResponseLog, t_ns: int, fields: dict[str, Any]) -> ResponseFacts | None:
        facts = log.facts(fields.get("response_id"))
        if facts is not None:
            update(facts, t_ns, fields)
        return facts
    return handle


def _audio_done(facts: ResponseFacts, t_ns: int, fields: dict[str, Any]) -> None:
    if facts.audio_done_ns is None:
        facts.audio_done_ns = t_ns


def _transcript_delta(facts: ResponseFacts, t_ns: int, fields: dict[str, Any]) -> None:
    facts.transcript_parts.append(str(fields.get("delta") or ""))


def _transcript_done(facts: ResponseFacts, t_ns: int, fields: dict[str, Any]) -> None:
    facts.transcript = str(fields.get("transcript") or fields.get("text") or "")


def _args_done(facts: ResponseFacts, t_ns: int, fields: dict[str, Any]) -> None:
    if facts.function_args_done_ns is None:
        facts.function_args_done_ns = t_ns
    facts.function_calls.append({**fields, "received_ns": t_ns})


def _item_added(facts: ResponseFacts, t_ns: int, fields: dict[str, Any]) -> None:
    item = fields.get("item") or {}
    if isinstance(item, dict) and item.get("id"):
        facts.item_ids.append(str(item["id"]))


# neutral kind -> what it does to the table (rules as a table, as in h11)
_HANDLERS: dict[str, Callable[[ResponseLog, int, dict[str, Any]], ResponseFacts | None]] = {
    Kind.SESSION_CREATED.value: _session,
    Kind.SESSION_UPDATED.value: _session,
    Kind.RESPONSE_CREATED.value: _created,
    Kind.RESPONSE_DONE.value: _done,
    Kind.ERROR.value: _error,
    Kind.OUTPUT_AUDIO_DELTA.value: _audio_delta,
    Kind.OUTPUT_AUDIO_DONE.value: _scoped(_audio_done),
    Kind.OUTPUT_TRANSCRIPT_DELTA.value: _scoped(_transcript_delta),
    Kind.OUTPUT_TEXT_DELTA.value: _scoped(_transcript_delta),
    Kind.OUTPUT_TRANSCRIPT_DONE.value: _scoped(_transcript_done),
    Kind.OUTPUT_TEXT_DONE.value: _scoped(_transcript_done),
    Kind.FUNCTION_CALL_ARGUMENTS_DONE.value: _scoped(_args_done),
    Kind.OUTPUT_ITEM_ADDED.value: _scoped(_item_added),
}
