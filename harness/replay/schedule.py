"""Session-anchored replay: the bundle's exact audio and client events at their recorded offsets.

The other mode (`replay.py`, anchored on events) re-runs the scenario, so the caller decides
again when to cancel or truncate, on the new session's events. This one decides nothing: it
plays the original session back as a schedule measured from the audio stream's start.

- the bundle's audio (`audio.flac` or `audio.bin`) goes out as the stream's background, chunk k due at `t0 + k * chunk_ms / rtf`,
  which is exactly the original stream's schedule (its appends were never paused); each chunk
  keeps its original turn, speech flag and sha1 in the trace.
- Every other client event (cancel, truncate, commit, response.create, function outputs) is sent
  at its original offset; ids the server made up (responses, items, function calls) are
  translated to the new session's ids by order of first appearance (`IdMap`).
- The caller's marks (turn starts, true speech boundaries, decisions such as a barge-in's
  playback stop) are written at their original offsets, so the new trace is measured by the
  same metrics. Outcomes are not copied: a turn's status, timeouts and incidents come from
  what the target does this time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.audio import chunk_bytes, from_wire, silence_bytes, split_chunks, to_wire
from harness.client import Clip, Session, SessionSpec, wire_clip
from harness.protocol import AudioFormat, Dialect, SessionConfig, decode_client, default_session_config, parse_session_update
from harness.replay.bundle_files import PLAIN_TRACE_FILE, bundle_trace, read_audio
from harness.trace import Trace, read_trace
from harness.trace.vocabulary import Mark

# marks the pacer writes as the audio goes out, and the caller's decisions; both are replayed
REPLAYED_MARKS = frozenset({"turn_start", "speech_start_sent", "speech_end_sent",
                            "commit_sent", "response_create_sent", "function_output_sent", "cancel_sent",
                            "truncate_sent", "playout_stop", "turn_end"})
# id fields the server invents, by what they name
ID_FIELDS = {"response_id": "response", "item_id": "item", "previous_item_id": "item", "call_id": "call"}
ID_OBJECTS = {"response": "response", "item": "item"}
TRAILING_SILENCE_CHUNKS = 500
TRAILING_SILENCE_MARGIN_MS = 10_000


def _ids_in(obj: Any, out: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(category, id) of every server-made id in an event, in document order."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ID_FIELDS and isinstance(value, str):
                out.append((ID_FIELDS[key], value))
            elif key in ID_OBJECTS and isinstance(value, dict) and isinstance(value.get("id"), str):
                out.append((ID_OBJECTS[key], value["id"]))
            if isinstance(value, (dict, list)):
                _ids_in(value, out)
    elif isinstance(obj, list):
        for value in obj:
            _ids_in(value, out)
    return out


class IdMap:
    """The k-th response (item, call) id of the original session <-> the k-th of the replay."""

    def __init__(self, original_events: list[dict[str, Any]]) -> None:
        self._original: dict[str, tuple[str, int]] = {}
        counts: dict[str, int] = {}
        for event in original_events:
            for category, value in _ids_in(event, []):
                if value not in self._original:
                    self._original[value] = (category, counts.get(category, 0))
                    counts[category] = counts.get(category, 0) + 1
        self._replay: dict[str, list[str]] = {}
        self._seen: set[str] = set()

    def observe(self, event: dict[str, Any]) -> None:
        for category, value in _ids_in(event, []):
            if value not in self._seen:
                self._seen.add(value)
                self._replay.setdefault(category, []).append(value)

    def translate(self, obj: Any) -> Any:
        """`obj` with every original id that has a replay counterpart replaced by it."""
        if isinstance(obj, dict):
            return {key: self.translate(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.translate(value) for value in obj]
        if isinstance(obj, str) and obj in self._original:
            category, index = self._original[obj]
            seen = self._replay.get(category, [])
            return seen[index] if index < len(seen) else obj
        return obj


@dataclass(frozen=True)
class Step:
    """One thing to do at `offset_ns` after the stream start: send an event or write a mark."""

    offset_ns: int
    record: dict[str, Any]
    with_send: bool = False   # a mark written at the same instant as the send before it


def stream_start_ns(trace: Trace) -> int:
    for record in trace.records:
        if record.get("mark") == Mark.STREAM_START:
            return int(record.get("t0_ns") or record["t_ns"])
    raise ValueError("the bundle's trace never started its audio stream; it cannot be replayed on a schedule")


def session_length_ns(trace: Trace) -> int:
    """From the stream start to the original caller's close (or its last record)."""
    closes = [r["t_ns"] for r in trace.records if r.get("mark") == Mark.CLOSE]
    end = closes[0] if closes else max((r["t_ns"] for r in trace.records if "t_ns" in r), default=0)
    return max(0, end - stream_start_ns(trace))


