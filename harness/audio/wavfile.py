"""Reading and writing audio files (WAV, FLAC, anything libsndfile reads) as mono int16.

Reading validates what the harness depends on and either converts with a logged notice (more
than one channel is mixed to mono, another rate is resampled, another sample type is converted)
or fails with one `AudioFileError` line naming the file and the fix (missing, not audio,
truncated, empty).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import soundfile

from harness.audio.resample import resample

log = logging.getLogger("harness.audio")

# Sample types that convert to int16 without surprises; others (ADPCM, GSM...) are still read by
# libsndfile but get a notice, since a lossy codec already shaped the audio.
_PLAIN_SUBTYPES = {"PCM_16", "PCM_24", "PCM_32", "PCM_S8", "PCM_U8", "FLOAT", "DOUBLE", "ULAW", "ALAW"}
_DECLARED_DATA = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = {0, 0xFFFFFFFF}  # sizes that writers of unfinished streams leave in the header


class AudioFileError(ValueError):
    """An audio file that cannot be used; the message is one line naming the file and the fix."""

    user_error = True


def _truncated(info: soundfile._SoundFileInfo) -> bool:
    match = _DECLARED_DATA.search(info.extra_info)
    if not match:
        return False
    declared, actual = int(match.group(1)), int(match.group(2))
    return declared > actual and declared not in _STREAMING_SIZES


def audio_info(path: str | Path) -> soundfile._SoundFileInfo:
    """The header facts of an audio file (rate, frames, channels, subtype), after checking that
    it exists, is audio and is not truncated; AudioFileError otherwise."""
    file = Path(path)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise AudioFileError(f"{file}: {what}; give the path of a WAV or FLAC file")
    try:
        info = soundfile.info(str(file))
    except (soundfile.SoundFileError, RuntimeError) as exc:
        reason = str(exc).split(":", 1)[-1].strip() or "unreadable"
        raise AudioFileError(f"{file}: not a readable audio file ({reason}); give a WAV or FLAC file") from None
    if _truncated(info):
        raise AudioFileError(
            f"{file}: truncated (the header promises more audio than the file holds); re-export or re-copy it"
        )
    return info


def read_wav(path: str | Path, rate_hz: int | None = None) -> tuple[np.ndarray, int]:
    """Read `path` as mono int16; resample to `rate_hz` when given. Returns (samples, rate_hz)."""
    file = Path(path)
    info = audio_info(file)
    try:
        data, native_hz = soundfile.read(str(file), dtype="float64", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError) as exc:
        reason = str(exc).split(":", 1)[-1].strip() or "unreadable"
        raise AudioFileError(f"{file}: not a readable audio file ({reason}); give a WAV or FLAC file") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{file}: holds no audio samples; give a non-empty recording")
    if info.subtype not in _PLAIN_SUBTYPES:
        log.warning("%s: sample type %s converted to 16-bit PCM", file, info.subtype)
    if data.shape[1] > 1:
        log.warning("%s: %d channels mixed down to mono", file, data.shape[1])
    mono = data.mean(axis=1)
    if rate_hz is not None and native_hz != rate_hz:
        log.warning("%s: resampled from %d Hz to %d Hz", file, native_hz, rate_hz)
        mono = resample(mono, native_hz, rate_hz)
    else:
        rate_hz = native_hz
    return float_to_int16(mono), int(rate_hz)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    """Floats in [-1, 1) -> int16 (the inverse of soundfile's int16 -> float scaling), clipped."""
    return np.clip(np.rint(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, pcm: np.ndarray, rate_hz: int) -> None:
    """Write mono int16 samples as a 16-bit PCM WAV file."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise TypeError(f"write_wav needs mono int16 samples, got {samples.dtype} with shape {samples.shape}")
    soundfile.write(str(path), samples, int(rate_hz), subtype="PCM_16", format="WAV")
