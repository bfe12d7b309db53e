"""The per-turn record (docs/contracts.md section 5; DESIGN.md section 4), produced as a session runs.

`TurnMeter` is fed a session's trace records in order (`add`); a turn's record is built the
moment its `turn_end` mark arrives, from what the session had recorded by then, and the turns
still open when the footer arrives get theirs then (`stopped` when the run stopped them). The
caller's live session feeds its meter every record it writes; offline, `turns_from_trace` feeds
a trace file's records to a new meter: both produce the same records, field for field.

Which user item and which response belong to a turn is decided by `metrics.matcher` (the same
matcher the scenarios ask while they run). Choices the design leaves open (also in the README's
metrics section):
- `vad_end_error_ms` subtracts the session's `silence_duration_ms` from the server's
  `audio_end_ms`, because the protocol documents `audio_end_ms` as including the silence window.
- VAD verdict: `early` when the server's end of speech is more than 100 ms before the true
  end or the commit arrived before the caller finished sending speech, `late` when it is more
  than 300 ms after it, `missed` when no commit came, else `ok`.
- A turn the run stopped before it could finish gets status `stopped`; it stays in the turn
  count but has no latencies (it neither succeeded nor timed out).
- A turn's send lateness covers the appends of that turn sent before its end.
- Responses nobody asked for (a false trigger during silence) go to the first turn that ends
  after they are done (or the session's end).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from harness.metrics.incidents import classify_turn
from harness.metrics.live_meter import LiveMeter
from harness.metrics import quantiles
from harness.metrics.matcher import TurnMatcher, TurnState
from harness.metrics.probes import heard_discarded, probe_columns
from harness.metrics.record import LATENCY_COLUMNS, Status, VadVerdict
from harness.metrics.session_index import NS_PER_MS, SessionIndex
from harness.protocol.responses import ResponseFacts
from harness.trace import Trace, iter_trace_files, read_trace
from harness.trace.vocabulary import Mark, Rec

EARLY_TOLERANCE_MS = 100.0
LATE_TOLERANCE_MS = 300.0


def _ms(later_ns: int | None, earlier_ns: int | None) -> float | None:
    if later_ns is None or earlier_ns is None:
        return None
    return (later_ns - earlier_ns) / NS_PER_MS


def _t(record: dict[str, Any] | None) -> int | None:
    return None if record is None else int(record["t_ns"])


def _field(record: dict[str, Any] | None, name: str) -> Any:
    return None if record is None else (record.get("event") or {}).get(name)


class TurnMeter:
    """Turn records of one session, from its records fed in order."""

    def __init__(self, header: dict[str, Any] | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.index = SessionIndex(header or {})
        self.matcher = TurnMatcher(self.index)
        self.records: list[dict[str, Any]] = []
        self.on_record = on_record
        self._emitted: set[Any] = set()
        self._credited: set[str] = set()    # strays already charged to a turn
        # Live has no protocol turns: its answers are delimited by the caller's speech (live_meter)
        self.live = LiveMeter() if self.index.header.get("dialect") == "live" else None

    @property
    def header(self) -> dict[str, Any]:
        return self.index.header

    def add(self, record: dict[str, Any]) -> None:
        self.index.add(record)
        self.matcher.add(record)
        if self.live is not None:
            self.live.add(record)
        kind = record.get("rec")
        if kind == Rec.MARK and record.get("mark") == Mark.TURN_END:
            state = self.matcher.turns.get(record.get("turn"))
            if state is not None:
                self._emit(state)
        elif kind == Rec.FOOTER:
            for state in self.matcher.order:
                self._emit(state)

    def add_append(self, turn: Any, t_ns: int, sched_ns: int | None, input_ms: float | None, audio_ms: float,
                   speech: bool) -> None:
        """An `append` record by its fields (appends concern the index only)."""
        self.index.add_append(turn, t_ns, sched_ns, input_ms, audio_ms, speech)

    def answer(self, turn: Any) -> ResponseFacts | None:
        if self.live is not None:
            return self.live.facts(turn)
        return self.matcher.answer(turn)

    def follow(self, turn: Any) -> ResponseFacts | None:
        return self.matcher.follow(turn)

    def _emit(self, state: TurnState) -> None:
        if state.turn in self._emitted:
            return
        self._emitted.add(state.turn)
        row = self._row(state)
        self.records.append(row)
        if self.on_record is not None:
            self.on_record(row)

    # -- one turn -------------------------------------------------------------------------------
    def _responses(self, state: TurnState) -> list[ResponseFacts]:
        if self.live is not None:
            facts = self.live.facts(state.turn)
            return [facts] if facts is not None else []
        log = self.index.log
        return [r for r in (log.get(state.answer), log.get(state.follow)) if r is not None]

    def _strays(self, state: TurnState) -> list[ResponseFacts]:
        """Unclaimed responses created before the next turn began, not yet charged to a turn."""
        ix, out = self.index, []
        closed = ix.close_ns is not None or ix.footer is not None
        for rid in ix.response_order:
            facts = ix.responses[rid]
            if rid in self.matcher.claimed or rid in self._credited or facts.created_ns is None:
                continue
            if state.next_start_ns is not None and facts.created_ns >= state.next_start_ns:
                continue
            if facts.done or closed:
                self._credited.add(rid)
                out.append(facts)
        return out

    def _row(self, state: TurnState) -> dict[str, Any]:
        ix, header, turn, start = self.index, self.index.header, state.turn, state.start
        end_ns = _t(state.speech_end)
        manual = state.manual
        started, stopped = (None, None) if manual else (state.started, state.stopped)
        answer = self.answer(turn)
        responses = self._responses(state)
        first_commit = state.committed
        committed, stopped = self._final_commit(first_commit, stopped, answer, state.next_start_ns)
        audio_responses = [r for r in responses if r.first_audio_ns is not None]
        first_audio_ns = audio_responses[0].first_audio_ns if audio_responses else None
        commit_ns = _t(committed)
        commit_sent_ns = _t(state.commit_sent)
        row: dict[str, Any] = {
            "run_id": header.get("run_id"), "session_id": header.get("session_id"),
            "worker": header.get("worker"), "turn": turn, "scenario": header.get("scenario"),
            "utterance": start.get("utterance"), "format": header.get("format"),
            "dialect": header.get("dialect"), "target": header.get("target"),
            "t_start_ns": start["t_ns"], "t_wall_s": self._wall_s(start["t_ns"]), "users": header.get("users"),
            "response_id": answer.id if answer else None,
            "response_status": answer.status if answer else None, "response_reason": answer.reason if answer else None,
            "ttfa_ms": _ms(first_audio_ns, end_ns),
            "ttfa_from_commit_ms": _ms(first_audio_ns, commit_sent_ns if manual else commit_ns),
            "ttfa_audible_ms": _ms(next((r.first_audible_ns for r in responses if r.first_audible_ns), None), end_ns),
            "leading_silence_ms": audio_responses[0].leading_silence_ms if audio_responses else None,
            "vad_stop_ms": _ms(_t(stopped), end_ns),
            "vad_commit_ms": None if manual else _ms(commit_ns, end_ns),
            "response_done_ms": _ms(responses[-1].done_ns if responses else None, end_ns),
            "tool_args_ms": _ms(answer.function_args_done_ns if answer else None, end_ns),
            "tool_roundtrip_ms": _ms(responses[1].first_audio_ns if len(responses) > 1 else None,
                                     _t(state.output_sent)),
            "audio_ms": sum(r.audio_ms for r in responses) if responses else None,
            "transcript": " ".join(r.text for r in responses if r.text) or None,
            "expected_interruption": start.get("expect") in ("cancel", "barge_in"),
        }
        true_end_input_ms = state.speech_end.get("input_ms") if state.speech_end else None
        row.update(self._vad_accuracy(stopped, committed, first_commit, true_end_input_ms, end_ns, manual))
        row.update(self._interruptions(state, answer))
        row.update(self._playout(responses))
        row.update(heard_discarded(ix, responses))
        row.update(probe_columns(ix, state, answer, row["ttfa_ms"], self.records))
        row.update(self._lateness(turn))
        next_ns = state.next_start_ns
        if self.live is not None:
            row.update(self._live_only(state, answer, true_end_input_ms))
        row["violations"] = sum(1 for t in ix.violation_times if t >= state.start_ns and (next_ns is None or t < next_ns))
        row["status"] = self._status(turn, answer, start.get("expect")).value
        if row["status"] == Status.INVALID_PACING:
            # The caller itself ran late: its timings of this turn are not trusted and never
            # silently counted (the trace keeps every event; the lateness columns say why).
            for name in LATENCY_COLUMNS:
                row[name] = None
        if row["status"] in (Status.INVALID_PACING, Status.STOPPED):
            row["vad_verdict"] = None    # judged only on VAD turns that ran to their end
        incident = classify_turn(ix, start, [*responses, *self._strays(state)])
        if incident is None and self.live is not None:   # Live's cuts, inferred from the answer's end
            playout = next((m for m in ix.marks_named(Mark.PLAYOUT_START)
                            if answer is not None and m.get("response_id") == answer.id), None)
            incident = self.live.incident(turn, header.get("scenario"), _t(playout), start["t_ns"])
        row["incident"] = incident.cause if incident else None
        row["incident_evidence"] = incident.evidence if incident else None
        return row

    def _live_only(self, state: TurnState, answer: ResponseFacts | None, true_end_ms: float | None) -> dict[str, Any]:
        """The columns whose Live meaning differs (protocol/live_turns.py LIVE_METRICS): an answer
        ends by going quiet (no response_done_ms), barge-in is the interrupting speech start ->
        the answer's last chunk, and the server's end of speech is its input transcript's end_ms."""
        assert self.live is not None
        found = self.live.turns.get(state.turn)
        server_end_ms = found.transcript_end_ms if found is not None else None
        error = float(server_end_ms) - float(true_end_ms) if server_end_ms is not None and true_end_ms is not None \
            else None
        verdict = None
        if error is not None:
            verdict = (VadVerdict.EARLY if error < -EARLY_TOLERANCE_MS else VadVerdict.LATE if error > LATE_TOLERANCE_MS
                       else VadVerdict.OK).value
        barge_in = self.live.barge_in_ms(state.turn) if state.start.get("expect") == "barge_in" else None
        return {"response_done_ms": None, "vad_end_error_ms": error, "vad_verdict": verdict,
                "barge_in_ms": barge_in, "response_reason": None}

    def _wall_s(self, t_ns: int) -> float | None:
        clock = self.index.header.get("clock") or {}
        if "wall_ns" not in clock or "mono_ns" not in clock:
            return None
        return float((clock["wall_ns"] + (t_ns - clock["mono_ns"])) / 1e9)

    def _final_commit(self, first: dict[str, Any] | None, stopped: dict[str, Any] | None,
                      answer: ResponseFacts | None, next_ns: int | None
                      ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The commit that led to the answer: the last one before it was created.

        A server VAD that ends the turn too early commits part of the utterance; the rest is
        committed again and the answer follows the last commit, so that is the commit the
        caller waited for.
        """
        if first is None:
            return None, stopped
        until = answer.created_ns if answer is not None and answer.created_ns else next_ns
        commits = [c for c in self.index.recv_after("committed", first["t_ns"])
                   if until is None or c["t_ns"] <= until]
        final = commits[-1] if commits else first
        if final is first:
            return first, stopped
        item_id = _field(final, "item_id")
        final_stop = next((r for r in self.index.recv_after("speech_stopped", first["t_ns"])
                           if _field(r, "item_id") == item_id), stopped)
        return final, final_stop

    def _vad_accuracy(self, stopped: dict[str, Any] | None, committed: dict[str, Any] | None,
                      first_commit: dict[str, Any] | None, true_end_ms: float | None, end_ns: int | None,
                      manual: bool) -> dict[str, Any]:
        if manual:
            return {"vad_end_error_ms": None, "vad_verdict": None}
        if committed is None:
            return {"vad_end_error_ms": None, "vad_verdict": VadVerdict.MISSED.value}
        audio_end_ms = _field(stopped, "audio_end_ms")
        error = None
        if audio_end_ms is not None and true_end_ms is not None:
            error = float(audio_end_ms) - float(self.index.silence_duration_ms or 0.0) - float(true_end_ms)
        early_commit = end_ns is not None and first_commit is not None and first_commit["t_ns"] < end_ns
        if early_commit or (error is not None and error < -EARLY_TOLERANCE_MS):
            verdict = VadVerdict.EARLY
        elif error is not None and error > LATE_TOLERANCE_MS:
            verdict = VadVerdict.LATE
        else:
            verdict = VadVerdict.OK
        return {"vad_end_error_ms": error, "vad_verdict": verdict.value}

    def _interruptions(self, state: TurnState, answer: ResponseFacts | None) -> dict[str, Any]:
        ix, turn = self.index, state.turn
        out: dict[str, Any] = {"cancel_ack_ms": None, "cancel_leak_ms": None, "barge_in_ms": None,
                               "truncate_ack_ms": None}
        cancel = ix.first_mark(Mark.CANCEL_SENT, turn)
        if cancel is not None:
            rid = cancel.get("response_id") or (answer.id if answer else None)
            facts = ix.responses.get(rid) if rid else None
            if facts is not None and facts.status == "cancelled":
                out["cancel_ack_ms"] = _ms(facts.done_ns, cancel["t_ns"])
            if facts is not None:
                out["cancel_leak_ms"] = sum(ms for t, ms in zip(facts.delta_times_ns, facts.delta_ms)
                                            if t > cancel["t_ns"])
        truncate = ix.first_mark(Mark.TRUNCATE_SENT, turn)
        if truncate is not None:
            acked = next((r for r in ix.recv_after("item_truncated", truncate["t_ns"])
                          if _field(r, "item_id") == truncate.get("item_id")), None)
            out["truncate_ack_ms"] = _ms(_t(acked), truncate["t_ns"])
        next_ns = state.next_start_ns
        interrupter = next((m for m in ix.marks_named(Mark.SPEECH_START_SENT)
                            if next_ns is not None and m["t_ns"] >= next_ns), None)
        if answer is not None and state.start.get("expect") == "barge_in" and interrupter:
            stop_ns = None
            if answer.status == "cancelled" and answer.done_ns and answer.done_ns >= interrupter["t_ns"]:
                stop_ns = answer.done_ns
            else:
                stops = [m for m in ix.marks_named(Mark.PLAYOUT_STOP) if m.get("response_id") == answer.id]
                stop_ns = stops[0]["t_ns"] if stops else None
            out["barge_in_ms"] = _ms(stop_ns, interrupter["t_ns"])
        return out

    def _playout(self, responses: list[ResponseFacts]) -> dict[str, Any]:
        ids = {r.id for r in responses}
        if not any(m.get("response_id") in ids for m in self.index.marks_named(Mark.PLAYOUT_START)):
            return {"underrun_count": None, "underrun_ms": None}
        underruns = [m for m in self.index.marks_named(Mark.UNDERRUN) if m.get("response_id") in ids]
        return {"underrun_count": len(underruns), "underrun_ms": float(sum(m.get("ms") or 0.0 for m in underruns))}

    def _lateness(self, turn: Any) -> dict[str, Any]:
        late_ns = self.index.lateness_by_turn.get(turn)
        if not late_ns:
            return {"send_lateness_p50_ms": None, "send_lateness_p99_ms": None, "send_lateness_max_ms": None}
        lateness = sorted(late_ns)
        return {"send_lateness_p50_ms": quantiles.linear(lateness, 50) / NS_PER_MS,
                "send_lateness_p99_ms": quantiles.linear(lateness, 99) / NS_PER_MS,
                "send_lateness_max_ms": lateness[-1] / NS_PER_MS}

    def _status(self, turn: Any, answer: ResponseFacts | None, expect: str | None) -> Status:
        ix = self.index
        end = ix.first_mark(Mark.TURN_END, turn)
        if end is None and ix.stopped:
            return Status.STOPPED
        if ix.first_mark(Mark.PACING_INVALID, turn) is not None:
            return Status.INVALID_PACING
        if end is not None and end.get("status") in (Status.TIMEOUT, Status.ERROR):
            return Status(end["status"])
        if ix.first_mark(Mark.TIMEOUT, turn) is not None:
            return Status.TIMEOUT
        if answer is not None and answer.status == "failed":
            return Status.ERROR
        if end is not None:
            return Status.OK if answer is not None or expect == "none" else Status.TIMEOUT
        return Status.ERROR  # the session ended (closed, error, killed) before the turn did


def meter_trace(trace: Trace) -> TurnMeter:
    """A meter fed a whole trace file (header, records, footer), as the live session fed its own."""
    meter = TurnMeter(trace.header)
    for record in trace.records:
        meter.add(record)
    meter.add(trace.footer if trace.footer is not None else {"rec": Rec.FOOTER.value, "t_ns": 0, "reason": "torn"})
    return meter


def turns_from_trace(trace: Trace) -> list[dict[str, Any]]:
    return sorted(meter_trace(trace).records, key=lambda r: (r["t_start_ns"], str(r["turn"])))


def turns_from_dir(directory: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in iter_trace_files(directory):
        rows.extend(turns_from_trace(read_trace(path)))
    return rows


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