def schedule_from_trace(trace: Trace) -> list[Step]:
    """The caller's side of the session after the stream start, as timed steps."""
    t0 = stream_start_ns(trace)
    steps: list[Step] = []
    last_send_ns: int | None = None
    for record in trace.records:
        if record.get("t_ns", 0) < t0:
            continue
        if record.get("rec") == "send" and record.get("type") not in ("input_audio_buffer.append", "session.update"):
            steps.append(Step(max(0, record["t_ns"] - t0), record))
            last_send_ns = record["t_ns"]
        elif record.get("rec") == "mark" and record.get("mark") in REPLAYED_MARKS:
            steps.append(Step(max(0, record["t_ns"] - t0), record, with_send=record["t_ns"] == last_send_ns))
    return steps


def bundle_clip(trace: Trace, audio: bytes, fmt: AudioFormat, dialect: Dialect, wait_ms: float = 0.0) -> Clip:
    """The bundle's audio as the stream's background: one chunk per original append, in `fmt`, keeping
    each append's turn and speech flag; then silence, never the recording again (the session
    closes on the original's schedule, a few chunks after the recording ends, or at most
    `wait_ms` later while a turn waits for its answer, and the stream's background would
    otherwise loop)."""
    appends = [r for r in trace.records if r.get("rec") == "append"]
    original_fmt = AudioFormat(trace.header["format"])
    chunk_ms = float(trace.header["chunk_ms"])
    wire = audio if fmt is original_fmt else to_wire(from_wire(audio, original_fmt), original_fmt.rate_hz, fmt)
    recorded = min(len(appends), len(split_chunks(wire, fmt, chunk_ms)))
    wire = wire[:recorded * chunk_bytes(fmt, chunk_ms)]
    trailing = max(TRAILING_SILENCE_CHUNKS, int((wait_ms + TRAILING_SILENCE_MARGIN_MS) / chunk_ms) + 1)
    wire += silence_bytes(fmt, chunk_bytes(fmt, chunk_ms) * trailing)
    clip = wire_clip("bundle", wire, fmt, chunk_ms, dialect, segments_ms=[])
    last_turn = appends[-1].get("turn") if appends else None
    return replace(clip, speech=tuple(bool(r.get("speech")) for r in appends[:recorded]) + clip.speech[recorded:],
                   turns=tuple(r.get("turn") for r in appends[:recorded]) + (last_turn,) * (len(clip) - recorded))


def session_config(trace: Trace, fmt: AudioFormat) -> SessionConfig:
    original = Dialect(trace.header["dialect"])
    body = trace.header.get("session_config")
    cfg = parse_session_update(body, original, default_session_config(original)) if body else \
        default_session_config(original)
    cfg.input_format = cfg.output_format = fmt
    return cfg


SPIN_NS = 2_000_000    # long timed waits overshoot: the last 2 ms before a step go in short slices
SLICE_NS = 200_000


