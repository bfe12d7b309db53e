"""Incidents: responses that did not play out as the caller should hear them, one cause each.

Causes and their evidence follow DESIGN.md section 4. `false_barge_in` versus `barge_in` is
decided by ground truth: whether the caller was sending corpus speech (the `speech` flag of the
append records, from the corpus segments) in input-audio time from the server's
`audio_start_ms` to `prefix_padding_ms` + 200 ms after it (the server dates speech starts
`prefix_padding_ms` before it detected them). The scenario's own interruptions (turn
`expect` = cancel / barge_in, with real speech) are measured, not reported, and so is real
speech cancelling a response before any of its audio arrived (nothing audible was cut; the
early end of turn shows as `vad_verdict` early). Live's cuts (`false_barge_in` under noise,
`muted_barge_in`) are inferred from the answer's end by `harness.metrics.live_meter`.

Thresholds (documented in the README): a response is `stalled` when audio deltas stop for more
than `STALL_LIMIT_MS` before its audio is done; `audio_cut_short` when it completed with less
than `CUT_SHORT_MS_PER_CHAR` ms of audio per transcript character (natural speech is 55-75 ms
per character; the cut is flagged only for transcripts of at least 20 characters).
What the caller hears (per-delta levels, harness.audio.levels): `no_audio` when audio was asked
for and a completed response (not a tool call) sent none; `silent_audio` when it sent audio with
no sample at or above -50 dBFS; `audio_format_mismatch` when its first audible audio looks like
noise (zero-crossing rate over 0.35 per sample) or it lasts over `MISMATCH_MS_PER_CHAR` ms per
transcript character (one format's bytes read as another's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.metrics.session_index import NS_PER_MS, SessionIndex
from harness.protocol.responses import ResponseFacts
from harness.trace.vocabulary import Mark, Reason

STALL_LIMIT_MS = 1000.0
CUT_SHORT_MS_PER_CHAR = 30.0
CUT_SHORT_MIN_CHARS = 20
SPEECH_SLACK_MS = 200.0

CAUSES = ("false_barge_in", "barge_in", "muted_barge_in", "client_cancel_unexpected", "max_tokens", "content_filter", "failed",
          "disconnected", "no_audio", "silent_audio", "audio_format_mismatch", "audio_cut_short", "stalled")
# Causes that mean the caller heard no answer at all: a run whose every ok turn has one of them
# heard nothing (the default gate, exit 6)
UNHEARD_CAUSES = ("no_audio", "silent_audio", "audio_format_mismatch")
# Audio in the declared format plays at 55-75 ms per transcript character; one format's bytes
# read as another's play 3-6x too long (24 kHz pcm16 declared as 8 kHz G.711: 6x).
MISMATCH_MS_PER_CHAR = 300.0
# Zero crossings per sample of the first audible delta above which it looks like noise (speech:
# about 0.02-0.15; bytes of another format: about 0.5). The receiver measures it.
NOISE_LIKE_CROSSINGS = 0.35


@dataclass
class Incident:
    cause: str
    response_id: str
    evidence: dict[str, Any]


def _rel_ms(t_ns: int | None, origin_ns: int) -> float | None:
    return None if t_ns is None else round((t_ns - origin_ns) / NS_PER_MS, 3)


def _speech_cause(ix: SessionIndex, r: ResponseFacts, before_ns: int, expect: str | None,
                  origin_ns: int, how: str) -> Incident | None:
    started = [rec for rec in ix.recvs("speech_started") if rec["t_ns"] <= before_ns
               and (r.created_ns is None or rec["t_ns"] >= r.created_ns)]
    trigger = started[-1] if started else None
    audio_start_ms = (trigger.get("event") or {}).get("audio_start_ms") if trigger else None
    window_ms = float(ix.prefix_padding_ms if ix.prefix_padding_ms is not None else 300.0) + SPEECH_SLACK_MS
    speaking = ix.speech_at(float(audio_start_ms), window_ms) if audio_start_ms is not None else None
    evidence = {"how": how, "speech_started_ms": _rel_ms(trigger["t_ns"] if trigger else None, origin_ns),
                "audio_start_ms": audio_start_ms, "caller_speaking": speaking,
                "audio_received_ms": round(r.audio_ms, 3), "cut_ms": _rel_ms(before_ns, origin_ns)}
    if speaking:
        # Real speech that cancels a response before any of its audio arrived cut nothing the
        # caller could hear (typically a VAD that ended the turn too early: see vad_verdict).
        if expect == "barge_in" or r.audio_ms <= 0:
            return None
        return Incident("barge_in", r.id, evidence)
    return Incident("false_barge_in", r.id, evidence)


def _max_gap_ms(r: ResponseFacts) -> tuple[float, int | None]:
    times = [t for t in r.delta_times_ns if r.audio_done_ns is None or t <= r.audio_done_ns]
    if r.audio_done_ns is not None and times:
        times.append(r.audio_done_ns)
    gaps = [(b - a, a) for a, b in zip(times, times[1:])]
    if not gaps:
        return 0.0, None
    gap_ns, at = max(gaps)
    return gap_ns / NS_PER_MS, at


def _modalities(session: Any) -> list[str] | None:
    if not isinstance(session, dict):
        return None
    found = session.get("output_modalities", session.get("modalities"))
    return [str(m) for m in found] if isinstance(found, list) else None


def audio_expected(session: Any) -> bool:
    """The session asked for audio answers (GA `output_modalities`, beta `modalities`; default audio)."""
    modalities = _modalities(session)
    return modalities is None or "audio" in modalities


def classify_response(ix: SessionIndex, r: ResponseFacts, expect: str | None, origin_ns: int) -> Incident | None:
    base = {"status": r.status, "reason": r.reason, "created_ms": _rel_ms(r.created_ns, origin_ns),
            "done_ms": _rel_ms(r.done_ns, origin_ns), "audio_received_ms": round(r.audio_ms, 3)}
    if r.status == "cancelled":
        if r.reason == "turn_detected":
            return _speech_cause(ix, r, r.done_ns or 0, expect, origin_ns, "cancelled: turn_detected")
        if r.reason == "client_cancelled":
            return None if expect == "cancel" else Incident("client_cancel_unexpected", r.id, base)
        return Incident("failed", r.id, base)
    if r.status == "incomplete":
        cause = "content_filter" if r.reason == "content_filter" else "max_tokens"
        return Incident(cause, r.id, base)
    if r.status == "failed" or r.server_errors:
        return Incident("failed", r.id, {**base, "errors": r.server_errors[:3]})
    if r.status is None:
        footer = ix.footer or {}
        # A trace still being written (a turn measured live) or cut by our own kill has no
        # footer and no close: an unfinished response there is not the target's doing.
        if ix.close_ns is not None or footer.get("reason") in (Reason.CLOSED, Reason.ERROR):
            if ix.stopped:
                return None
            return Incident("disconnected", r.id, {**base, "closed_ms": _rel_ms(ix.close_ns, origin_ns),
                                                   "trace_end": footer.get("reason", "torn")})
        return None
    stops = [m for m in ix.marks_named(Mark.PLAYOUT_STOP) if m.get("response_id") == r.id
             and m.get("reason") == "barge_in"]
    if stops:
        return _speech_cause(ix, r, stops[0]["t_ns"], expect, origin_ns, "playout cut by speech_started")
    gap_ms, gap_at = _max_gap_ms(r)
    if gap_ms > STALL_LIMIT_MS:
        return Incident("stalled", r.id, {**base, "gap_ms": round(gap_ms, 3), "gap_at_ms": _rel_ms(gap_at, origin_ns)})
    chars = len(r.text)
    if r.audio_ms <= 0 and not r.function_calls and audio_expected(ix.header.get("session_config")):
        return Incident("no_audio", r.id, {**base, "transcript_chars": chars,
                                           "output_modalities": _modalities(ix.header.get("session_config"))})
    if r.audio_ms > 0 and r.first_audible_ns is None and r.peak is not None:
        return Incident("silent_audio", r.id, {**base, "peak": r.peak})
    noise_like = r.crossing_rate is not None and r.crossing_rate > NOISE_LIKE_CROSSINGS
    inflated = chars >= CUT_SHORT_MIN_CHARS and r.audio_ms > chars * MISMATCH_MS_PER_CHAR
    if noise_like or inflated:
        return Incident("audio_format_mismatch", r.id, {
            **base, "declared_format": ix.header.get("format"), "transcript_chars": chars,
            "ms_per_char": round(r.audio_ms / chars, 1) if chars else None,
            "crossing_rate": round(r.crossing_rate, 3) if r.crossing_rate is not None else None,
            "why": "samples look like noise" if noise_like else "audio far longer than its transcript"})
    if chars >= CUT_SHORT_MIN_CHARS and r.audio_ms < chars * CUT_SHORT_MS_PER_CHAR:
        return Incident("audio_cut_short", r.id, {**base, "transcript_chars": chars,
                                                  "expected_min_audio_ms": chars * CUT_SHORT_MS_PER_CHAR})
    return None


def classify_turn(ix: SessionIndex, start: dict[str, Any], responses: list[ResponseFacts]) -> Incident | None:
    """The first incident among the turn's responses (its answer first), or None."""
    for r in responses:
        incident = classify_response(ix, r, start.get("expect"), start["t_ns"])
        if incident is not None:
            return incident
    return None
