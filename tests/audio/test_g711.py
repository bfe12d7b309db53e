"""G.711: the numpy tables against CPython's audioop, and round trips under hypothesis."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.audio import alaw_decode, alaw_encode, quantisation_error_bound, ulaw_decode, ulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # removed in Python 3.13
        audioop = None

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop is not in this Python (3.13+)")
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


@needs_audioop
@pytest.mark.parametrize(("encode", "reference"), [(ulaw_encode, "lin2ulaw"), (alaw_encode, "lin2alaw")])
def test_encoding_matches_audioop_on_all_65536_inputs(encode, reference: str) -> None:
    expected = np.frombuffer(getattr(audioop, reference)(ALL_INT16.tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(encode(ALL_INT16), expected)


@needs_audioop
@pytest.mark.parametrize(("decode", "reference"), [(ulaw_decode, "ulaw2lin"), (alaw_decode, "alaw2lin")])
def test_decoding_matches_audioop_on_all_256_codes(decode, reference: str) -> None:
    expected = np.frombuffer(getattr(audioop, reference)(ALL_CODES.tobytes(), 2), dtype=np.int16)
    np.testing.assert_array_equal(decode(ALL_CODES), expected)


def test_decoding_accepts_bytes_as_well_as_arrays() -> None:
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES.tobytes()), ulaw_decode(ALL_CODES))
    np.testing.assert_array_equal(alaw_decode(bytearray(ALL_CODES.tobytes())), alaw_decode(ALL_CODES))


def test_encoding_refuses_float_samples_rather_than_guessing_their_scale() -> None:
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(4, dtype=np.float32))


def test_each_code_decodes_and_reencodes_to_itself() -> None:
    # Both laws map 256 codes to distinct levels (except the two zeros of µ-law), so decode then
    # encode must be the identity on the codes the encoder can produce.
    np.testing.assert_array_equal(ulaw_encode(ulaw_decode(ulaw_encode(ALL_INT16))), ulaw_encode(ALL_INT16))
    np.testing.assert_array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


def test_the_round_trip_error_of_every_int16_is_within_the_quantisation_bound() -> None:
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        error = np.abs(decode(encode(ALL_INT16)).astype(np.int32) - ALL_INT16.astype(np.int32))
        assert np.all(error <= quantisation_error_bound(ALL_INT16))


@settings(max_examples=200, deadline=None)
@given(arrays(np.int16, st.integers(1, 400)))
def test_ulaw_and_alaw_round_trips_of_any_signal_stay_within_the_quantisation_bound(x: np.ndarray) -> None:
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        decoded = decode(encode(x)).astype(np.int32)
        assert decoded.shape == x.shape
        assert np.all(np.abs(decoded - x.astype(np.int32)) <= quantisation_error_bound(x))


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, st.integers(1, 300)))
def test_decoded_codes_encode_back_to_the_same_level(codes: np.ndarray) -> None:
    np.testing.assert_array_equal(ulaw_decode(ulaw_encode(ulaw_decode(codes))), ulaw_decode(codes))
    np.testing.assert_array_equal(alaw_decode(alaw_encode(alaw_decode(codes))), alaw_decode(codes))
