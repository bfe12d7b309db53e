"""Overlaying noise on speech at a chosen signal-to-noise ratio without moving the speech labels.

The SNR is defined over the labelled speech only: speech power is the mean power of the clean
speech inside its segments, noise power is the mean power of the placed noise over the same
samples. Measuring over the whole file would let leading and trailing silence dilute the speech
power and make every mix noisier than asked. The speech itself is never shifted or stretched,
so the utterance's ground-truth segments stay valid for the mixture.
"""

from __future__ import annotations

import numpy as np

_PEAK_LIMIT = 0.99 * 32767


class MixError(ValueError):
    """A mix that cannot be made (no speech in the labels, silent noise)."""

    user_error = True


def segment_mask(n_samples: int, segments_ms: list[tuple[float, float]], rate_hz: int) -> np.ndarray:
    """Boolean mask of the samples inside `segments_ms` (start inclusive, end exclusive)."""
    mask = np.zeros(n_samples, dtype=bool)
    for start_ms, end_ms in segments_ms:
        first = max(0, int(round(start_ms * rate_hz / 1000.0)))
        last = min(n_samples, int(round(end_ms * rate_hz / 1000.0)))
        mask[first:last] = True
    return mask


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    segments_ms: list[tuple[float, float]],
    rate_hz: int,
    *,
    noise_offset: int = 0,
) -> np.ndarray:
    """Speech plus noise scaled to `snr_db` over the speech segments; int16, same length as speech.

    The noise is read from `noise_offset` and looped when shorter than the speech. When the sum
    would clip, speech and noise are scaled down together, which keeps the SNR and the labels.
    """
    clean = np.asarray(speech, dtype=np.float64)
    source = np.asarray(noise, dtype=np.float64)
    if source.size == 0:
        raise MixError("the noise clip is empty; give a noise clip with samples")
    placed = np.resize(np.roll(source, -noise_offset), clean.size)
    mask = segment_mask(clean.size, segments_ms, rate_hz)
    if not mask.any():
        raise MixError(
            "the utterance has no speech segments, so an SNR over speech is undefined; use a speech utterance"
        )
    speech_power = float(np.mean(clean[mask] ** 2))
    noise_power = float(np.mean(placed[mask] ** 2))
    if speech_power == 0.0:
        raise MixError("the speech segments are silent; check the utterance's annotation")
    if noise_power == 0.0:
        raise MixError("the noise is silent where the speech is; use a noise clip with energy")
    gain = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    mixed = clean + gain * placed
    peak = float(np.max(np.abs(mixed)))
    if peak > _PEAK_LIMIT:
        mixed *= _PEAK_LIMIT / peak
    return np.rint(mixed).astype(np.int16)


def snr_db(speech: np.ndarray, mixture: np.ndarray, segments_ms: list[tuple[float, float]], rate_hz: int) -> float:
    """The SNR of `mixture` over the speech segments, with `speech` (scaled to fit) as the signal."""
    clean = np.asarray(speech, dtype=np.float64)
    mixed = np.asarray(mixture, dtype=np.float64)
    mask = segment_mask(clean.size, segments_ms, rate_hz)
    # The mix may have been scaled down as a whole; the least-squares scale recovers it.
    scale = float(np.dot(mixed[mask], clean[mask]) / np.dot(clean[mask], clean[mask]))
    residual = mixed[mask] - scale * clean[mask]
    return 10.0 * np.log10(np.mean((scale * clean[mask]) ** 2) / np.mean(residual**2))
