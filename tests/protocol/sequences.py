"""Normative server/client event sequences (a)-(e) of the protocol reference, for tests.

Each sequence is a list of (sent_by_client, Event) pairs with realistic payloads and ids that
reference each other, built with `make_event` so both dialects come from one description.
"""

from __future__ import annotations

from typing import Any

from harness.protocol import (
    AudioFormat,
    Dialect,
    Event,
    Kind,
    default_session_config,
    make_event,
    render_session_object,
    render_session_update,
)

Step = tuple[bool, Event]
_counter = iter(range(1, 1_000_000))


def _eid() -> str:
    return f"event_{next(_counter):021d}"


def _usage() -> dict[str, Any]:
    return {"total_tokens": 30, "input_tokens": 10, "output_tokens": 20,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 10, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 5, "audio_tokens": 15}}


def _response(dialect: Dialect, rid: str, status: str, output: list[dict[str, Any]],
              details: dict[str, Any] | None = None, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": rid, "object": "realtime.response", "status": status,
                            "status_details": details, "output": output, "metadata": None,
                            "usage": _usage() if usage else None, "conversation_id": "conv_0000000000000001"}
    if dialect is Dialect.GA:
        body.update({"output_modalities": ["audio"], "max_output_tokens": "inf",
                     "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}}})
    else:
        body.update({"modalities": ["text", "audio"], "voice": "alloy", "output_audio_format": "pcm16",
                     "temperature": 0.8, "max_output_tokens": "inf"})
    return body


def _assistant(dialect: Dialect, item_id: str, status: str, transcript: str | None) -> dict[str, Any]:
    part_type = "output_audio" if dialect is Dialect.GA else "audio"
    content = [] if transcript is None else [{"type": part_type, "transcript": transcript}]
    return {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
            "status": status, "content": content}


def _user(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}]}


def _s(kind: Kind, dialect: Dialect, **fields: Any) -> Step:
    return False, make_event(kind, dialect, event_id=_eid(), **fields)


def _c(kind: Kind, dialect: Dialect, **fields: Any) -> Step:
    return True, make_event(kind, dialect, **fields)


def _item_events(dialect: Dialect, item: dict[str, Any], previous: str | None) -> list[Step]:
    steps = [_s(Kind.ITEM_ADDED, dialect, previous_item_id=previous, item=item)]
    if dialect is Dialect.GA:
        steps.append(_s(Kind.ITEM_DONE, dialect, previous_item_id=previous, item=item))
    return steps


def opening(dialect: Dialect) -> list[Step]:
    cfg = default_session_config(dialect)
    session = render_session_object(cfg, dialect, "sess_0000000000000001", "gpt-realtime", 1_900_000_000)
    return [
        _s(Kind.SESSION_CREATED, dialect, session=session),
        _c(Kind.SESSION_UPDATE, dialect, session=render_session_update(cfg, dialect)),
        _s(Kind.SESSION_UPDATED, dialect, session=session),
    ]


def _audio_response(dialect: Dialect, rid: str, item_id: str, n_deltas: int = 3, finish: bool = True,
                    status: str = "completed", details: dict[str, Any] | None = None) -> list[Step]:
    r, i = dict(response_id=rid), dict(response_id=rid, item_id=item_id, output_index=0, content_index=0)
    part_type = "audio"
    steps: list[Step] = [
        _s(Kind.RESPONSE_CREATED, dialect, response=_response(dialect, rid, "in_progress", [], usage=False)),
        _s(Kind.RATE_LIMITS_UPDATED, dialect, rate_limits=[
            {"name": "requests", "limit": 20000, "remaining": 19999, "reset_seconds": 0.003},
            {"name": "tokens", "limit": 15000000, "remaining": 14995000, "reset_seconds": 0.02}]),
        _s(Kind.OUTPUT_ITEM_ADDED, dialect, **r, output_index=0, item=_assistant(dialect, item_id, "in_progress", None)),
        *_item_events(dialect, _assistant(dialect, item_id, "in_progress", None), None)[:1],
        _s(Kind.CONTENT_PART_ADDED, dialect, **i, part={"type": part_type, "transcript": ""}),
    ]
    for k in range(n_deltas):
        steps.append(_s(Kind.OUTPUT_AUDIO_DELTA, dialect, **i, delta="AAAAAA=="))
        steps.append(_s(Kind.OUTPUT_TRANSCRIPT_DELTA, dialect, **i, delta=f"word{k} "))
    transcript = "".join(f"word{k} " for k in range(n_deltas))
    item_status = "completed" if status == "completed" else "incomplete"
    done_item = _assistant(dialect, item_id, item_status, transcript)
    steps += [
        _s(Kind.OUTPUT_AUDIO_DONE, dialect, **i),
        _s(Kind.OUTPUT_TRANSCRIPT_DONE, dialect, **i, transcript=transcript),
        _s(Kind.CONTENT_PART_DONE, dialect, **i, part={"type": part_type, "transcript": transcript}),
        _s(Kind.OUTPUT_ITEM_DONE, dialect, **r, output_index=0, item=done_item),
    ]
    if dialect is Dialect.GA:
        steps.append(_s(Kind.ITEM_DONE, dialect, previous_item_id=None, item=done_item))
    if finish:
        steps.append(_s(Kind.RESPONSE_DONE, dialect, response=_response(dialect, rid, status, [done_item], details)))
    return steps


