"""The files of a repro bundle: its trace (`trace.jsonl.gz`) and the caller's audio (`audio.flac`).

pcm16 audio is stored as FLAC, which is lossless: decoding gives back every sample, so the
replay sends the exact bytes the caller sent (checked against the sha1 `bundle.json` records).
The quick-start run's bundles hold 1.0-1.4 MB of pcm16 each, 0.22-0.32 MB as FLAC. G.711 audio
(companded bytes, 8 kB/s) stays `audio.bin`: FLAC predicts linear samples, not companded ones.
Bundles written before this (`trace.jsonl`, pcm16 `audio.bin`) read the same.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from harness.protocol import AudioFormat
from harness.trace import existing_trace
from harness.trace.archive import gzip_bytes
from harness.trace.reader import GZIP_MAGIC

TRACE_FILE, FLAC_FILE, RAW_FILE = "trace.jsonl.gz", "audio.flac", "audio.bin"
PLAIN_TRACE_FILE = "trace.jsonl"   # bundles from before compression


class BundleAudioError(ValueError):
    """The bundle's audio file does not decode to the audio `bundle.json` describes."""

    user_error = True


def write_trace(out_dir: Path, trace_path: Path) -> Path:
    """The session trace into the bundle, compressed (copied as is when it already is)."""
    data = trace_path.read_bytes()
    target = out_dir / TRACE_FILE
    target.write_bytes(data if data.startswith(GZIP_MAGIC) else gzip_bytes(data))
    (out_dir / PLAIN_TRACE_FILE).unlink(missing_ok=True)   # an older bundle rewritten in place
    return target


def bundle_trace(bundle_dir: Path) -> Path | None:
    """The bundle's trace file (compressed, or plain in an older bundle); None when it has none."""
    return existing_trace(Path(bundle_dir) / PLAIN_TRACE_FILE)


def flac_bytes(audio: bytes, fmt: AudioFormat) -> bytes:
    samples = np.frombuffer(audio, dtype="<i2")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, fmt.rate_hz, format="FLAC", subtype="PCM_16", compression_level=1.0)
    return buffer.getvalue()


def pcm16_from_flac(data: bytes) -> bytes:
    samples, _ = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=False)
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


def write_audio(out_dir: Path, audio: bytes, fmt: AudioFormat) -> dict[str, Any]:
    """The caller's audio into the bundle; its `bundle.json` entry (file, encoding, bytes, sha1).

    pcm16 goes to FLAC after checking that it decodes to the same bytes (else, and for G.711,
    the raw bytes go to `audio.bin`)."""
    for stale in (FLAC_FILE, RAW_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    entry: dict[str, Any] = {"bytes": len(audio), "sha1": hashlib.sha1(audio).hexdigest()}
    if fmt is AudioFormat.PCM16 and audio and len(audio) % 2 == 0:
        packed = flac_bytes(audio, fmt)
        if pcm16_from_flac(packed) == audio:
            (out_dir / FLAC_FILE).write_bytes(packed)
            return {"file": FLAC_FILE, "encoding": "flac", **entry}
    (out_dir / RAW_FILE).write_bytes(audio)
    return {"file": RAW_FILE, "encoding": "raw", **entry}


def has_audio(bundle_dir: Path) -> bool:
    return any((Path(bundle_dir) / name).is_file() for name in (FLAC_FILE, RAW_FILE))


def recorded_sha1(bundle_dir: Path) -> str | None:
    """The sha1 of the audio as `bundle.json` records it (None in bundles from before it did)."""
    try:
        described = json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8")).get("audio") or {}
    except (OSError, ValueError, AttributeError):
        return None
    return described.get("sha1") if isinstance(described, dict) else None


def read_audio(bundle_dir: Path) -> bytes:
    """The exact wire bytes the caller sent, from `audio.flac` or `audio.bin`, checked against the
    sha1 `bundle.json` records when it has one. FileNotFoundError when the bundle has no audio."""
    bundle_dir = Path(bundle_dir)
    if (bundle_dir / FLAC_FILE).is_file():
        try:
            audio = pcm16_from_flac((bundle_dir / FLAC_FILE).read_bytes())
        except (soundfile.SoundFileError, RuntimeError) as exc:
            raise BundleAudioError(f"{bundle_dir / FLAC_FILE}: not readable FLAC ({exc}); rewrite the bundles "
                                   "with `harness replay --bundle-run RUN_DIR`") from None
    else:
        audio = (bundle_dir / RAW_FILE).read_bytes()
    sha1 = recorded_sha1(bundle_dir)
    if sha1 and hashlib.sha1(audio).hexdigest() != sha1:
        raise BundleAudioError(f"{bundle_dir}: the audio does not match the sha1 bundle.json records; rewrite "
                               "the bundles with `harness replay --bundle-run RUN_DIR`")
    return audio
