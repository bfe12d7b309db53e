"""Turn segmentation and the per-turn record (docs/contracts.md section 5; DESIGN.md section 4).

A turn starts at the caller's `turn_start` mark. Its user item is found by id: in server-VAD
mode the first `speech_started` after the turn's speech began to be sent (its `item_id` U, then
the `speech_stopped` and `committed` for U); in manual mode the first `committed` after the
turn's `commit_sent`. The response answering it is the first response created after that
commit and after the caller finished sending the utterance (manual: after the turn's
`response_create_sent`) that no earlier turn claimed. When that
response only calls a tool, the follow-up response (created after the turn's own
`response_create_sent` following `function_output_sent`) carries the answer audio, so
`ttfa_ms` is measured to the first audio delta of either.

Choices the design leaves open (also in the README's metrics section):
- `vad_end_error_ms` subtracts the session's `silence_duration_ms` from the server's
  `audio_end_ms`, because the protocol documents `audio_end_ms` as including the silence window.
- VAD verdict: `early` when the server's end of speech is more than 100 ms before the true
  end or the commit arrived before the caller finished sending speech, `late` when it is more
  than 300 ms after it, `missed` when no commit came, else `ok`.
- A turn the run stopped before it could finish gets status `stopped`; it stays in the turn
  count but has no latencies (it neither succeeded nor timed out).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.metrics.incidents import classify_turn
from harness.metrics.session_index import NS_PER_MS, ResponseFacts, SessionIndex, index_session
from harness.trace import Trace, iter_trace_files, read_trace

LATENCY_COLUMNS = ("ttfa_ms", "ttfa_from_commit_ms", "vad_stop_ms", "vad_commit_ms", "vad_end_error_ms",
                   "response_done_ms", "cancel_ack_ms", "cancel_leak_ms", "barge_in_ms", "truncate_ack_ms",
                   "tool_args_ms", "tool_roundtrip_ms", "underrun_count", "underrun_ms")
EARLY_TOLERANCE_MS = 100.0
LATE_TOLERANCE_MS = 300.0


def _ms(later_ns: int | None, earlier_ns: int | None) -> float | None:
    if later_ns is None or earlier_ns is None:
        return None
    return (later_ns - earlier_ns) / NS_PER_MS


def _field(record: dict[str, Any] | None, name: str) -> Any:
    return None if record is None else (record.get("event") or {}).get(name)


class _TurnBuilder:
    def __init__(self, index: SessionIndex) -> None:
        self.index = index
        self.header = index.trace.header
        self.claimed: set[str] = set()
        self.starts = sorted(index.marks_named("turn_start"), key=lambda m: m["t_ns"])

    def build(self) -> list[dict[str, Any]]:
        built = []
        for position, start in enumerate(self.starts):
            next_ns = self.starts[position + 1]["t_ns"] if position + 1 < len(self.starts) else None
            built.append((start, next_ns, *self.turn(start, next_ns)))
        rows = []
        for start, next_ns, row, responses in built:
            # Responses nobody asked for (a false trigger during silence, a noise-committed turn)
            # belong to the turn during which they were created.
            strays = [f for rid, f in self.index.responses.items() if rid not in self.claimed
                      and f.created_ns is not None and f.created_ns >= start["t_ns"]
                      and (next_ns is None or f.created_ns < next_ns)]
            incident = classify_turn(self.index, start, [*responses, *strays])
            row["incident"] = incident.cause if incident else None
            row["incident_evidence"] = incident.evidence if incident else None
            rows.append(row)
        return rows

    # -- matching -----------------------------------------------------------------------------
    def _user_item(self, turn: int, start: dict[str, Any], next_ns: int | None) -> tuple[dict | None, dict | None, dict | None]:
        ix = self.index
        commit_sent = ix.first_mark("commit_sent", turn)
        if commit_sent is not None:
            committed = next(iter(ix.recv_after("committed", commit_sent["t_ns"])), None)
            return None, None, committed
        # From the turn's first chunk, not from `speech_start_sent`: a server can date and send
        # speech_started a few ms before the caller's computed send time of the onset sample.
        started = next(iter(ix.recv_after("speech_started", start["t_ns"], next_ns)), None)
        if started is None:
            return None, None, None
        item_id = _field(started, "item_id")
        stopped = next((r for r in ix.recv_after("speech_stopped", started["t_ns"])
                        if _field(r, "item_id") == item_id), None)
        committed = next((r for r in ix.recv_after("committed", started["t_ns"])
                          if _field(r, "item_id") == item_id), None)
        return started, stopped, committed

    def _next_response(self, after_ns: int) -> ResponseFacts | None:
        for rid in self.index.response_order:
            facts = self.index.responses[rid]
            if rid in self.claimed or facts.created_ns is None or facts.created_ns < after_ns:
                continue
            self.claimed.add(rid)
            return facts
        return None

    # -- one turn -------------------------------------------------------------------------------
    def turn(self, start: dict[str, Any], next_ns: int | None) -> tuple[dict[str, Any], list[ResponseFacts]]:
        ix, turn = self.index, start.get("turn")
        speech_end = ix.first_mark("speech_end_sent", turn)
        end_ns = speech_end["t_ns"] if speech_end else None
        started, stopped, committed = self._user_item(turn, start, next_ns)
        # Manual turns are answered after the caller's own response.create; VAD turns after the
        # commit (a later response.create of the turn is a tool's follow-up).
        create_sent = ix.first_mark("response_create_sent", turn) if ix.first_mark("commit_sent", turn) else None
        anchor = create_sent["t_ns"] if create_sent else (committed["t_ns"] if committed else None)
        if anchor is not None and not create_sent and end_ns is not None:
            # A response created while the caller was still speaking answers a fragment (a VAD
            # that ended the turn at a pause); the caller's answer comes after its speech ended.
            anchor = max(anchor, end_ns)
        answer = self._next_response(anchor) if anchor is not None else None
        responses = [answer] if answer is not None else []
        output_sent = ix.first_mark("function_output_sent", turn)
        if answer is not None and output_sent is not None:
            follow_create = next((m for m in ix.marks_named("response_create_sent", turn)
                                  if m["t_ns"] >= output_sent["t_ns"]), None)
            follow = self._next_response(follow_create["t_ns"]) if follow_create else None
            if follow is not None:
                responses.append(follow)
        first_commit = committed
        committed, stopped = self._final_commit(committed, stopped, answer, next_ns)
        audio_responses = [r for r in responses if r.first_audio_ns is not None]
        first_audio_ns = audio_responses[0].first_audio_ns if audio_responses else None
        commit_ns = committed["t_ns"] if committed else None
        manual_commit = ix.first_mark("commit_sent", turn)
        true_end_input_ms = speech_end.get("input_ms") if speech_end else None
        row: dict[str, Any] = {
            "run_id": self.header.get("run_id"), "session_id": self.header.get("session_id"),
            "worker": self.header.get("worker"), "turn": turn, "scenario": self.header.get("scenario"),
            "utterance": start.get("utterance"), "format": self.header.get("format"),
            "dialect": self.header.get("dialect"), "target": self.header.get("target"),
            "t_start_ns": start["t_ns"], "t_wall_s": self._wall_s(start["t_ns"]), "users": self.header.get("users"),
            "response_id": answer.id if answer else None,
            "response_status": answer.status if answer else None, "response_reason": answer.reason if answer else None,
            "ttfa_ms": _ms(first_audio_ns, end_ns),
            "ttfa_from_commit_ms": _ms(first_audio_ns, manual_commit["t_ns"] if manual_commit else commit_ns),
            "vad_stop_ms": _ms(stopped["t_ns"] if stopped else None, end_ns),
            "vad_commit_ms": None if manual_commit else _ms(commit_ns, end_ns),
            "response_done_ms": _ms(responses[-1].done_ns if responses else None, end_ns),
            "tool_args_ms": _ms(answer.function_args_done_ns if answer else None, end_ns),
            "tool_roundtrip_ms": _ms(responses[1].first_audio_ns if len(responses) > 1 else None,
                                     output_sent["t_ns"] if output_sent else None),
            "audio_ms": sum(r.audio_ms for r in responses) if responses else None,
            "transcript": " ".join(r.text for r in responses if r.text) or None,
            "expected_interruption": start.get("expect") in ("cancel", "barge_in"),
        }
        row.update(self._vad_accuracy(stopped, committed, first_commit, true_end_input_ms, end_ns,
                                      manual_commit is not None))
        row.update(self._interruptions(turn, answer, next_ns))
        row.update(self._playout(responses))
        row.update(self._lateness(turn))
        row["violations"] = sum(1 for v in ix.violations
                                if v["t_ns"] >= start["t_ns"] and (next_ns is None or v["t_ns"] < next_ns))
        row["status"] = self._status(turn, answer, start.get("expect"))
        if row["status"] == "invalid_pacing":
            # The caller itself ran late: its timings of this turn are not trusted and never
            # silently counted (the trace keeps every event; the lateness columns say why).
            for name in LATENCY_COLUMNS:
                row[name] = None
        return row, responses

    def _wall_s(self, t_ns: int) -> float | None:
        clock = self.header.get("clock") or {}
        if "wall_ns" not in clock or "mono_ns" not in clock:
            return None
        return (clock["wall_ns"] + (t_ns - clock["mono_ns"])) / 1e9

    def _final_commit(self, first: dict | None, stopped: dict | None, answer: ResponseFacts | None,
                      next_ns: int | None) -> tuple[dict | None, dict | None]:
        """The commit that led to the answer: the last one before it was created.

        A server VAD that ends the turn too early commits part of the utterance; the rest is
        committed again and the answer follows the last commit, so that is the commit the
        caller waited for.
        """
        if first is None:
            return None, stopped
        until = answer.created_ns if answer is not None and answer.created_ns else next_ns
        commits = [c for c in self.index.recv_after("committed", first["t_ns"], None)
                   if until is None or c["t_ns"] <= until]
        final = commits[-1] if commits else first
        if final is first:
            return first, stopped
        item_id = _field(final, "item_id")
        final_stop = next((r for r in self.index.recv_after("speech_stopped", first["t_ns"])
                           if _field(r, "item_id") == item_id), stopped)
        return final, final_stop

    def _vad_accuracy(self, stopped: dict | None, committed: dict | None, first_commit: dict | None,
                      true_end_ms: float | None, end_ns: int | None, manual: bool) -> dict[str, Any]:
        if manual:
            return {"vad_end_error_ms": None, "vad_verdict": None}
        if committed is None:
            return {"vad_end_error_ms": None, "vad_verdict": "missed"}
        audio_end_ms = _field(stopped, "audio_end_ms")
        error = None
        if audio_end_ms is not None and true_end_ms is not None:
            error = float(audio_end_ms) - float(self.index.silence_duration_ms or 0.0) - float(true_end_ms)
        early_commit = end_ns is not None and first_commit is not None and first_commit["t_ns"] < end_ns
        if early_commit or (error is not None and error < -EARLY_TOLERANCE_MS):
            verdict = "early"
        elif error is not None and error > LATE_TOLERANCE_MS:
            verdict = "late"
        else:
            verdict = "ok"
        return {"vad_end_error_ms": error, "vad_verdict": verdict}

    def _interruptions(self, turn: int, answer: ResponseFacts | None, next_ns: int | None) -> dict[str, Any]:
        ix = self.index
        out: dict[str, Any] = {"cancel_ack_ms": None, "cancel_leak_ms": None, "barge_in_ms": None,
                               "truncate_ack_ms": None}
        cancel = ix.first_mark("cancel_sent", turn)
        if cancel is not None:
            rid = cancel.get("response_id") or (answer.id if answer else None)
            facts = ix.responses.get(rid) if rid else None
            if facts is not None and facts.status == "cancelled":
                out["cancel_ack_ms"] = _ms(facts.done_ns, cancel["t_ns"])
            if facts is not None:
                out["cancel_leak_ms"] = sum(ms for t, ms in zip(facts.delta_times_ns, facts.delta_ms)
                                            if t > cancel["t_ns"])
        truncate = ix.first_mark("truncate_sent", turn)
        if truncate is not None:
            acked = next((r for r in ix.recv_after("item_truncated", truncate["t_ns"])
                          if _field(r, "item_id") == truncate.get("item_id")), None)
            out["truncate_ack_ms"] = _ms(acked["t_ns"] if acked else None, truncate["t_ns"])
        interrupter = next((m for m in ix.marks_named("speech_start_sent")
                            if next_ns is not None and m["t_ns"] >= next_ns), None)
        start = ix.first_mark("turn_start", turn)
        if answer is not None and start is not None and start.get("expect") == "barge_in" and interrupter:
            stop_ns = None
            if answer.status == "cancelled" and answer.done_ns and answer.done_ns >= interrupter["t_ns"]:
                stop_ns = answer.done_ns
            else:
                stops = [m for m in ix.marks_named("playout_stop") if m.get("response_id") == answer.id]
                stop_ns = stops[0]["t_ns"] if stops else None
            out["barge_in_ms"] = _ms(stop_ns, interrupter["t_ns"])
        return out

    def _playout(self, responses: list[ResponseFacts]) -> dict[str, Any]:
        ids = {r.id for r in responses}
        if not any(m.get("response_id") in ids for m in self.index.marks_named("playout_start")):
            return {"underrun_count": None, "underrun_ms": None}
        underruns = [m for m in self.index.marks_named("underrun") if m.get("response_id") in ids]
        return {"underrun_count": len(underruns), "underrun_ms": float(sum(m.get("ms") or 0.0 for m in underruns))}

    def _lateness(self, turn: int) -> dict[str, Any]:
        lateness = np.array([(a["t_ns"] - a["sched_ns"]) / NS_PER_MS for a in self.index.appends
                             if a.get("turn") == turn and a.get("sched_ns") is not None], dtype="float64")
        if lateness.size == 0:
            return {"send_lateness_p50_ms": None, "send_lateness_p99_ms": None, "send_lateness_max_ms": None}
        p50, p99 = np.percentile(lateness, [50, 99])
        return {"send_lateness_p50_ms": float(p50), "send_lateness_p99_ms": float(p99),
                "send_lateness_max_ms": float(lateness.max())}

    def _status(self, turn: int, answer: ResponseFacts | None, expect: str | None) -> str:
        ix = self.index
        end = ix.first_mark("turn_end", turn)
        if end is None and (ix.trace.footer or {}).get("reason") == "stopped":
            return "stopped"  # the run ended mid-turn: neither a success nor a timeout
        if ix.first_mark("pacing_invalid", turn) is not None:
            return "invalid_pacing"
        if end is not None and end.get("status") in ("timeout", "error"):
            return str(end["status"])
        if ix.first_mark("timeout", turn) is not None:
            return "timeout"
        if answer is not None and answer.status == "failed":
            return "error"
        if end is not None:
            return "ok" if answer is not None or expect == "none" else "timeout"
        return "error"  # the session ended (closed, error, killed) before the turn did


def turns_from_trace(trace: Trace) -> list[dict[str, Any]]:
    return _TurnBuilder(index_session(trace)).build()


def turns_from_dir(directory: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in iter_trace_files(directory):
        rows.extend(turns_from_trace(read_trace(path)))
    return rows


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
