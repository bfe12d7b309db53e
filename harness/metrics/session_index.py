"""A session's trace, indexed as it grows: responses by id, marks by name and turn, receives by kind.

`SessionIndex.add(record)` takes one trace record (the same dict the recorder writes as a line),
so the index is built either live, record by record as the caller produces them, or offline by
feeding a trace file's records in order: both see the same records in the same order and hold
the same state. Nothing here reads a file; adding a record costs a few dict and list operations.

Responses live in the protocol's `ResponseLog` (one model of what the server said about each
response, shared with the caller's live session); the rest is what the turn matcher looks up:
marks, received events by kind (with their times, for bisection), send lateness per turn and
the speech ground truth of the appends, compressed into runs.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from harness.protocol.responses import ResponseFacts, ResponseLog, turn_detection_of
from harness.trace.vocabulary import Mark, Rec, Reason

NS_PER_MS = 1_000_000
# Received events the turn matcher and incidents look up by time. Others (audio deltas above all)
# are folded into the ResponseLog and not kept: a live session holds no record it does not need.
LOOKED_UP_KINDS = frozenset({"speech_started", "speech_stopped", "committed", "item_truncated"})
# Send lateness is kept per session in 10 us buckets (exact enough for a p99 gate, mergeable).
LATENESS_BUCKET_NS = 10_000
EXAMPLES_PER_RULE = 3       # first messages kept of each conformance rule a session broke


@dataclass
class _ByTime:
    """Records in arrival order, with their times for bisection while they stay sorted."""

    records: list[dict[str, Any]] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    ordered: bool = True

    def add(self, record: dict[str, Any]) -> None:
        t_ns = record["t_ns"]
        if self.times and t_ns < self.times[-1]:
            self.ordered = False
        self.records.append(record)
        self.times.append(t_ns)

    def after(self, t_ns: int, until_ns: int | None = None) -> list[dict[str, Any]]:
        if self.ordered:
            start = bisect_left(self.times, t_ns)
            stop = len(self.times) if until_ns is None else bisect_left(self.times, until_ns, start)
            return self.records[start:stop]
        return [r for r in self.records if r["t_ns"] >= t_ns and (until_ns is None or r["t_ns"] < until_ns)]


class SessionIndex:
    def __init__(self, header: dict[str, Any]) -> None:
        self.header = header
        self.log = ResponseLog()
        self.footer: dict[str, Any] | None = None
        self.close_ns: int | None = None
        self._marks: dict[str, list[dict[str, Any]]] = {}
        self._turn_marks: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        self._recvs: dict[str, _ByTime] = {}
        self.violation_times: list[int] = []
        self.violations_by_rule: dict[str, dict[str, Any]] = {}   # rule -> count, side, first examples
        self.lateness_by_turn: dict[Any, list[int]] = {}
        self.lateness_buckets: dict[int, int] = {}
        self.lateness_max_ns: int | None = None
        self.appends = 0
        # input-audio runs [start_ms, end_ms, speech] of consecutive appends with the same flag
        self._speech_runs: list[list[Any]] = []

    # -- feeding ------------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        kind = record.get("rec")
        if kind == Rec.APPEND:
            self._append(record)
        elif kind == Rec.RECV:
            recv_kind = str(record.get("kind"))
            if recv_kind in LOOKED_UP_KINDS:
                self._recvs.setdefault(recv_kind, _ByTime()).add(record)
            event = record.get("event")
            self.log.observe(record["t_ns"], recv_kind, event if isinstance(event, dict) else {})
        elif kind == Rec.MARK:
            name = str(record.get("mark"))
            self._marks.setdefault(name, []).append(record)
            self._turn_marks.setdefault((name, record.get("turn")), []).append(record)
            if name == Mark.CLOSE and self.close_ns is None:
                self.close_ns = record["t_ns"]
        elif kind == Rec.VIOLATION:
            self.violation_times.append(record["t_ns"])
            entry = self.violations_by_rule.setdefault(str(record.get("rule")), {
                "count": 0, "side": record.get("side"), "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < EXAMPLES_PER_RULE:
                entry["examples"].append(str(record.get("message"))[:300])
        elif kind == Rec.FOOTER:
            self.footer = record
        elif kind == Rec.HEADER:
            self.header = record

    def _append(self, record: dict[str, Any]) -> None:
        self.add_append(record.get("turn"), record["t_ns"], record.get("sched_ns"), record.get("input_ms"),
                        record.get("audio_ms") or 0.0, bool(record.get("speech")))

    def add_append(self, turn: Any, t_ns: int, sched_ns: int | None, input_ms: float | None, audio_ms: float,
                   speech: bool) -> None:
        """One `append` record, by its fields (the live recorder builds no dict for appends)."""
        self.appends += 1
        if sched_ns is not None:
            late_ns = t_ns - sched_ns
            self.lateness_by_turn.setdefault(turn, []).append(late_ns)
            bucket = late_ns // LATENESS_BUCKET_NS if late_ns > 0 else 0
            self.lateness_buckets[bucket] = self.lateness_buckets.get(bucket, 0) + 1
            if self.lateness_max_ns is None or late_ns > self.lateness_max_ns:
                self.lateness_max_ns = late_ns
        if input_ms is None:
            return
        end = input_ms + audio_ms
        runs = self._speech_runs
        if runs and runs[-1][2] == speech and abs(runs[-1][1] - input_ms) < 1e-6:
            runs[-1][1] = end
        else:
            runs.append([input_ms, end, speech])

    # -- looking up ---------------------------------------------------------------------------
    @property
    def speech_sent(self) -> bool:
        """The caller has sent some corpus speech (an append with its speech flag)."""
        return any(run[2] for run in self._speech_runs)

    @property
    def stopped(self) -> bool:
        """The run stopped this session (its footer says so, or its `stopped` mark does when the
        process exited before the footer was written)."""
        return (self.footer or {}).get("reason") == Reason.STOPPED or bool(self._marks.get(Mark.STOPPED))

    @property
    def responses(self) -> dict[str, ResponseFacts]:
        return self.log.responses

    @property
    def response_order(self) -> list[str]:
        return self.log.order

    def _td(self) -> dict[str, Any]:
        # the header's session_config is filled in when the session is configured: read it late
        return self.log.turn_detection or turn_detection_of(self.header.get("session_config")) or {}

    @property
    def silence_duration_ms(self) -> float | None:
        return self._td().get("silence_duration_ms")

    @property
    def prefix_padding_ms(self) -> float | None:
        return self._td().get("prefix_padding_ms")

    def marks_named(self, name: str, turn: Any = None) -> list[dict[str, Any]]:
        if turn is None:
            return self._marks.get(name, [])
        return self._turn_marks.get((name, turn), [])

    def first_mark(self, name: str, turn: Any) -> dict[str, Any] | None:
        found = self._turn_marks.get((name, turn))
        return found[0] if found else None

    def recvs(self, kind: str) -> list[dict[str, Any]]:
        found = self._recvs.get(kind)
        return found.records if found is not None else []

    def recv_after(self, kind: str, t_ns: int, until_ns: int | None = None) -> list[dict[str, Any]]:
        found = self._recvs.get(kind)
        return found.after(t_ns, until_ns) if found is not None else []

    def speech_at(self, input_ms: float, window_ms: float) -> bool | None:
        """Was the caller sending corpus speech in input-audio time [input_ms, input_ms + window_ms]?"""
        seen = False
        for start, end, speech in self._speech_runs:
            if end < input_ms or start > input_ms + window_ms:
                continue
            seen = True
            if speech:
                return True
        return False if seen else None

    def lateness_summary(self) -> dict[str, Any]:
        """This session's send lateness: count, max and the 10 us buckets (for the run's pacing gate)."""
        return {"count": sum(self.lateness_buckets.values()), "max_ns": self.lateness_max_ns,
                "bucket_ns": LATENESS_BUCKET_NS, "buckets": {str(k): v for k, v in sorted(self.lateness_buckets.items())}}