def _vad_turn(dialect: Dialect, user_id: str, previous: str | None, start_ms: int, end_ms: int) -> list[Step]:
    return [
        _c(Kind.INPUT_AUDIO_APPEND, dialect, audio="AAAA"),
        _s(Kind.SPEECH_STARTED, dialect, audio_start_ms=start_ms, item_id=user_id),
        _s(Kind.SPEECH_STOPPED, dialect, audio_end_ms=end_ms, item_id=user_id),
        _s(Kind.COMMITTED, dialect, item_id=user_id, previous_item_id=previous),
        *_item_events(dialect, _user(user_id), previous),
    ]


def vad_turn(dialect: Dialect) -> list[Step]:
    """(a) a server-VAD turn with its transcription landing after response.done."""
    return [*opening(dialect), *_vad_turn(dialect, "item_U1", None, 300, 1700),
            *_audio_response(dialect, "resp_R1", "item_A1"),
            _s(Kind.INPUT_TRANSCRIPTION_COMPLETED, dialect, item_id="item_U1", content_index=0,
               transcript="what time is it", usage={"type": "duration", "seconds": 2})]


def manual_turn(dialect: Dialect) -> list[Step]:
    """(b) manual commit (of 100 ms of pcm16, the least the service accepts) then response.create."""
    return [*opening(dialect), _c(Kind.INPUT_AUDIO_APPEND, dialect, audio="AAAA" * 1600),
            _c(Kind.INPUT_AUDIO_COMMIT, dialect),
            _s(Kind.COMMITTED, dialect, item_id="item_U1", previous_item_id=None),
            *_item_events(dialect, _user("item_U1"), None),
            _c(Kind.RESPONSE_CREATE, dialect), *_audio_response(dialect, "resp_R1", "item_A1")]


def barge_in(dialect: Dialect) -> list[Step]:
    """(c) speech starts while R is generating: cancelled with turn_detected, then truncate."""
    steps = [*opening(dialect), *_vad_turn(dialect, "item_U1", None, 300, 1700),
             *_audio_response(dialect, "resp_R1", "item_A1", status="cancelled",
                              details={"type": "cancelled", "reason": "turn_detected"})]
    # speech_started arrives before the cancelled part closes: move it ahead of the .done events
    done_at = next(i for i, (_, e) in enumerate(steps) if e.kind is Kind.OUTPUT_AUDIO_DONE)
    steps.insert(done_at, _s(Kind.SPEECH_STARTED, dialect, audio_start_ms=2900, item_id="item_U2"))
    steps += [_c(Kind.ITEM_TRUNCATE, dialect, item_id="item_A1", content_index=0, audio_end_ms=640),
              _s(Kind.ITEM_TRUNCATED, dialect, item_id="item_A1", content_index=0, audio_end_ms=640)]
    return steps


def client_cancel(dialect: Dialect) -> list[Step]:
    """(d) response.cancel mid-response, then a racing second cancel answered with an error."""
    steps = [*opening(dialect), *_vad_turn(dialect, "item_U1", None, 300, 1700)]
    body = _audio_response(dialect, "resp_R1", "item_A1", status="cancelled",
                           details={"type": "cancelled", "reason": "client_cancelled"})
    done_at = next(i for i, (_, e) in enumerate(body) if e.kind is Kind.OUTPUT_AUDIO_DONE)
    body.insert(done_at, _c(Kind.RESPONSE_CANCEL, dialect))
    steps += body
    steps.append(_s(Kind.ERROR, dialect, error={"type": "invalid_request_error", "code": "response_cancel_not_active",
                                                "message": "Cancellation failed: no active response found",
                                                "param": None, "event_id": None}))
    return steps


def function_call(dialect: Dialect) -> list[Step]:
    """(e) a function call, its output, and the follow-up response."""
    rid, fid = "resp_R1", "item_F1"
    call = {"id": fid, "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": "get_weather", "call_id": "call_K1", "arguments": ""}
    done_call = {**call, "status": "completed", "arguments": '{"city":"Paris"}'}
    r = dict(response_id=rid)
    return [
        *opening(dialect), *_vad_turn(dialect, "item_U1", None, 300, 1900),
        _s(Kind.RESPONSE_CREATED, dialect, response=_response(dialect, rid, "in_progress", [], usage=False)),
        _s(Kind.OUTPUT_ITEM_ADDED, dialect, **r, output_index=0, item=call),
        *_item_events(dialect, call, "item_U1")[:1],
        _s(Kind.FUNCTION_CALL_ARGUMENTS_DELTA, dialect, **r, item_id=fid, output_index=0, call_id="call_K1",
           delta='{"city":'),
        _s(Kind.FUNCTION_CALL_ARGUMENTS_DELTA, dialect, **r, item_id=fid, output_index=0, call_id="call_K1",
           delta='"Paris"}'),
        _s(Kind.FUNCTION_CALL_ARGUMENTS_DONE, dialect, **r, item_id=fid, output_index=0, call_id="call_K1",
           name="get_weather", arguments='{"city":"Paris"}'),
        _s(Kind.OUTPUT_ITEM_DONE, dialect, **r, output_index=0, item=done_call),
        _s(Kind.RESPONSE_DONE, dialect, response=_response(dialect, rid, "completed", [done_call])),
        _c(Kind.ITEM_CREATE, dialect, item={"type": "function_call_output", "call_id": "call_K1",
                                            "output": '{"temp_c":18}'}),
        *_item_events(dialect, {"id": "item_O1", "object": "realtime.item", "type": "function_call_output",
                                "call_id": "call_K1", "output": '{"temp_c":18}', "status": "completed"}, fid),
        _c(Kind.RESPONSE_CREATE, dialect), *_audio_response(dialect, "resp_R2", "item_A2"),
    ]


SEQUENCES = {"vad_turn": vad_turn, "manual_turn": manual_turn, "barge_in": barge_in,
             "client_cancel": client_cancel, "function_call": function_call}
FORMATS = tuple(AudioFormat)
