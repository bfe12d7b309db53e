"""Resampling: measured passband and stopband, alignment, lengths and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from harness.audio import StreamResampler, resample


def tone(freq_hz: float, rate_hz: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def level_db(y: np.ndarray, x: np.ndarray) -> float:
    edge = 400  # away from the zero padding at both ends
    return 20 * np.log10(np.sqrt(np.mean(y[edge:-edge] ** 2)) / np.sqrt(np.mean(x**2)))


def test_a_1khz_tone_survives_24k_to_8k_within_a_tenth_of_a_db() -> None:
    x = tone(1000, 24000)
    assert abs(level_db(resample(x, 24000, 8000), x)) < 0.1


def test_a_5khz_tone_is_attenuated_by_at_least_40_db_going_24k_to_8k() -> None:
    x = tone(5000, 24000)
    assert level_db(resample(x, 24000, 8000), x) <= -40


@pytest.mark.parametrize("freq_hz", [4400, 6000, 9000, 11000])
def test_everything_that_would_alias_into_the_8k_band_is_removed(freq_hz: float) -> None:
    x = tone(freq_hz, 24000)
    assert level_db(resample(x, 24000, 8000), x) <= -40


def test_the_telephone_band_up_to_3400_hz_passes_24k_to_8k() -> None:
    x = tone(3400, 24000)
    assert abs(level_db(resample(x, 24000, 8000), x)) < 0.1


def test_a_9khz_tone_is_attenuated_by_at_least_40_db_going_24k_to_16k() -> None:
    x = tone(9000, 24000)
    assert level_db(resample(x, 24000, 16000), x) <= -40
    assert abs(level_db(resample(tone(1000, 24000), 24000, 16000), tone(1000, 24000))) < 0.1


@pytest.mark.parametrize(
    ("from_hz", "to_hz"), [(8000, 24000), (16000, 24000), (8000, 16000), (44100, 24000), (48000, 16000)]
)
def test_a_tone_keeps_its_phase_and_amplitude_through_any_rate_change(from_hz: int, to_hz: int) -> None:
    # Time alignment matters: speech boundaries in ms must mean the same sample at every rate.
    y = resample(tone(700, from_hz), from_hz, to_hz)
    expected = tone(700, to_hz)
    assert y.size == expected.size
    assert np.max(np.abs(y[400:-400] - expected[400:-400])) < 1e-3


def test_upsampling_8k_to_24k_adds_no_images_above_4khz() -> None:
    y = resample(tone(1000, 8000), 8000, 24000)
    spectrum = np.abs(np.fft.rfft(y[400:-400] * np.hanning(y.size - 800)))
    freqs = np.fft.rfftfreq(y.size - 800, 1 / 24000)
    peak = spectrum.max()
    assert 20 * np.log10(spectrum[freqs > 4000].max() / peak) < -60  # the image at 7 kHz is gone


def test_int16_stays_int16_rounded_and_clipped() -> None:
    x = (tone(1000, 24000) * 2 * 32767).clip(-32768, 32767).astype(np.int16)  # full scale
    y = resample(x, 24000, 8000)
    assert y.dtype == np.int16 and y.size == 8000
    exact = resample(x.astype(np.float64), 24000, 8000)
    assert exact.max() > 32767  # the filter overshoots a clipped tone...
    np.testing.assert_array_equal(y, np.clip(np.rint(exact), -32768, 32767))  # ...and int16 clips, never wraps


def test_float32_stays_float32_and_equal_rates_return_a_copy() -> None:
    x = tone(1000, 16000).astype(np.float32)
    assert resample(x, 16000, 24000).dtype == np.float32
    same = resample(x, 16000, 16000)
    assert same is not x and np.array_equal(same, x)


def test_the_output_length_is_the_input_duration_at_the_new_rate_rounded_up() -> None:
    assert resample(np.zeros(241, dtype=np.int16), 24000, 8000).size == 81
    assert resample(np.zeros(0, dtype=np.int16), 24000, 8000).size == 0


def test_stereo_or_nonpositive_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((10, 2)), 24000, 8000)
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10), 0, 8000)


@pytest.mark.parametrize(
    ("from_hz", "to_hz"), [(24000, 8000), (8000, 16000), (24000, 16000), (16000, 24000), (44100, 24000)]
)
def test_streaming_in_random_pieces_gives_exactly_the_whole_signal_result(from_hz: int, to_hz: int) -> None:
    rng = np.random.default_rng(from_hz + to_hz)
    x = rng.standard_normal(from_hz // 2)
    stream = StreamResampler(from_hz, to_hz)
    pieces, at = [], 0
    while at < x.size:
        size = int(rng.integers(0, 700))
        pieces.append(stream.process(x[at : at + size]))
        at += size
    pieces.append(stream.flush())
    np.testing.assert_allclose(np.concatenate(pieces), resample(x, from_hz, to_hz), atol=1e-9)


def test_streaming_keeps_only_a_filters_length_of_history() -> None:
    stream = StreamResampler(24000, 8000)
    for _ in range(200):  # 4 s in 20 ms appends
        stream.process(np.ones(480))
    assert stream.history.size < 2 * stream.per_phase + 480
