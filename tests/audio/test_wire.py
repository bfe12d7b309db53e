"""Wire bytes: encoding per format, chunking with silence padding, base64, durations."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.audio import (
    chunk_bytes,
    chunks_base64,
    from_wire,
    quantisation_error_bound,
    silence_bytes,
    split_chunks,
    to_wire,
    ulaw_encode,
    wire_duration_ms,
)


def speechlike(rate_hz: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (8000 * np.sin(2 * np.pi * 300 * t) + 3000 * np.sin(2 * np.pi * 1100 * t)).astype(np.int16)


def test_pcm16_wire_is_little_endian_int16_at_24khz(formats) -> None:
    x = np.array([1, -2, 32767, -32768], dtype=np.int16)
    wire = to_wire(x, 24000, formats.PCM16)
    assert wire == b"\x01\x00\xfe\xff\xff\x7f\x00\x80"
    np.testing.assert_array_equal(from_wire(wire, formats.PCM16), x)


def test_g711_wire_is_one_byte_per_sample_at_8khz(formats) -> None:
    x = speechlike(24000)
    for fmt in (formats.G711_ULAW, formats.G711_ALAW):
        wire = to_wire(x, 24000, fmt)
        assert len(wire) == x.size // 3
        assert from_wire(wire, fmt).size == x.size // 3


def test_an_8khz_source_is_encoded_to_ulaw_without_resampling(formats) -> None:
    x = speechlike(8000)
    assert to_wire(x, 8000, formats.G711_ULAW) == ulaw_encode(x).tobytes()


def test_wire_audio_decodes_back_within_the_codec_error(audio_format) -> None:
    x = speechlike(audio_format.rate_hz)
    decoded = from_wire(to_wire(x, audio_format.rate_hz, audio_format), audio_format)
    error = np.abs(decoded.astype(np.int32) - x.astype(np.int32))
    assert np.all(error <= quantisation_error_bound(x)) if audio_format.value != "pcm16" else not error.any()


def test_to_wire_refuses_floats_and_stereo(formats) -> None:
    with pytest.raises(TypeError, match="mono int16"):
        to_wire(np.zeros(10, dtype=np.float32), 24000, formats.PCM16)
    with pytest.raises(TypeError, match="mono int16"):
        to_wire(np.zeros((10, 2), dtype=np.int16), 24000, formats.PCM16)


def test_a_20ms_chunk_is_960_bytes_of_pcm16_and_160_of_g711(formats) -> None:
    assert chunk_bytes(formats.PCM16, 20) == 960
    assert chunk_bytes(formats.G711_ULAW, 20) == 160
    assert chunk_bytes(formats.G711_ALAW, 20) == 160


def test_a_chunk_that_is_not_a_whole_number_of_samples_is_refused(formats) -> None:
    with pytest.raises(ValueError, match="whole number of samples"):
        chunk_bytes(formats.G711_ULAW, 0.01)
    with pytest.raises(ValueError, match="whole number of samples"):
        chunk_bytes(formats.PCM16, 0)


def test_the_last_chunk_is_padded_with_the_formats_silence(audio_format) -> None:
    size = chunk_bytes(audio_format, 20)
    wire = bytes(range(1, 251)) * ((size * 2 + size // 2) // 250 + 1)
    wire = wire[: size * 2 + size // 2]
    chunks = split_chunks(wire, audio_format, 20)
    assert [len(c) for c in chunks] == [size, size, size]
    assert b"".join(chunks)[: len(wire)] == wire
    pad = chunks[-1][size // 2 :]
    silence = audio_format.silence_byte
    silence = silence if isinstance(silence, int) else silence[0]
    assert set(pad) == {silence}
    assert np.all(np.abs(from_wire(pad, audio_format).astype(np.int32)) <= 8)  # decodes to (near) zero


def test_audio_that_fills_whole_chunks_gets_no_padding_chunk(formats) -> None:
    assert len(split_chunks(b"\x01" * 960 * 3, formats.PCM16, 20)) == 3
    assert split_chunks(b"", formats.PCM16, 20) == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wire=st.binary(max_size=5000), chunk_ms=st.sampled_from([10, 20, 40, 100]))
def test_chunks_concatenate_back_to_the_input_plus_only_padding(formats, wire: bytes, chunk_ms: int) -> None:
    for fmt in formats:
        chunks = split_chunks(wire, fmt, chunk_ms)
        size = chunk_bytes(fmt, chunk_ms)
        assert all(len(c) == size for c in chunks)
        joined = b"".join(chunks)
        assert joined[: len(wire)] == wire
        assert len(joined) - len(wire) < size


def test_chunks_base64_is_the_standard_alphabet_with_padding(formats) -> None:
    chunks = split_chunks(bytes(range(256)) * 4, formats.G711_ULAW, 20)
    texts = chunks_base64(chunks)
    assert [base64.b64decode(t) for t in texts] == chunks
    assert all(isinstance(t, str) for t in texts)


def test_wire_duration_counts_samples_at_the_formats_rate(formats) -> None:
    assert wire_duration_ms(960, formats.PCM16) == pytest.approx(20.0)
    assert wire_duration_ms(160, formats.G711_ALAW) == pytest.approx(20.0)
    assert wire_duration_ms(48000, formats.PCM16) == pytest.approx(1000.0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=arrays(np.int16, st.integers(0, 2000)))
def test_pcm16_wire_round_trips_exactly(formats, x: np.ndarray) -> None:
    np.testing.assert_array_equal(from_wire(to_wire(x, 24000, formats.PCM16), formats.PCM16), x)


def test_silence_bytes_decode_to_silence_in_every_format(audio_format) -> None:
    for n_bytes in (0, 1, 160, 961):
        silence = silence_bytes(audio_format, n_bytes)
        assert len(silence) == n_bytes
    decoded = from_wire(silence_bytes(audio_format, 960), audio_format)
    assert np.all(np.abs(decoded.astype(np.int32)) <= 8)  # A-law has no exact zero: ±8 is its quietest level
