"""What the caller would hear of one chunk of received audio: its peak, and where it becomes audible.

`chunk_levels(raw, fmt)` decodes one output-audio delta in its declared format and returns its
peak level and the offset of its first audible sample. A sample is audible when its magnitude
reaches `AUDIBLE_PEAK` (-50 dBFS, 104 of 32,768): G.711's silence codes (µ-law 0xFF decodes to 0,
A-law 0xD5 to 8) and dither stay below it, speech onsets pass it within a few milliseconds.
It also counts zero crossings of the audible part, a cheap sign of what the bytes are: speech
crosses zero a few times per millisecond (rate about 0.02-0.15 per sample); bytes of one format
read as another look like white noise (rate about 0.5).

The receive loop calls `chunk_peak` on every delta (a few microseconds) and `chunk_levels` only
on the first audible delta of a response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio.g711 import alaw_decode, ulaw_decode
from harness.protocol.formats import AudioFormat

AUDIBLE_PEAK = 104          # -50 dBFS on int16


@dataclass(frozen=True)
class ChunkLevels:
    peak: int                          # max |sample|, int16 scale
    first_audible_ms: float | None     # offset inside the chunk of its first audible sample
    crossing_rate: float | None        # zero crossings per sample over the chunk, when audible


def _samples(raw: bytes, fmt: AudioFormat) -> np.ndarray:
    if fmt is AudioFormat.PCM16:
        usable = len(raw) - (len(raw) % 2)
        return np.frombuffer(raw[:usable], dtype="<i2")
    codes = np.frombuffer(raw, dtype=np.uint8)
    return ulaw_decode(codes) if fmt is AudioFormat.G711_ULAW else alaw_decode(codes)


def chunk_peak(raw: bytes, fmt: AudioFormat) -> int:
    """Max |sample| of the chunk on the int16 scale (the per-delta check: two reductions, no copy
    for pcm16)."""
    samples = _samples(raw, fmt)
    if samples.size == 0:
        return 0
    return max(int(samples.max()), -int(samples.min()))


def chunk_levels(raw: bytes, fmt: AudioFormat) -> ChunkLevels:
    """Peak, first audible sample and crossing rate: for the first audible chunk of a response."""
    samples = _samples(raw, fmt)
    if samples.size == 0:
        return ChunkLevels(0, None, None)
    magnitude = np.abs(samples.astype(np.int32))
    peak = int(magnitude.max())
    if peak < AUDIBLE_PEAK:
        return ChunkLevels(peak, None, None)
    first = int(np.argmax(magnitude >= AUDIBLE_PEAK))
    signs = np.signbit(samples)
    crossings = float(np.count_nonzero(signs[1:] != signs[:-1])) / max(1, samples.size - 1)
    return ChunkLevels(peak, first * 1000.0 / fmt.rate_hz, crossings)
