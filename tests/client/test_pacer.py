"""The pacer on a fake clock: absolute deadlines, no drift, no chunk skipped, lateness recorded."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.client.pacer import AudioStream, Clip, LatenessHistogram, Pacer
from harness.trace import TraceRecorder, read_trace

MS = 1_000_000


@dataclass
class FakeClock:
    """Time moves only when the pacer sleeps or sends; every sleep overshoots a little."""

    now_ns: int = 5_000_000_000
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    stall_at_ns: int | None = None
    stall_ns: int = 0

    def clock(self) -> int:
        return self.now_ns

    def sleep(self, seconds: float) -> None:
        self.now_ns += int(seconds * 1e9) + self.rng.randrange(0, 300_000)
        if self.stall_at_ns is not None and self.now_ns >= self.stall_at_ns:
            self.now_ns += self.stall_ns   # the whole process froze (a CPU hog, a GC pause)
            self.stall_at_ns = None

    def send_cost(self, _message: bytes) -> None:
        self.now_ns += self.rng.randrange(2_000, 40_000)


def _clip(name: str, n_chunks: int, chunk_ms: float = 20.0, utterance: Any = None,
          speech: tuple[bool, ...] | None = None) -> Clip:
    return Clip(name=name, messages=tuple(f"{name}-{i}".encode() for i in range(n_chunks)),
                sha1=tuple("0" * 40 for _ in range(n_chunks)),
                speech=speech or tuple(False for _ in range(n_chunks)), chunk_bytes=960, chunk_ms=chunk_ms,
                utterance=utterance)


def _utterance(duration_chunks: int, start_ms: float, end_ms: float) -> SimpleNamespace:
    return SimpleNamespace(id="test/utt", transcript="hello", segments_ms=[(start_ms, end_ms)],
                           speech_start_ms=start_ms, speech_end_ms=end_ms, duration_ms=duration_chunks * 20.0)


def _run(pacer: Pacer, fake: FakeClock, until_ns: int) -> None:
    while fake.now_ns < until_ns:
        delay = pacer.step()
        fake.sleep(0 if delay is None else min(delay, MS) / 1e9)


def _stream(tmp_path: Path, fake: FakeClock, name: str, rtf: float = 1.0, limit_ms: float = 20.0,
            sent: list[tuple[int, bytes]] | None = None) -> tuple[AudioStream, TraceRecorder]:
    rec = TraceRecorder(tmp_path / f"{name}.jsonl", header={"run_id": "t", "session_id": name})
    log = sent if sent is not None else []

    def send(message: bytes) -> None:
        log.append((fake.now_ns, message))
        fake.send_cost(message)

    return AudioStream(send, rec, _clip("silence", 1), chunk_ms=20.0, rtf=rtf, lateness_limit_ms=limit_ms), rec


def test_sixty_seconds_of_chunks_stay_on_the_absolute_grid_whatever_the_sleep_jitter(tmp_path: Path) -> None:
    fake = FakeClock()
    pacer = Pacer(clock_ns=fake.clock, sleep=fake.sleep)
    streams = []
    for index, rtf in enumerate((1.0, 1.5, 3.0)):
        stream, rec = _stream(tmp_path, fake, f"s{index}", rtf=rtf)
        pacer.add(stream, start=False)
        streams.append((stream, rec, rtf))
        _run(pacer, fake, fake.now_ns + 7 * MS + 300_000)   # sessions start at unrelated phases
    _run(pacer, fake, fake.now_ns + 60_000 * MS)
    for stream, rec, rtf in streams:
        rec.close()
        appends = [r for r in read_trace(rec.path).records if r["rec"] == "append"]
        period_ns = 20 * MS / rtf
        assert [a["seq"] for a in appends] == list(range(len(appends)))
        assert len(appends) >= int(60_000 / (20 / rtf)) - 1
        for a in appends:
            assert a["sched_ns"] == stream.t0_ns + int(a["seq"] * period_ns)   # exact, no accumulated error
            assert 0 <= a["t_ns"] - a["sched_ns"] < 2 * MS
            assert a["input_ms"] == a["seq"] * 20.0
        last = appends[-1]
        assert last["t_ns"] - stream.t0_ns - int(last["seq"] * period_ns) < 2 * MS   # still on time after 60 s


def test_a_stall_makes_sends_late_then_catches_up_without_skipping_or_shifting_the_grid(tmp_path: Path) -> None:
    fake = FakeClock()
    fake.stall_at_ns = fake.now_ns + 1_000 * MS
    fake.stall_ns = 150 * MS
    pacer = Pacer(clock_ns=fake.clock, sleep=fake.sleep)
    stream, rec = _stream(tmp_path, fake, "stall")
    utt = _utterance(100, 500.0, 1500.0)
    stream.play(_clip("utt", 100, utterance=utt), turn=0, expect="response")
    pacer.add(stream, start=False)
    _run(pacer, fake, fake.now_ns + 3_000 * MS)
    rec.close()
    records = read_trace(rec.path).records
    appends = [r for r in records if r["rec"] == "append"]
    assert [a["seq"] for a in appends] == list(range(len(appends)))
    assert all(a["sched_ns"] == stream.t0_ns + a["seq"] * 20 * MS for a in appends)
    late_ms = [(a["t_ns"] - a["sched_ns"]) / MS for a in appends]
    assert max(late_ms) >= 140            # the frozen chunks went out late ...
    assert late_ms[-1] < 2                # ... and the grid was caught up, not shifted
    invalid = [r for r in records if r.get("mark") == "pacing_invalid"]
    assert len(invalid) == 1 and invalid[0]["turn"] == 0 and invalid[0]["lateness_ms"] > 20
    assert pacer.lateness.total == len(appends)
    assert pacer.lateness.max_ns >= 140 * MS


def test_an_utterance_is_sent_whole_then_silence_follows_and_marks_fall_inside_their_chunks(tmp_path: Path) -> None:
    fake = FakeClock()
    pacer = Pacer(clock_ns=fake.clock, sleep=fake.sleep)
    sent: list[tuple[int, bytes]] = []
    stream, rec = _stream(tmp_path, fake, "utt", rtf=2.0, sent=sent)
    pacer.add(stream, start=False)
    _run(pacer, fake, fake.now_ns + 55 * MS)          # leading silence: chunks 0..5
    utt = _utterance(10, 50.0, 130.0)
    stream.play(_clip("utt", 10, utterance=utt), turn=0, expect="response")
    _run(pacer, fake, fake.now_ns + 200 * MS)
    rec.close()
    records = read_trace(rec.path).records
    messages = [m for _, m in sent]
    first = messages.index(b"utt-0")
    assert messages[first:first + 10] == [f"utt-{i}".encode() for i in range(10)]
    assert set(messages[:first]) == {b"silence-0"} and set(messages[first + 10:]) == {b"silence-0"}
    appends = {a["seq"]: a for a in records if a["rec"] == "append"}
    marks = {r["mark"]: r for r in records if r["rec"] == "mark"}
    start = marks["turn_start"]
    assert start["input_ms"] == first * 20.0 and start["utterance"] == "test/utt" and start["expect"] == "response"
    # speech start at 50 ms: chunk 2 of the utterance, 10 ms into it, i.e. 5 ms of wall time at rtf 2
    chunk2 = appends[first + 2]
    assert marks["speech_start_sent"]["t_ns"] == chunk2["t_ns"] + 5 * MS
    chunk6 = appends[first + 6]
    assert marks["speech_end_sent"]["t_ns"] == chunk6["t_ns"] + 5 * MS
    assert marks["speech_end_sent"]["input_ms"] == first * 20.0 + 130.0
    assert all(appends[first + i]["turn"] == 0 for i in range(10))
    assert all(a["turn"] is None for s, a in appends.items() if s < first)


def test_a_failed_send_ends_the_stream_and_tells_the_session(tmp_path: Path) -> None:
    fake = FakeClock()
    pacer = Pacer(clock_ns=fake.clock, sleep=fake.sleep)
    told: list[str] = []
    rec = TraceRecorder(tmp_path / "f.jsonl", header={})
    calls = []

    def send(message: bytes) -> None:
        calls.append(message)
        if len(calls) == 3:
            raise ConnectionResetError("peer gone")

    stream = AudioStream(send, rec, _clip("silence", 1), chunk_ms=20.0,
                         notify=lambda what, turn, t: told.append(what))
    pacer.add(stream, start=False)
    _run(pacer, fake, fake.now_ns + 200 * MS)
    assert len(calls) == 3 and told == ["stream_failed"] and stream.closed
    assert pacer.step() is None    # the heap is empty: nothing else is attempted


def test_the_lateness_histogram_reports_bucket_upper_edges() -> None:
    hist = LatenessHistogram()
    for late_us in [50] * 98 + [3_000, 40_000]:
        hist.add(late_us * 1000)
    summary = hist.summary()
    assert summary["count"] == 100
    assert summary["p50_ms"] == 0.1
    assert summary["p99_ms"] == 3.1
    assert summary["max_ms"] == 40.0
