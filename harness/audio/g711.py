"""G.711 µ-law and A-law as numpy lookup tables, bit-exact with CPython's `audioop`.

The encoder tables are built once (65,536 entries each) by running the segment search of the
Sun reference code, which `audioop` follows, over every int16 value at once. Other encoders
(libsndfile, sox, ffmpeg) round some negative inputs on a quantisation boundary to the
adjacent code; the harness must produce the same bytes on every Python version (audioop is
gone in 3.13), so it carries its own tables.
"""

from __future__ import annotations

import numpy as np

_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _all_int16() -> np.ndarray:
    return np.arange(-32768, 32768, dtype=np.int32)


def _build_ulaw_encoder() -> np.ndarray:
    # audioop feeds the encoder the 14-bit value x >> 2 (arithmetic shift, floor toward -inf).
    value = _all_int16() >> 2
    negative = value < 0
    magnitude = np.where(negative, -value, value)
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(magnitude, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left")
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0xF
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_encoder() -> np.ndarray:
    # audioop feeds the encoder the 13-bit value x >> 3.
    value = _all_int16() >> 3
    negative = value < 0
    magnitude = np.where(negative, -value - 1, value)
    mask = np.where(negative, 0x55, 0xD5)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left")
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> shift) & 0xF))
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decoder() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


def _build_alaw_decoder() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    magnitude = (code & 0x0F) << 4
    magnitude = np.where(segment == 0, magnitude + 8, magnitude + 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encoder()
_ALAW_ENCODE = _build_alaw_encoder()
_ULAW_DECODE = _build_ulaw_decoder()
_ALAW_DECODE = _build_alaw_decoder()


def _table_index(pcm: np.ndarray) -> np.ndarray:
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encoding needs int16 samples, got {samples.dtype}")
    return samples.astype(np.int32) + 32768


def _codes(codes: np.ndarray | bytes) -> np.ndarray:
    if isinstance(codes, (bytes, bytearray, memoryview)):
        return np.frombuffer(codes, dtype=np.uint8)
    return np.asarray(codes, dtype=np.uint8)


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> µ-law codes (uint8), identical to `audioop.lin2ulaw(x, 2)`."""
    return _ULAW_ENCODE[_table_index(pcm)]


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> A-law codes (uint8), identical to `audioop.lin2alaw(x, 2)`."""
    return _ALAW_ENCODE[_table_index(pcm)]


def ulaw_decode(codes: np.ndarray | bytes) -> np.ndarray:
    """µ-law codes (uint8 array or bytes) -> int16 samples, identical to `audioop.ulaw2lin`."""
    return _ULAW_DECODE[_codes(codes)]


def alaw_decode(codes: np.ndarray | bytes) -> np.ndarray:
    """A-law codes (uint8 array or bytes) -> int16 samples, identical to `audioop.alaw2lin`."""
    return _ALAW_DECODE[_codes(codes)]


def quantisation_error_bound(pcm: np.ndarray) -> np.ndarray:
    """Largest |decode(encode(x)) - x| either law allows for each sample of `pcm`.

    Both laws keep 4 mantissa bits per segment, so the error stays under |x|/16 plus the
    half-step of the finest segment; checked exhaustively over all int16 values in the tests.
    """
    return np.maximum(8.0, np.abs(np.asarray(pcm, dtype=np.int32)) / 16.0) + 4.0
