"""One pacer per process sends every due audio chunk of every session, on absolute deadlines.

Each session owns an `AudioStream`: an endless run of chunks (queued utterances, otherwise the
background filler, silence by default, as a live microphone keeps sending). Chunk k of a stream
is due at `t0 + k * chunk_ms / rtf`, computed in integers from the stream start, so the schedule
never drifts however late individual sends are. The pacer keeps every stream in one heap by
next deadline, sends everything due, sleeps until the next deadline (a new stream wakes it), and
yields once per 1 ms slot of sending when it is behind, so receive loops run (a pacer that never
yields starves every receiver of the process).

Under Locust's gevent monkey-patching the pacer thread is a greenlet and `time.sleep` a
cooperative sleep; elsewhere it is a daemon thread. It is created on first use (`get_pacer`),
never at import, because Locust forks its worker processes after importing the locustfile.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections import deque
from fractions import Fraction
from dataclasses import dataclass
from typing import Any, Callable

from harness.runtime import defer_full_collections
from harness.trace.vocabulary import Mark

_NS_PER_MS = 1_000_000
SLOT_NS = _NS_PER_MS


@dataclass(frozen=True)
class Clip:
    """A run of encoded append messages. `utterance` is set for corpus speech, None for fillers."""

    name: str
    messages: tuple[bytes, ...]
    sha1: tuple[str, ...]
    speech: tuple[bool, ...]
    chunk_bytes: int
    chunk_ms: float
    utterance: Any = None
    # The turn each chunk belongs to, for a background clip that carries whole turns (a replayed
    # session's exact audio); None: background chunks belong to the stream's current turn.
    turns: tuple[int | None, ...] | None = None

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def audio_ms(self) -> float:
        return len(self.messages) * self.chunk_ms

    def chunk_of(self, at_ms: float) -> tuple[int, float]:
        """(index of the chunk holding the sample at `at_ms`, offset of that sample inside it)."""
        index = min(max(int(at_ms // self.chunk_ms), 0), len(self.messages) - 1)
        return index, at_ms - index * self.chunk_ms


class LatenessHistogram:
    """Send lateness of every append of the process, in 0.1 ms buckets (cheap, mergeable)."""

    BUCKET_NS = 100_000
    BUCKETS = 20_000    # up to 2 s; later sends land in the last bucket

    def __init__(self) -> None:
        self.counts = [0] * self.BUCKETS
        self.total = 0
        self.max_ns = 0

    def add(self, late_ns: int) -> None:
        index = late_ns // self.BUCKET_NS if late_ns > 0 else 0
        self.counts[index if index < self.BUCKETS else self.BUCKETS - 1] += 1
        self.total += 1
        if late_ns > self.max_ns:
            self.max_ns = late_ns

    def percentile_ms(self, q: float) -> float | None:
        """Upper edge of the bucket holding the q-th percentile (0 < q <= 100)."""
        if not self.total:
            return None
        rank = q / 100.0 * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if count and seen >= rank:
                return (index + 1) * self.BUCKET_NS / _NS_PER_MS
        return self.max_ns / _NS_PER_MS

    def summary(self) -> dict[str, float | int | None]:
        return {"count": self.total, "p50_ms": self.percentile_ms(50), "p99_ms": self.percentile_ms(99),
                "max_ms": self.max_ns / _NS_PER_MS if self.total else None}


class AudioStream:
    """One session's outgoing audio. The session queues clips; only the pacer sends."""

    def __init__(self, send: Callable[[bytes], Any], recorder: Any, background: Clip, *,
                 chunk_ms: float, rtf: float = 1.0, lateness_limit_ms: float = 20.0,
                 notify: Callable[[str, int | None, int], None] | None = None,
                 stop_flag: Any = None, tick_chunks: int = 0) -> None:
        self._send = send
        self._rec = recorder
        self._notify = notify
        self.chunk_ms = chunk_ms
        period = Fraction(chunk_ms).limit_denominator(10**6) * _NS_PER_MS / Fraction(rtf).limit_denominator(10**6)
        self._period_num, self._period_den = period.numerator, period.denominator
        self._rtf = rtf
        self._limit_ns = int(lateness_limit_ms * _NS_PER_MS)
        self._queue: deque[tuple[Clip, int, str]] = deque()
        self.background = background
        self._background_pos = 0
        self._current: tuple[Clip, int, str] | None = None
        self._index = 0
        self.turn: int | None = None
        self.k = 0
        self.t0_ns = 0
        self.next_deadline_ns = 0
        self.closed = False
        self.error: BaseException | None = None
        self._invalid_turns: set[int] = set()
        self._utt_input_ms = 0.0
        self._boundaries: dict[int, list[tuple[str, float, float]]] = {}
        # The pacer runs every few ms anyway, so it watches the session's stop flag and wakes the
        # session's waits with a "tick" every `tick_chunks` chunks: far cheaper than each waiting
        # session polling on a timer (under gevent every expiring timeout raises in its greenlet).
        self._stop_flag = stop_flag
        self._tick_chunks = tick_chunks
        self._backlogged = False

    # -- session side -------------------------------------------------------------------------
    def play(self, clip: Clip, turn: int, expect: str) -> None:
        """Queue an utterance as turn `turn`; its marks are written as its chunks go out."""
        self._queue.append((clip, turn, expect))

    def set_background(self, clip: Clip) -> None:
        """What to send while no utterance is queued (silence, or noise for noisy playback)."""
        if clip is not self.background:
            self.background, self._background_pos = clip, 0

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._queue)

    def input_ms(self) -> float:
        """Input-audio time of the next chunk (the session's audio clock as the server counts it)."""
        return self.k * self.chunk_ms

    def deadline_ns(self, k: int) -> int:
        return self.t0_ns + k * self._period_num // self._period_den

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        """The session is over: drop its notify callback (it references the session)."""
        self.closed = True
        self._notify = None

    # -- pacer side ---------------------------------------------------------------------------
    def start(self, t0_ns: int) -> None:
        self.t0_ns = t0_ns
        self.next_deadline_ns = t0_ns

    def send_due(self, clock_ns: Callable[[], int]) -> int | None:
        """Send chunk k (due at `next_deadline_ns`) and record it; returns its lateness in ns.

        None when the stream is finished (closed, or the send failed: the socket is gone).
        """
        if self.closed:
            return None
        if self._current is None and self._queue:
            self._current, self._index = self._queue.popleft(), 0
        sched_ns = self.next_deadline_ns
        k = self.k
        input_ms = k * self.chunk_ms
        turn: int | None
        if self._current is not None:
            clip, turn, expect = self._current
            index = self._index
        else:
            clip, turn, expect, index = self.background, self.turn, "", self._background_pos
            if clip.turns is not None:
                turn = clip.turns[index]
        t_ns = clock_ns()
        try:
            backlog = self._send(clip.messages[index])
        except OSError as exc:
            self.error = exc
            self.closed = True
            if self._notify:
                self._notify("stream_failed", self.turn, t_ns)
            return None
        self.k = k + 1
        self.next_deadline_ns = self.deadline_ns(k + 1)
        late_ns = t_ns - sched_ns
        rec = self._rec
        if backlog or self._backlogged:
            # The target is not reading: our sends are on time but queue behind unread bytes.
            self._backlogged = bool(backlog)
            rec.mark(Mark.SEND_BACKLOG, t_ns, turn=turn, bytes=backlog or 0)
        rec.append(t_ns, sched_ns, k, turn, clip.chunk_bytes, self.chunk_ms, input_ms, clip.speech[index],
                   clip.sha1[index])
        if self._current is not None and turn is not None:
            self._utterance_marks(clip, turn, expect, index, t_ns, input_ms)
        else:
            self._background_pos = (index + 1) % len(clip)
        if self._notify is not None:
            if self._stop_flag is not None and self._stop_flag.is_set():
                self._stop_flag = None
                self._notify("stop", self.turn, t_ns)
            elif self._tick_chunks and k % self._tick_chunks == 0:
                self._notify("tick", self.turn, t_ns)
        if late_ns > self._limit_ns and turn is not None and turn not in self._invalid_turns:
            self._invalid_turns.add(turn)
            rec.mark(Mark.PACING_INVALID, t_ns, turn=turn, seq=k, lateness_ms=late_ns / _NS_PER_MS,
                     limit_ms=self._limit_ns / _NS_PER_MS)
        return late_ns

    def _utterance_marks(self, clip: Clip, turn: int, expect: str, index: int, t_ns: int, input_ms: float) -> None:
        utt = clip.utterance
        rec = self._rec
        if index == 0:
            self.turn = turn
            self._utt_input_ms = input_ms
            rec.mark(Mark.TURN_START, t_ns, turn=turn, utterance=utt.id, transcript=utt.transcript,
                     segments_ms=[list(s) for s in utt.segments_ms], speech_start_ms=utt.speech_start_ms,
                     speech_end_ms=utt.speech_end_ms, input_ms=input_ms, expect=expect)
            # Which chunks hold the speech boundaries, worked out once per utterance, not per chunk.
            self._boundaries = {}
            for name, at_ms in (("speech_start_sent", utt.speech_start_ms), ("speech_end_sent", utt.speech_end_ms)):
                if at_ms is not None:
                    chunk, offset_ms = clip.chunk_of(at_ms)
                    self._boundaries.setdefault(chunk, []).append((name, at_ms, offset_ms))
        for name, at_ms, offset_ms in self._boundaries.get(index, ()):
            fields: dict[str, Any] = {"turn": turn}
            if name == "speech_end_sent":
                fields["input_ms"] = self._utt_input_ms + at_ms
            rec.mark(name, t_ns + int(offset_ms / self._rtf * _NS_PER_MS), **fields)
            if name == "speech_end_sent" and self._notify:
                self._notify("speech_end_sent", turn, t_ns)
        self._index = index + 1
        if self._index >= len(clip):
            self._current = None
            if self._notify:
                self._notify("utterance_sent", turn, t_ns)

    @property
    def invalid_turns(self) -> set[int]:
        return set(self._invalid_turns)


