"""The caller's loudspeaker, modelled: when each response's audio would be heard.

No audio is played. A `Player` per response starts at the arrival of the first audio delta (plus
an optional jitter buffer), consumes audio at real time, and pauses when it runs dry until the
next delta arrives (an underrun). From the arrival times and durations of the deltas it answers:
how much had been played at any instant (the `audio_end_ms` of a truncate), when playback ends,
and how many underruns of what length happened. The state is a pure function of the arrivals,
so it is tested with synthetic timestamps and replayed exactly from a trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_NS_PER_MS = 1_000_000


@dataclass
class Underrun:
    t_ns: int      # when the buffer ran dry
    ms: float      # how long the caller heard nothing before the next delta


@dataclass
class Player:
    response_id: str
    item_id: str | None = None
    jitter_ms: float = 0.0
    start_ns: int | None = None
    arrivals: list[tuple[int, float]] = field(default_factory=list)   # (t_ns, ms) per delta
    underruns: list[Underrun] = field(default_factory=list)
    received_ms: float = 0.0
    audio_done: bool = False
    stopped_ns: int | None = None
    stopped_ms: float | None = None
    _dry_ns: int = 0   # when the audio received so far runs out (moves on with each delta)

    def add(self, t_ns: int, ms: float) -> Underrun | None:
        """Account one audio delta of `ms` arriving at `t_ns`; returns the underrun it ended, if any."""
        if self.stopped_ns is not None:
            return None
        self.arrivals.append((t_ns, ms))
        self.received_ms += ms
        if self.start_ns is None:
            self.start_ns = t_ns + int(self.jitter_ms * _NS_PER_MS)
            self._dry_ns = self.start_ns + int(ms * _NS_PER_MS)
            return None
        if t_ns > self._dry_ns:
            gap = Underrun(t_ns=self._dry_ns, ms=(t_ns - self._dry_ns) / _NS_PER_MS)
            self.underruns.append(gap)
            self._dry_ns = t_ns + int(ms * _NS_PER_MS)
            return gap
        self._dry_ns += int(ms * _NS_PER_MS)
        return None

    @property
    def started(self) -> bool:
        return self.start_ns is not None

    @property
    def end_ns(self) -> int | None:
        """When playback of everything received so far ends (or ended when stopped)."""
        if self.start_ns is None:
            return None
        return self.stopped_ns if self.stopped_ns is not None else self._dry_ns

    def played_ms(self, at_ns: int) -> float:
        """Audio heard by `at_ns`, replaying the arrivals: runs at real time, pauses while dry."""
        if self.start_ns is None or at_ns <= self.start_ns:
            return 0.0
        if self.stopped_ns is not None and at_ns >= self.stopped_ns:
            return self.stopped_ms or 0.0
        clock = self.start_ns       # how far the play head's time has advanced
        played = 0.0
        buffered = 0.0
        for t_ns, ms in self.arrivals:
            if t_ns > at_ns:
                break
            if t_ns > clock:        # play what is buffered between the head and this arrival
                step = min(buffered, (t_ns - clock) / _NS_PER_MS)
                played += step
                buffered -= step
                clock = t_ns
            buffered += ms
        played += min(buffered, max(0, at_ns - clock) / _NS_PER_MS)
        return played

    def stop(self, at_ns: int) -> float:
        """Stop playback at `at_ns` (barge-in, cancel); returns the played position in ms."""
        if self.stopped_ns is None:
            self.stopped_ms = self.played_ms(at_ns)
            self.stopped_ns = at_ns
        return self.stopped_ms or 0.0

    @property
    def underrun_ms(self) -> float:
        return sum(u.ms for u in self.underruns)
