"""The simulator's spoken answers: wire audio of a given length in any output format.

`tone` is a harmonic tone with a syllable-like envelope (about 4 syllables a second with short
gaps), so an energy VAD or a listener hears "speech" and silence-based checks behave as with a
voice. `corpus` loops real corpus recordings. Either way the audio is rendered once per format
and then sliced, so answering costs no DSP while sessions run.
"""

from __future__ import annotations

import base64
import threading
from typing import TYPE_CHECKING

import numpy as np

from harness.audio import from_wire, silence_bytes, to_wire
from harness.protocol import AudioFormat

if TYPE_CHECKING:
    from harness.corpus import Utterance

SOURCE_RATE_HZ = 24000
LOOP_S = 12.0
B64_CACHE_CHARS = 64 * 1024 * 1024  # at most this much base64 is kept


def _tone_loop() -> np.ndarray:
    t = np.arange(int(LOOP_S * SOURCE_RATE_HZ)) / SOURCE_RATE_HZ
    # a gently gliding pitch around 170 Hz with a few harmonics, like a vowel
    pitch = 170.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SOURCE_RATE_HZ
    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    # syllables: 4.2 per second, each a raised-cosine bump, with a 25 % gap between them
    syllable = (t * 4.2) % 1.0
    envelope = np.where(syllable < 0.75, np.sin(np.pi * syllable / 0.75) ** 2, 0.0)
    samples = 0.25 * 32767 * wave / 2.3 * envelope
    return samples.astype(np.int16)


class AnswerVoice:
    """Wire audio for answers; `audio(fmt, duration_ms, offset)` returns bytes, loops as needed."""

    def __init__(self, utterances: list["Utterance"] | None = None) -> None:
        self._utterances = [u for u in (utterances or []) if u.kind == "speech"]
        self._loops: dict[tuple[AudioFormat, int], bytes] = {}
        self._lock = threading.Lock()
        # (format, clip, start in the loop, length) -> base64 of that slice; slices repeat from answer
        # to answer (every answer starts at the loop's start), so each is encoded once
        self._b64: dict[tuple[AudioFormat, int, int, int], bytes] = {}
        self._b64_chars = 0
        self._peaks: dict[tuple[AudioFormat, int], int] = {}

    @property
    def clip_count(self) -> int:
        return max(1, len(self._utterances))

    def _loop(self, fmt: AudioFormat, clip: int) -> bytes:
        key = (fmt, clip % self.clip_count if self._utterances else 0)
        cached = self._loops.get(key)  # a dict read needs no lock; filling it does
        if cached is None:
            if self._utterances:
                cached = self._utterances[key[1]].wire(fmt)
            else:
                cached = to_wire(_tone_loop(), SOURCE_RATE_HZ, fmt)
            with self._lock:
                cached = self._loops.setdefault(key, cached)
        return cached

    def prepare(self, formats: list[AudioFormat] | None = None, delta_ms: int | None = None) -> None:
        """Render every loop now, before sessions start (and with `delta_ms`, the base64 of its deltas)."""
        for fmt in formats or list(AudioFormat):
            for clip in range(self.clip_count):
                loop = self._loop(fmt, clip)
                if delta_ms:
                    step = int(delta_ms * fmt.rate_hz / 1000) * fmt.bytes_per_sample
                    for start in range(0, len(loop) - step + 1, step):
                        self.delta_base64(fmt, clip, start, step)

    def delta_base64(self, fmt: AudioFormat, clip: int, start: int, length: int) -> bytes:
        """The base64 (ASCII bytes) of bytes [start, start + length) of the answer audio `audio(fmt, ..., clip)`."""
        loop = self._loop(fmt, clip)
        offset = start % len(loop) if loop else 0
        key = (fmt, clip % self.clip_count, offset, length)
        cached = self._b64.get(key)
        if cached is not None:
            return cached
        if offset + length <= len(loop):
            data = loop[offset:offset + length]
        else:  # the slice wraps around the loop
            data = (loop * (2 + length // max(1, len(loop))))[offset:offset + length]
        text = base64.b64encode(data)
        if self._b64_chars < B64_CACHE_CHARS:
            with self._lock:
                self._b64[key] = text
                self._b64_chars += len(text)
        return text

    def shaped_base64(self, fmt: AudioFormat, clip: int, start: int, length: int, lead_bytes: int = 0,
                      peak_dbfs: float | None = None) -> bytes:
        """The base64 of bytes [start, start + length) of a faulted answer: `lead_bytes` of digital
        silence, then the answer audio; `peak_dbfs` None keeps its level, <= -120 makes it all
        digital silence, else scales it to that peak (the fault paths; never cached)."""
        end = start + length
        silent = max(0, min(lead_bytes, end) - start)
        data = silence_bytes(fmt, silent)
        if end > max(start, lead_bytes):
            first = max(start, lead_bytes) - lead_bytes
            data += base64.b64decode(self.delta_base64(fmt, clip, first, end - max(start, lead_bytes)))
        if peak_dbfs is not None and peak_dbfs <= -120.0:
            data = silence_bytes(fmt, len(data))
        elif peak_dbfs is not None and data:
            samples = from_wire(data, fmt).astype(np.float64)
            gain = 10 ** (peak_dbfs / 20.0) * 32767.0 / max(1.0, float(self._peak(fmt, clip)))
            data = to_wire(np.round(samples * gain).astype(np.int16), fmt.rate_hz, fmt)
        return base64.b64encode(data)

    def _peak(self, fmt: AudioFormat, clip: int) -> int:
        key = (fmt, clip % self.clip_count)
        if key not in self._peaks:
            samples = from_wire(self._loop(fmt, clip), fmt)
            self._peaks[key] = int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0
        return self._peaks[key]

    def audio(self, fmt: AudioFormat, duration_ms: int, clip: int = 0) -> bytes:
        """`duration_ms` of answer audio in `fmt` (whole samples), from loop `clip`."""
        loop = self._loop(fmt, clip)
        n_bytes = int(duration_ms * fmt.rate_hz / 1000) * fmt.bytes_per_sample
        if n_bytes <= len(loop):
            return loop[:n_bytes]
        repeats = -(-n_bytes // len(loop))
        return (loop * repeats)[:n_bytes]