class Pacer:
    """Sends for every registered stream. `step()` is one slot; the thread loops over it."""

    def __init__(self, clock_ns: Callable[[], int] = time.perf_counter_ns,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock_ns
        self._sleep = sleep
        self._heap: list[tuple[int, int, AudioStream]] = []
        self._pending: deque[AudioStream] = deque()
        self._ids = itertools.count()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.lateness = LatenessHistogram()
        self.pid = os.getpid()

    def add(self, stream: AudioStream, start: bool = True) -> None:
        """Start `stream` now: its chunk 0 is due immediately."""
        stream.start(self._clock())
        self._pending.append(stream)
        self._wake.set()
        if start:
            self._ensure_thread()

    def next_deadline_ns(self) -> int | None:
        """When the next chunk is due (now for a stream just added); None when idle."""
        if self._pending:
            return self._clock()
        return self._heap[0][0] if self._heap else None

    @property
    def active(self) -> int:
        return len(self._heap) + len(self._pending)

    def step(self) -> int | None:
        """Send every chunk due now; returns ns until the next deadline, or None when idle."""
        heap = self._heap
        while self._pending:
            stream = self._pending.popleft()
            heapq.heappush(heap, (stream.next_deadline_ns, next(self._ids), stream))
        clock = self._clock
        now = clock()
        slot_end = now + SLOT_NS
        sent = 0
        lateness = self.lateness
        while heap and heap[0][0] <= now:
            deadline, order, stream = heapq.heappop(heap)
            if stream.closed:
                continue
            late_ns = stream.send_due(clock)
            if late_ns is None:
                continue
            lateness.add(late_ns)
            heapq.heappush(heap, (stream.next_deadline_ns, order, stream))
            sent += 1
            if sent % 32 == 0 and clock() > slot_end:
                break   # a full slot of work: yield, the rest goes out after the others ran
        if not heap:
            return None
        return max(0, heap[0][0] - clock())

    def _run(self) -> None:
        while True:
            self._wake.clear()
            delay_ns = self.step()
            if delay_ns is None:
                self._wake.wait(1.0)
            elif delay_ns <= 0:
                self._sleep(0)      # behind: yield once per slot so receive loops run, then go on
            else:
                # Asleep until the next deadline, not in 1 ms slots: a new stream (`add` sets the
                # event) wakes it at once, so its chunk 0 is not held back.
                self._wake.wait(delay_ns / 1e9)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="harness-pacer", daemon=True)
                self._thread.start()


_pacer: Pacer | None = None
_pacer_lock = threading.Lock()


def get_pacer() -> Pacer:
    """The process's pacer, created on first use (again in a forked child).

    Creating it also sets the garbage collector up for the run (harness.runtime: the import-time
    heap frozen, full collections deferred).
    """
    global _pacer
    with _pacer_lock:
        if _pacer is None or _pacer.pid != os.getpid():
            _pacer = Pacer()
            defer_full_collections()
        return _pacer

