"""A bundle's files: pcm16 audio stored as FLAC decodes to exactly the bytes the caller sent,
G.711 stays raw, a changed file is caught, and bundles written before compression still read."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from harness.client.clips import silence_clip, utterance_clip
from harness.corpus import SHIPPED_CORPORA_DIR, load_corpus
from harness.protocol import AudioFormat, Dialect
from harness.replay.bundle_files import BundleAudioError, bundle_trace, has_audio, read_audio, write_audio, write_trace


def _sent(fmt: AudioFormat, utterances: int = 2) -> bytes:
    """What a caller sends: corpus utterances with digital silence between them, as wire bytes."""
    corpus = load_corpus(SHIPPED_CORPORA_DIR / "default")
    silence = silence_clip(fmt, 20.0, Dialect.GA)
    out = bytearray()
    for utterance in corpus.utterances[:utterances]:
        for clip in (utterance_clip(utterance, fmt, 20.0, Dialect.GA), *([silence] * 25)):
            out += b"".join(base64.b64decode(json.loads(message)["audio"]) for message in clip.messages)
    return bytes(out)


def _bundle(folder: Path, entry: dict[str, object]) -> None:
    (folder / "bundle.json").write_text(json.dumps({"audio": entry}))


def test_pcm16_audio_goes_to_flac_and_decodes_to_every_byte_sent(tmp_path: Path) -> None:
    audio = _sent(AudioFormat.PCM16)
    entry = write_audio(tmp_path, audio, AudioFormat.PCM16)
    _bundle(tmp_path, entry)
    assert entry["file"] == "audio.flac" and not (tmp_path / "audio.bin").exists()
    assert entry["sha1"] == hashlib.sha1(audio).hexdigest() and entry["bytes"] == len(audio)
    assert (tmp_path / "audio.flac").stat().st_size < len(audio) / 2
    assert read_audio(tmp_path) == audio


def test_g711_audio_stays_raw_and_reads_back_exactly(tmp_path: Path) -> None:
    for fmt in (AudioFormat.G711_ULAW, AudioFormat.G711_ALAW):
        folder = tmp_path / fmt.value
        folder.mkdir()
        audio = _sent(fmt, utterances=1)
        entry = write_audio(folder, audio, fmt)
        _bundle(folder, entry)
        assert entry["file"] == "audio.bin" and read_audio(folder) == audio


def test_audio_that_no_longer_matches_its_recorded_sha1_is_one_clear_error(tmp_path: Path) -> None:
    audio = _sent(AudioFormat.PCM16, utterances=1)
    _bundle(tmp_path, write_audio(tmp_path, audio, AudioFormat.PCM16))
    write_audio(tmp_path, audio[:-2], AudioFormat.PCM16)   # the file swapped for other audio
    with pytest.raises(BundleAudioError, match="does not match the sha1"):
        read_audio(tmp_path)
    (tmp_path / "audio.flac").write_bytes(b"fLaC but not really")
    with pytest.raises(BundleAudioError, match="not readable FLAC"):
        read_audio(tmp_path)


def test_a_bundle_written_before_compression_still_reads(tmp_path: Path) -> None:
    audio = _sent(AudioFormat.PCM16, utterances=1)
    (tmp_path / "audio.bin").write_bytes(audio)
    (tmp_path / "trace.jsonl").write_text('{"rec":"header","session_id":"s"}\n')
    _bundle(tmp_path, {"file": "audio.bin", "bytes": len(audio)})   # no sha1 then
    assert has_audio(tmp_path) and read_audio(tmp_path) == audio
    assert bundle_trace(tmp_path) == tmp_path / "trace.jsonl"
    source = tmp_path / "source.jsonl"
    source.write_bytes((tmp_path / "trace.jsonl").read_bytes())
    written = write_trace(tmp_path, source)   # rewritten in place: compressed, the plain copy gone
    assert written.name == "trace.jsonl.gz" and bundle_trace(tmp_path) == written
    assert gzip.decompress(written.read_bytes()) == source.read_bytes() and not (tmp_path / "trace.jsonl").exists()
