"""What the probe scenarios measure per turn, and what a barge-in cost the listener.

A probe scenario (endpointing, pause_ladder, backchannel, noise_ladder) says what it did in a
turn in the `probe` field of the turn's `turn_end` mark; the meter turns that into columns:

- `turn_detection`: "manual" (the caller committed) or "server_vad", for every turn.
- `endpointing_cost_ms` (manual twin of an endpointing pair): ttfa of the server-VAD turn of the
  same utterance minus this turn's ttfa (its commit went out exactly at the true speech end).
- `pause_ms`, `pause_split` (pause ladder): the pause inserted between two corpus segments, and
  whether the server ended the turn inside it: a `speech_stopped` whose end of speech
  (`audio_end_ms` minus `silence_duration_ms`) falls in the pause (from 100 ms before its start,
  the VAD's frame and annotation slack, to its end), in input-audio time.
- `backchannel_offset_ms`, `backchannel_cancelled` (backchannel): when the acknowledgement
  started, in ms of the answer's playout, and whether it cancelled the answer: the server
  cancelled it (`turn_detected`) or its `speech_started` cut the playout (a `playout_stop`
  with reason `barge_in`: a real client stops playing there).
- `snr_db` (noise ladder): the noise level under the caller's speech level during playback.
- `network_rtt_ms`: the WebSocket ping/pong round trip (an `rtt` mark) nearest the turn's speech
  end (else its start), among those recorded before the turn ended.
- `heard_ms` / `discarded_ms`, for an interrupted response (cancelled, or its playout stopped by
  a barge-in or cancel): audio the caller's player played before the stop, and audio received
  but never played (received minus heard; `cancel_leak_ms` is the part that came after the cancel).
"""

from __future__ import annotations

from typing import Any

from harness.metrics.matcher import TurnState
from harness.metrics.session_index import SessionIndex
from harness.protocol.responses import ResponseFacts
from harness.trace.vocabulary import Mark

PAUSE_START_SLACK_MS = 100.0


def probe_of(ix: SessionIndex, turn: Any) -> dict[str, Any]:
    end = ix.first_mark(Mark.TURN_END, turn)
    probe = end.get("probe") if end is not None else None
    return probe if isinstance(probe, dict) else {}


def probe_columns(ix: SessionIndex, state: TurnState, answer: ResponseFacts | None, ttfa_ms: float | None,
                  earlier: list[dict[str, Any]]) -> dict[str, Any]:
    """The probe columns of one turn (see the module docstring); `earlier` are the session's
    records built so far (the endpointing twin is among them)."""
    probe = probe_of(ix, state.turn)
    out: dict[str, Any] = {
        "turn_detection": "manual" if state.manual else "server_vad",
        "endpointing_cost_ms": None, "pause_ms": None, "pause_split": None,
        "backchannel_offset_ms": None, "backchannel_cancelled": None, "snr_db": None,
        "network_rtt_ms": nearest_rtt_ms(ix, state),
    }
    pair = probe.get("pair")
    if pair is not None and state.manual:
        twin = next((r for r in earlier if r.get("turn") == pair), None)
        if twin is not None and twin.get("ttfa_ms") is not None and ttfa_ms is not None:
            out["endpointing_cost_ms"] = float(twin["ttfa_ms"]) - ttfa_ms
    if probe.get("pause_ms") is not None:
        out["pause_ms"] = float(probe["pause_ms"])
        out["pause_split"] = split_in_pause(ix, state, float(probe["pause_at_ms"]), float(probe["pause_ms"]))
    if probe.get("backchannel_offset_ms") is not None:
        out["backchannel_offset_ms"] = float(probe["backchannel_offset_ms"])
        cut = answer is not None and any(m.get("response_id") == answer.id and m.get("reason") == "barge_in"
                                         for m in ix.marks_named(Mark.PLAYOUT_STOP))
        out["backchannel_cancelled"] = bool(answer is not None and (cut or (
            answer.status == "cancelled" and answer.reason == "turn_detected")))
    if probe.get("snr_db") is not None:
        out["snr_db"] = float(probe["snr_db"])
    return out


def split_in_pause(ix: SessionIndex, state: TurnState, pause_at_ms: float, pause_ms: float) -> bool:
    """Did a speech_stopped of this turn put the end of speech inside the pause?"""
    start_input_ms = state.start.get("input_ms")
    if start_input_ms is None:
        return False
    low = float(start_input_ms) + pause_at_ms - PAUSE_START_SLACK_MS
    high = float(start_input_ms) + pause_at_ms + pause_ms
    silence_ms = float(ix.silence_duration_ms or 0.0)
    for record in ix.recv_after("speech_stopped", state.start_ns, state.next_start_ns):
        audio_end_ms = (record.get("event") or {}).get("audio_end_ms")
        if audio_end_ms is not None and low <= float(audio_end_ms) - silence_ms < high:
            return True
    return False


def nearest_rtt_ms(ix: SessionIndex, state: TurnState) -> float | None:
    marks = ix.marks_named(Mark.RTT)
    if not marks:
        return None
    at_ns = int((state.speech_end or state.start)["t_ns"])
    nearest = min(marks, key=lambda m: abs(int(m["t_ns"]) - at_ns))
    return float(nearest["rtt_ms"])


def heard_discarded(ix: SessionIndex, responses: list[ResponseFacts]) -> dict[str, Any]:
    """heard_ms / discarded_ms of the turn's first interrupted response (None when none was)."""
    for facts in responses:
        stops = [m for m in ix.marks_named(Mark.PLAYOUT_STOP) if m.get("response_id") == facts.id]
        stopped = next((m for m in stops if m.get("reason") in ("barge_in", "cancel")), None)
        if facts.status != "cancelled" and stopped is None:
            continue
        ends = [m for m in ix.marks_named(Mark.PLAYOUT_END) if m.get("response_id") == facts.id]
        played = stopped or (stops[0] if stops else None) or (ends[0] if ends else None)
        heard = float(played.get("played_ms") or 0.0) if played is not None else 0.0
        return {"heard_ms": heard, "discarded_ms": max(0.0, facts.audio_ms - heard)}
    return {"heard_ms": None, "discarded_ms": None}
