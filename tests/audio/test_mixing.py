"""Noise mixing: the requested SNR over the speech segments, labels unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from harness.audio import MixError, mix_at_snr, segment_mask, snr_db

RATE_HZ = 24000
SEGMENTS_MS = [(500.0, 1300.0), (1600.0, 2200.0)]


def labelled_speech() -> np.ndarray:
    """Silence with two bursts of harmonic 'speech' exactly inside SEGMENTS_MS."""
    x = np.zeros(int(2.8 * RATE_HZ))
    t = np.arange(x.size) / RATE_HZ
    voice = 6000 * np.sin(2 * np.pi * 180 * t) + 2500 * np.sin(2 * np.pi * 900 * t) + 900 * np.sin(2 * np.pi * 2500 * t)
    mask = segment_mask(x.size, SEGMENTS_MS, RATE_HZ)
    x[mask] = voice[mask]
    return x.astype(np.int16)


def measured_snr_db(speech: np.ndarray, mixture: np.ndarray) -> float:
    """SNR over the speech segments, noise = mixture minus the clean speech (no scaling needed)."""
    mask = segment_mask(speech.size, SEGMENTS_MS, RATE_HZ)
    clean = speech.astype(np.float64)[mask]
    noise = mixture.astype(np.float64)[mask] - clean
    return 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))


@pytest.mark.parametrize("target_db", [20.0, 10.0, 5.0, 0.0])
def test_white_noise_is_mixed_at_the_requested_snr_within_half_a_db(target_db: float) -> None:
    speech = labelled_speech()
    noise = np.random.default_rng(7).standard_normal(RATE_HZ * 5) * 1000
    mixture = mix_at_snr(speech, noise, target_db, SEGMENTS_MS, RATE_HZ)
    assert mixture.dtype == np.int16 and mixture.size == speech.size
    assert abs(measured_snr_db(speech, mixture) - target_db) < 0.5


def test_a_short_noise_clip_is_looped_and_still_hits_the_snr() -> None:
    speech = labelled_speech()
    noise = np.random.default_rng(3).standard_normal(RATE_HZ // 4) * 500
    mixture = mix_at_snr(speech, noise, 10.0, SEGMENTS_MS, RATE_HZ, noise_offset=1234)
    assert abs(measured_snr_db(speech, mixture) - 10.0) < 0.5


def test_the_snr_counts_speech_segments_only_not_the_silence_around_them() -> None:
    # Over the whole file the speech would look ~3.5 dB weaker (about half of it is silence).
    speech = labelled_speech()
    noise = np.random.default_rng(5).standard_normal(speech.size) * 800
    mixture = mix_at_snr(speech, noise, 10.0, SEGMENTS_MS, RATE_HZ)
    whole = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean((mixture.astype(float) - speech) ** 2))
    assert whole < 8.0
    assert abs(measured_snr_db(speech, mixture) - 10.0) < 0.5


def test_a_mix_that_would_clip_is_scaled_down_as_a_whole_keeping_the_snr() -> None:
    speech = (labelled_speech().astype(np.float64) * 4).clip(-32768, 32767).astype(np.int16)
    noise = np.random.default_rng(9).standard_normal(speech.size) * 5000
    mixture = mix_at_snr(speech, noise, 0.0, SEGMENTS_MS, RATE_HZ)
    assert np.abs(mixture.astype(np.int32)).max() <= 32767
    assert abs(snr_db(speech, mixture, SEGMENTS_MS, RATE_HZ) - 0.0) < 0.5


def test_the_speech_labels_stay_where_they_were() -> None:
    # Mixing never shifts the speech: the clean signal is recoverable sample for sample.
    speech = labelled_speech()
    noise = np.random.default_rng(11).standard_normal(speech.size) * 300
    mixture = mix_at_snr(speech, noise, 30.0, SEGMENTS_MS, RATE_HZ)
    lag = np.argmax(np.correlate(mixture[10000:20000].astype(float), speech[10000:20000].astype(float), "full")) - 9999
    assert lag == 0


def test_no_speech_segments_or_silent_noise_are_refused_with_one_line() -> None:
    speech = labelled_speech()
    with pytest.raises(MixError, match="no speech segments"):
        mix_at_snr(speech, np.ones(100), 10.0, [], RATE_HZ)
    with pytest.raises(MixError, match="silent"):
        mix_at_snr(speech, np.zeros(100), 10.0, SEGMENTS_MS, RATE_HZ)
    with pytest.raises(MixError, match="empty"):
        mix_at_snr(speech, np.zeros(0), 10.0, SEGMENTS_MS, RATE_HZ)
