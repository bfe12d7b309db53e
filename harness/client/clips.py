"""Audio made ready to send: every `input_audio_buffer.append` base64- and JSON-encoded once.

The pacer must not encode anything while a test runs (base64 plus json.dumps costs 10-15 µs per
chunk on the reference machine, the whole send budget of a loaded process). A `Clip` is a
sequence of finished append messages plus what the trace needs about each chunk (size, sha1,
whether it holds labelled speech). Clips are cached per process by (source, format, chunk
size, dialect, level), so every session that replays the same utterance shares one copy.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.audio import chunk_bytes, chunks_base64, from_wire, silence_bytes, split_chunks, to_wire
from harness.client.pacer import Clip
from harness.protocol import AudioFormat, Dialect, Kind, encode, make_event


_cache: dict[tuple[Any, ...], Clip] = {}
_cache_lock = threading.Lock()


def _speech_flags(n_chunks: int, chunk_ms: float, segments_ms: list[tuple[float, float]]) -> tuple[bool, ...]:
    flags = []
    for index in range(n_chunks):
        start, end = index * chunk_ms, (index + 1) * chunk_ms
        flags.append(any(s < end and e > start for s, e in segments_ms))
    return tuple(flags)


def wire_clip(name: str, wire: bytes, fmt: AudioFormat, chunk_ms: float, dialect: Dialect,
              segments_ms: list[tuple[float, float]], utterance: Any = None) -> Clip:
    """Any wire audio as append messages (e.g. the exact audio of a repro bundle, for replay)."""
    chunks = split_chunks(wire, fmt, chunk_ms)
    texts = chunks_base64(chunks)
    messages = tuple(encode(make_event(Kind.INPUT_AUDIO_APPEND, dialect, audio=text)).encode("utf-8")
                     for text in texts)
    return Clip(name=name, messages=messages, sha1=tuple(hashlib.sha1(c).hexdigest() for c in chunks),
                speech=_speech_flags(len(chunks), chunk_ms, segments_ms),
                chunk_bytes=chunk_bytes(fmt, chunk_ms), chunk_ms=chunk_ms, utterance=utterance)


def _cached(key: tuple[Any, ...], build: Any) -> Clip:
    with _cache_lock:
        clip = _cache.get(key)
    if clip is None:
        clip = build()
        with _cache_lock:
            clip = _cache.setdefault(key, clip)
    return clip


def utterance_clip(utterance: Any, fmt: AudioFormat, chunk_ms: float, dialect: Dialect) -> Clip:
    """A corpus utterance (harness.corpus.Utterance) as append messages; speech flags from its labels."""
    key = ("utt", utterance.id, fmt.value, chunk_ms, dialect.value)
    segments = [tuple(s) for s in utterance.segments_ms]
    return _cached(key, lambda: wire_clip(utterance.id, utterance.wire(fmt), fmt, chunk_ms, dialect,
                                       segments, utterance))


def silence_clip(fmt: AudioFormat, chunk_ms: float, dialect: Dialect) -> Clip:
    """One chunk of digital silence: the filler a live microphone sends between utterances."""
    key = ("silence", fmt.value, chunk_ms, dialect.value)
    return _cached(key, lambda: wire_clip("silence", silence_bytes(fmt, chunk_bytes(fmt, chunk_ms)), fmt, chunk_ms,
                                          dialect, [], None))


@dataclass(frozen=True)
class Filler:
    """Stands in for an utterance when a turn sends no speech (the silence scenario)."""

    id: str
    duration_ms: float
    transcript: str = ""
    segments_ms: tuple[tuple[float, float], ...] = ()
    speech_start_ms: float | None = None
    speech_end_ms: float | None = None
    kind: str = "silence"


def silence_turn_clip(fmt: AudioFormat, chunk_ms: float, dialect: Dialect, duration_ms: float) -> Clip:
    """`duration_ms` of silence as a turn of its own (its turn_start says there is no speech)."""
    n_chunks = max(1, int(round(duration_ms / chunk_ms)))
    key = ("silence-turn", fmt.value, chunk_ms, dialect.value, n_chunks)
    filler = Filler(f"silence/{n_chunks * chunk_ms:g}ms", n_chunks * chunk_ms)
    return _cached(key, lambda: wire_clip(filler.id, silence_bytes(fmt, chunk_bytes(fmt, chunk_ms) * n_chunks),
                                          fmt, chunk_ms, dialect, [], filler))


def rms_dbfs(pcm: np.ndarray) -> float:
    """RMS level of int16 samples in dB relative to full scale (-inf for digital silence)."""
    if pcm.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.asarray(pcm, dtype=np.float64) ** 2)))
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


def noise_clip(noise: Any, fmt: AudioFormat, chunk_ms: float, dialect: Dialect, level_dbfs: float) -> Clip:
    """A corpus noise clip scaled to `level_dbfs` RMS, labelled as holding no speech."""
    key = ("noise", noise.id, fmt.value, chunk_ms, dialect.value, round(level_dbfs, 2))

    def build() -> Clip:
        pcm = from_wire(noise.wire(AudioFormat.PCM16), AudioFormat.PCM16).astype(np.float64)
        level = rms_dbfs(pcm)
        gain = 0.0 if math.isinf(level) else 10.0 ** ((level_dbfs - level) / 20.0)
        scaled = np.clip(np.round(pcm * gain), -32768, 32767).astype(np.int16)
        wire = to_wire(scaled, AudioFormat.PCM16.rate_hz, fmt)
        return wire_clip(f"{noise.id}@{level_dbfs:g}dBFS", wire, fmt, chunk_ms, dialect, [], noise)

    return _cached(key, build)
