"""Audio as numpy arrays: G.711 codecs, resampling, file reading, wire bytes and chunks, SNR mixing.

Pure functions (file reading aside); nothing here does network I/O or knows about sessions.
"""

from harness.audio.g711 import alaw_decode, alaw_encode, quantisation_error_bound, ulaw_decode, ulaw_encode
from harness.audio.mixing import MixError, mix_at_snr, segment_mask, snr_db
from harness.audio.resample import StreamResampler, resample
from harness.audio.wavfile import AudioFileError, audio_info, float_to_int16, read_wav, write_wav
from harness.audio.wire import (
    chunk_bytes,
    chunks_base64,
    from_wire,
    silence_bytes,
    split_chunks,
    to_wire,
    wire_duration_ms,
)

__all__ = [
    "StreamResampler",
    "AudioFileError",
    "MixError",
    "alaw_decode",
    "audio_info",
    "alaw_encode",
    "chunk_bytes",
    "chunks_base64",
    "float_to_int16",
    "from_wire",
    "mix_at_snr",
    "read_wav",
    "quantisation_error_bound",
    "resample",
    "segment_mask",
    "silence_bytes",
    "snr_db",
    "split_chunks",
    "to_wire",
    "ulaw_decode",
    "ulaw_encode",
    "wire_duration_ms",
    "write_wav",
]
