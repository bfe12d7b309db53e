"""Reading audio files: conversions with a notice, and one-line failures naming the file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

from harness.audio import AudioFileError, read_wav, write_wav


def test_a_mono_24k_int16_wav_reads_back_bit_exact(tmp_path: Path) -> None:
    x = (np.random.default_rng(1).standard_normal(4800) * 4000).astype(np.int16)
    path = tmp_path / "mono.wav"
    write_wav(path, x, 24000)
    samples, rate_hz = read_wav(path)
    assert rate_hz == 24000
    np.testing.assert_array_equal(samples, x)


def test_a_stereo_44k1_wav_is_mixed_to_mono_and_resampled_with_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = np.arange(44100) / 44100
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    right = 0.2 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    with caplog.at_level(logging.WARNING, logger="harness.audio"):
        samples, rate_hz = read_wav(path, rate_hz=24000)
    assert rate_hz == 24000 and samples.dtype == np.int16 and samples.size == 24000
    expected = 0.3 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000) * 32768
    assert np.max(np.abs(samples[500:-500] - expected[500:-500])) < 40  # mean of the channels, in phase
    notices = [r.getMessage() for r in caplog.records]
    assert any("stereo.wav" in m and "2 channels mixed down to mono" in m for m in notices)
    assert any("stereo.wav" in m and "resampled from 44100 Hz to 24000 Hz" in m for m in notices)


def test_a_float_flac_is_converted_to_int16(tmp_path: Path) -> None:
    path = tmp_path / "float.flac"
    soundfile.write(path, np.full(800, 0.25), 16000, subtype="PCM_24", format="FLAC")
    samples, rate_hz = read_wav(path)
    assert rate_hz == 16000 and samples.dtype == np.int16
    assert np.all(samples == 8192)


def test_without_a_rate_the_files_own_rate_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "eight.wav"
    write_wav(path, np.ones(80, dtype=np.int16), 8000)
    assert read_wav(path)[1] == 8000


def _one_line_naming(exc: pytest.ExceptionInfo[AudioFileError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    assert getattr(exc.value, "user_error", False) is True
    return message


@pytest.mark.parametrize(("name", "problem"), [("nowhere.wav", "does not exist"), ("", "is a directory")])
def test_a_missing_file_or_a_directory_fails_with_one_line_naming_it(tmp_path: Path, name: str, problem: str) -> None:
    path = tmp_path / name if name else tmp_path
    with pytest.raises(AudioFileError) as exc:
        read_wav(path)
    assert problem in _one_line_naming(exc, path)


def test_a_non_audio_file_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 20)
    with pytest.raises(AudioFileError) as exc:
        read_wav(path)
    assert "not a readable audio file" in _one_line_naming(exc, path)


def test_a_wav_cut_in_its_data_fails_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_wav(path, np.ones(24000, dtype=np.int16), 24000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioFileError) as exc:
        read_wav(path)
    assert "truncated" in _one_line_naming(exc, path)


def test_a_wav_cut_inside_its_header_fails_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "header.wav"
    write_wav(path, np.ones(2400, dtype=np.int16), 24000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioFileError) as exc:
        read_wav(path)
    _one_line_naming(exc, path)


def test_an_empty_wav_fails_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    write_wav(path, np.zeros(0, dtype=np.int16), 24000)
    with pytest.raises(AudioFileError) as exc:
        read_wav(path)
    assert "no audio" in _one_line_naming(exc, path)


def test_a_ulaw_wav_reads_as_the_same_samples_our_decoder_gives(tmp_path: Path) -> None:
    from harness.audio import ulaw_decode, ulaw_encode

    x = (np.random.default_rng(2).standard_normal(800) * 5000).astype(np.int16)
    path = tmp_path / "ulaw.wav"
    soundfile.write(path, ulaw_decode(ulaw_encode(x)), 8000, subtype="ULAW")
    samples, rate_hz = read_wav(path)
    assert rate_hz == 8000
    np.testing.assert_array_equal(samples, ulaw_decode(ulaw_encode(x)))


def test_float_samples_beyond_full_scale_are_clipped_not_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "hot.wav"
    soundfile.write(path, np.array([1.5, -1.5, 0.5]), 24000, subtype="FLOAT")
    samples, _ = read_wav(path)
    assert samples.tolist() == [32767, -32768, 16384]
