"""Rational-ratio resampling with a Kaiser-windowed sinc, evaluated as a polyphase filter.

The conversions the harness needs (24 kHz <-> 16 kHz <-> 8 kHz, and whatever rate a user's WAV
has) are all ratios L/M of small integers. The filter is designed at the upsampled rate L*from_hz
with its passband ending at 85 % of the lower Nyquist frequency and its stopband (>= 80 dB down)
starting at that Nyquist frequency, so nothing folds back into the band that survives: a 5 kHz
tone going to 8 kHz is removed, a 3.4 kHz telephone band is kept. Each output sample needs only
the taps of one phase (about 2*half_width of them); outputs sharing a phase are computed together,
one strided multiply-add per tap.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

STOPBAND_DB = 80.0
PASSBAND_FRACTION = 0.85  # passband edge as a fraction of the lower Nyquist frequency


@lru_cache(maxsize=32)
def _phase_filters(up: int, down: int) -> tuple[np.ndarray, int]:
    """(phases, taps_per_phase): row r holds the taps h[r + t*up], scaled for unity DC gain."""
    nyquist = 0.5 / max(up, down)  # in cycles per upsampled sample
    transition = (1.0 - PASSBAND_FRACTION) * nyquist
    cutoff = nyquist - transition / 2
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    length = (STOPBAND_DB - 8.0) / (2.285 * 2 * math.pi * transition)
    half_inputs = max(1, math.ceil(length / 2 / up))  # half-width counted in input samples
    half = half_inputs * up
    m = np.arange(-half, half + 1, dtype=np.float64)
    taps = 2 * cutoff * np.sinc(2 * cutoff * m) * np.kaiser(2 * half + 1, beta)
    taps *= up / taps.sum()
    per_phase = 2 * half_inputs + 1
    padded = np.zeros(per_phase * up, dtype=np.float64)
    padded[: taps.size] = taps
    return padded.reshape(per_phase, up).T.copy(), per_phase


def _resample_float(x: np.ndarray, up: int, down: int) -> np.ndarray:
    phases, per_phase = _phase_filters(up, down)
    half = (per_phase - 1) // 2
    n_out = -(-x.size * up // down)
    # Zeros around the input stand for the silence before and after it.
    padded = np.concatenate([np.zeros(per_phase), x.astype(np.float64), np.zeros(per_phase + 2 * down)])
    out = np.empty(n_out, dtype=np.float64)
    for first in range(min(up, n_out)):
        # Outputs first, first+up, first+2*up... use the same phase and advance `down` input
        # samples each, so each tap is one strided multiply-add over all of them.
        position = first * down + half * up  # the filter's centre sits at upsampled index n*down
        phase, newest = position % up, position // up + per_phase
        count = -(-(n_out - first) // up)
        acc = np.zeros(count)
        for tap in range(per_phase):
            start = newest - tap
            acc += phases[phase, tap] * padded[start : start + down * (count - 1) + 1 : down]
        out[first::up] = acc
    return out


def resample(x: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample mono `x` (int16 or float) from `from_hz` to `to_hz`, anti-aliased; same dtype back.

    The output has ceil(len(x) * to_hz / from_hz) samples and is time-aligned with the input
    (the filter is symmetric and its delay is compensated). int16 output is rounded and clipped.
    """
    samples = np.asarray(x)
    if samples.ndim != 1:
        raise ValueError(f"resample needs a mono (1-D) array, got shape {samples.shape}")
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_hz} -> {to_hz}")
    if from_hz == to_hz or samples.size == 0:
        return samples.copy()
    g = math.gcd(int(from_hz), int(to_hz))
    out = _resample_float(samples, int(to_hz) // g, int(from_hz) // g)
    if samples.dtype == np.int16:
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    if np.issubdtype(samples.dtype, np.floating):
        return out.astype(samples.dtype)
    raise TypeError(f"resample handles int16 or float arrays, got {samples.dtype}")


class StreamResampler:
    """`resample` for audio that arrives in pieces (a simulator decoding appends, say).

    Feeding chunks to `process` and calling `flush` at the end gives exactly what `resample`
    gives for the whole signal; each output is emitted as soon as the input it needs (about
    half the filter, a few ms) has arrived. Works on float64; callers convert.
    """

    def __init__(self, from_hz: int, to_hz: int) -> None:
        g = math.gcd(int(from_hz), int(to_hz))
        self.up, self.down = int(to_hz) // g, int(from_hz) // g
        self.phases, self.per_phase = _phase_filters(self.up, self.down)
        self.half = (self.per_phase - 1) // 2
        self.history = np.zeros(self.per_phase, dtype=np.float64)  # inputs before index 0 are silence
        self.base = -self.per_phase  # input index of history[0]
        self.received = 0
        self.emitted = 0

    def _emit(self, n_end: int) -> np.ndarray:
        n = np.arange(self.emitted, n_end, dtype=np.int64)
        if n.size == 0:
            return np.zeros(0, dtype=np.float64)
        position = n * self.down + self.half * self.up
        newest = position // self.up - self.base
        window = self.history[newest[:, None] - np.arange(self.per_phase)[None, :]]
        out = np.einsum("ij,ij->i", window, self.phases[position % self.up])
        self.emitted = n_end
        keep_from = int((self.emitted * self.down + self.half * self.up) // self.up) - self.per_phase + 1 - self.base
        if keep_from > 0:
            self.history = self.history[keep_from:]
            self.base += keep_from
        return out

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed the next input samples; returns the outputs that are now complete."""
        self.history = np.concatenate([self.history, np.asarray(chunk, dtype=np.float64)])
        self.received += len(chunk)
        # Output n needs inputs up to (n*down + half*up) // up.
        ready = max(0, -(-((self.received - self.half) * self.up) // self.down))
        return self._emit(max(self.emitted, ready))

    def flush(self) -> np.ndarray:
        """The outputs still owed, computed with silence after the last input."""
        total = -(-self.received * self.up // self.down)
        self.history = np.concatenate([self.history, np.zeros(self.per_phase + 2 * self.down)])
        return self._emit(max(self.emitted, total))