class PendingTurns:
    """Turns whose original end has come while this session's answer has not: each ends "ok" when
    its answer is done, or "timeout" once the turn timeout has passed since the original end
    (recorded as the caller records any timeout), so a target that never answers is not
    reported as having answered."""

    def __init__(self, session: Session, timeout_ns: int) -> None:
        self.session, self.timeout_ns = session, timeout_ns
        self.deadlines: dict[int, int] = {}

    def _answered(self, turn: int) -> bool:
        meter = self.session.meter
        answer, follow = meter.answer(turn), meter.follow(turn)
        return answer is not None and answer.done and (follow is None or follow.done)

    def end(self, turn: int, now_ns: int) -> None:
        if self._answered(turn):
            self.session.end_turn(turn, "ok")
        else:
            self.deadlines[turn] = now_ns + self.timeout_ns

    def settle(self, now_ns: int) -> None:
        for turn, deadline_ns in list(self.deadlines.items()):
            if self._answered(turn):
                del self.deadlines[turn]
                self.session.end_turn(turn, "ok")
            elif now_ns >= deadline_ns:
                del self.deadlines[turn]
                answer = self.session.meter.answer(turn)
                self.session.timeout_turn(turn, self.timeout_ns / 1e9, "response" if answer is None else "response_done")

    @property
    def last_deadline_ns(self) -> int | None:
        return max(self.deadlines.values(), default=None)


def _serve_until(session: Session, due_ns: int, ids: IdMap, pending: PendingTurns | None = None) -> None:
    """Serve the inbox (learning the new session's ids, ending the turns whose answer came) until `due_ns`."""
    while (left_ns := due_ns - time.perf_counter_ns()) > 0:
        wait_ns = left_ns - SPIN_NS if left_ns > SPIN_NS else min(left_ns, SLICE_NS)
        for item in session.events(wait_ns / 1e9):
            if item.event is not None:
                ids.observe(item.event.to_dict())
        if pending is not None and pending.deadlines:
            pending.settle(time.perf_counter_ns())


def play_schedule(bundle_dir: Path, spec: SessionSpec, stop: Any = None) -> Path:
    """Replay the bundle's session on its recorded schedule; returns the new trace's path.

    The session settings are `spec.session_config` (the caller converts them for another dialect),
    else the recorded ones in `spec.fmt`."""
    trace = read_trace(bundle_trace(Path(bundle_dir)) or Path(bundle_dir) / PLAIN_TRACE_FILE)
    audio = read_audio(Path(bundle_dir))
    fmt, dialect = AudioFormat(spec.fmt), Dialect(spec.dialect)
    clip = bundle_clip(trace, audio, fmt, dialect, wait_ms=spec.turn_timeout_s * 1000.0)
    steps = schedule_from_trace(trace)
    ids = IdMap([r["event"] for r in trace.records if r.get("rec") == "recv" and isinstance(r.get("event"), dict)])
    # offsets were recorded at the original's real-time factor; a new one stretches or squeezes them
    scale = float(trace.header.get("rtf") or 1.0) / spec.rtf
    with Session(spec, stop=stop, corpus_name=str(trace.header.get("corpus") or "")) as session:
        config = spec.session_config if spec.session_config is not None else session_config(trace, fmt)
        if not session.open(config, background=clip):
            return session.trace_path
        assert session.stream is not None
        t0 = session.stream.t0_ns
        last_send_ns = t0
        pending = PendingTurns(session, int(spec.turn_timeout_s * 1e9))
        for step in steps:
            due_ns = t0 + int(step.offset_ns * scale)
            _serve_until(session, due_ns, ids, pending)
            record = ids.translate(step.record)
            if record.get("rec") == "send":
                event = decode_client(json.dumps(record["event"]))
                last_send_ns = session.send(event.kind, **event.fields)
                continue
            fields = {k: v for k, v in record.items() if k not in ("rec", "t_ns", "mark")}
            name = record["mark"]
            at_ns = last_send_ns if step.with_send else due_ns
            if name == "turn_start":
                session.turns_started += 1
                session.open_turns.add(int(record["turn"]))
            if name == "playout_stop":
                session.stop_playout(str(record.get("response_id")), at_ns, str(record.get("reason")))
            elif name == "turn_end":
                pending.end(int(record["turn"]), due_ns)   # ok once answered; the metrics judge the rest
            else:
                session.rec.mark(name, at_ns, **fields)
        # keep listening as long as the original session lasted after its last step, and for
        # turns still waiting for their answer, until it comes or their timeout passes
        _serve_until(session, t0 + int(session_length_ns(trace) * scale), ids, pending)
        while pending.deadlines:
            _serve_until(session, min(pending.deadlines.values()) + 1, ids, pending)
            pending.settle(time.perf_counter_ns())
    return session.trace_path
