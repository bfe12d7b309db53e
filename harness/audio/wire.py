"""Conversion between pcm16 arrays and the bytes a session sends: encoding, chunking, base64.

The format facts (rate, bytes per sample, silence byte) belong to `harness.protocol.AudioFormat`;
this module reads them from the format object, so the one table stays in protocol/. It names the
type from `harness.protocol.formats`, the only part of protocol that audio may use.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np

from harness.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from harness.audio.resample import resample

if TYPE_CHECKING:
    from harness.protocol.formats import AudioFormat


def silence_bytes(fmt: AudioFormat, n_bytes: int) -> bytes:
    """`n_bytes` of digital silence in `fmt` (what a muted microphone sends)."""
    value = fmt.silence_byte
    unit = bytes([value]) if isinstance(value, int) else bytes(value)
    return (unit * (n_bytes // len(unit) + 1))[:n_bytes]


def to_wire(pcm: np.ndarray, rate_hz: int, fmt: AudioFormat) -> bytes:
    """Mono int16 samples at `rate_hz` -> bytes in `fmt` (resampled to fmt.rate_hz when needed)."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise TypeError(f"to_wire needs mono int16 samples, got {samples.dtype} with shape {samples.shape}")
    if rate_hz != fmt.rate_hz:
        samples = resample(samples, rate_hz, fmt.rate_hz)
    if fmt.value == "pcm16":
        return samples.astype("<i2").tobytes()
    if fmt.value == "g711_ulaw":
        return ulaw_encode(samples).tobytes()
    if fmt.value == "g711_alaw":
        return alaw_encode(samples).tobytes()
    raise ValueError(f"unknown audio format {fmt.value!r}")


def from_wire(wire: bytes, fmt: AudioFormat) -> np.ndarray:
    """Bytes in `fmt` -> int16 samples at fmt.rate_hz. An odd trailing pcm16 byte is dropped."""
    if fmt.value == "pcm16":
        usable = len(wire) - len(wire) % 2
        return np.frombuffer(wire[:usable], dtype="<i2").astype(np.int16)
    if fmt.value == "g711_ulaw":
        return ulaw_decode(wire)
    if fmt.value == "g711_alaw":
        return alaw_decode(wire)
    raise ValueError(f"unknown audio format {fmt.value!r}")


def chunk_bytes(fmt: AudioFormat, chunk_ms: float) -> int:
    """Bytes in one chunk of `chunk_ms`; the chunk must hold a whole number of samples."""
    samples = fmt.rate_hz * chunk_ms / 1000.0
    if chunk_ms <= 0 or abs(samples - round(samples)) > 1e-9:
        raise ValueError(f"chunk_ms={chunk_ms} is not a whole number of samples at {fmt.rate_hz} Hz")
    return int(round(samples)) * fmt.bytes_per_sample


def split_chunks(wire: bytes, fmt: AudioFormat, chunk_ms: float) -> list[bytes]:
    """Split wire bytes into `chunk_ms` chunks; the last one is padded with the format's silence."""
    size = chunk_bytes(fmt, chunk_ms)
    chunks = [wire[i : i + size] for i in range(0, len(wire), size)]
    if chunks and len(chunks[-1]) < size:
        chunks[-1] = chunks[-1] + silence_bytes(fmt, size - len(chunks[-1]))
    return chunks


def chunks_base64(chunks: list[bytes]) -> list[str]:
    """The base64 text of each chunk, as `input_audio_buffer.append` carries it."""
    return [base64.b64encode(chunk).decode("ascii") for chunk in chunks]


def wire_duration_ms(n_bytes: int, fmt: AudioFormat) -> float:
    """Duration in ms of `n_bytes` of audio in `fmt`."""
    return n_bytes / fmt.bytes_per_sample / fmt.rate_hz * 1000.0
