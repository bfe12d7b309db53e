"""Recognising which corpus utterance a stream of received audio holds, by exact byte anchors.

The simulator receives the caller's audio as wire bytes and wants to know which utterance it is
(to answer with the right transcript, to decide on a function call). The caller sends
`Utterance.wire(fmt)` unmodified, so the bytes themselves identify it: for each utterance two
anchors are taken, the loudest 20 ms of audio near the start of its speech and near the end,
and a received buffer is searched for them with `bytes.find` (C speed, any alignment, a few ms
for a whole corpus against seconds of audio). A match also tells where the utterance's first
byte sits in the buffer, so the true end of speech is known to the byte.

What it cannot do: audio that was changed on the way (noise mixed in, gain, a different
encoder) does not match; `identify` then returns None and the caller needs another policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.audio import from_wire

if TYPE_CHECKING:
    from harness.corpus.loader import Corpus, Utterance
    from harness.protocol import AudioFormat

ANCHOR_MS = 20.0
SEARCH_SPAN_MS = 500.0  # where an anchor may sit: this much after speech start / before speech end


@dataclass(frozen=True)
class Anchor:
    """A run of wire bytes that occurs at `offset` bytes into one utterance's wire audio."""

    utterance: Utterance
    offset: int
    key: bytes


@dataclass(frozen=True)
class Match:
    """An utterance found in a buffer; `start` is where its byte 0 sits there (may be negative)."""

    utterance: Utterance
    start: int
    bytes_per_ms: float

    def buffer_offset_ms(self, utterance_ms: float) -> float:
        """Where `utterance_ms` of the utterance falls in the buffer, in ms of buffer audio."""
        return self.start / self.bytes_per_ms + utterance_ms

    @property
    def speech_end_in_buffer_ms(self) -> float | None:
        """The true end of speech, as ms into the searched buffer."""
        end = self.utterance.speech_end_ms
        return None if end is None else self.buffer_offset_ms(end)


def _loudest_window(samples: np.ndarray, first: int, last: int, width: int) -> int:
    """Sample index where the `width`-sample window with most energy in [first, last) begins."""
    last = max(first + width, min(last, samples.size))
    first = max(0, min(first, samples.size - width))
    span = samples[first:last].astype(np.float64) ** 2
    if span.size <= width:
        return first
    energy = np.convolve(span, np.ones(width), mode="valid")
    return first + int(np.argmax(energy))


def anchors_for(utt: Utterance, fmt: AudioFormat) -> list[Anchor]:
    """The start and end anchors of one speech utterance in `fmt` (none for noise)."""
    if utt.speech_start_ms is None or utt.speech_end_ms is None:
        return []
    wire = utt.wire(fmt)
    samples = from_wire(wire, fmt)
    per_ms = fmt.rate_hz / 1000.0
    width = max(1, int(ANCHOR_MS * per_ms))
    start, end = utt.speech_start_ms * per_ms, utt.speech_end_ms * per_ms
    spans = [(start, min(end, start + SEARCH_SPAN_MS * per_ms)), (max(start, end - SEARCH_SPAN_MS * per_ms), end)]
    anchors: list[Anchor] = []
    for first, last in spans:
        at = _loudest_window(samples, int(first), int(last), width) * fmt.bytes_per_sample
        key = wire[at : at + width * fmt.bytes_per_sample]
        if key and len(set(key)) > 1 and all(a.offset != at for a in anchors):
            anchors.append(Anchor(utt, at, key))
    return anchors


class FingerprintIndex:
    """Finds corpus utterances in received wire audio of one format."""

    def __init__(self, corpus: Corpus, fmt: AudioFormat) -> None:
        self.format = fmt
        self.bytes_per_ms = fmt.rate_hz * fmt.bytes_per_sample / 1000.0
        self.anchors = [a for utt in corpus.utterances for a in anchors_for(utt, fmt)]

    def identify(self, buffer: bytes) -> Match | None:
        """The utterance whose anchor occurs earliest in `buffer`, or None.

        Pass everything received for the current turn (or the whole input so far); a buffer that
        holds at least 20 ms of the loud part of an utterance's first or last 0.5 s of speech is
        enough.
        """
        best: tuple[int, Anchor] | None = None
        for anchor in self.anchors:
            found = buffer.find(anchor.key)
            if found < 0 or (found - anchor.offset) % self.format.bytes_per_sample:
                continue
            start = found - anchor.offset
            if best is None or start < best[0]:
                best = (start, anchor)
        if best is None:
            return None
        return Match(best[1].utterance, best[0], self.bytes_per_ms)
