"""Recognising corpus utterances in received wire audio."""

from __future__ import annotations

import numpy as np
import pytest

from harness.audio import from_wire, mix_at_snr, split_chunks, to_wire
from harness.corpus import load_corpus


@pytest.fixture(scope="module")
def default_corpus():
    return load_corpus("default")


def test_every_default_utterance_is_recognised_in_every_format(default_corpus, audio_format) -> None:
    index = default_corpus.fingerprint_index(audio_format)
    for utt in default_corpus.utterances:
        match = index.identify(utt.wire(audio_format))
        assert match is not None and match.utterance is utt and match.start == 0


def test_an_utterance_inside_a_longer_stream_is_found_with_its_byte_offset(default_corpus, audio_format) -> None:
    index = default_corpus.fingerprint_index(audio_format)
    target = default_corpus.get("utt20")
    lead = audio_format.silence_byte * (audio_format.bytes_per_sample * 777)  # 777 samples: any alignment
    stream = lead + target.wire(audio_format) + default_corpus.get("utt05").wire(audio_format)
    match = index.identify(stream)
    assert match is not None and match.utterance is target
    assert match.start == len(lead)
    expected_end_ms = 777 * 1000 / audio_format.rate_hz + target.speech_end_ms
    assert match.speech_end_in_buffer_ms == pytest.approx(expected_end_ms)


def test_chunked_and_reassembled_audio_still_matches(default_corpus, audio_format) -> None:
    # What a simulator sees: the base64-decoded payloads of 20 ms appends, concatenated.
    utt = default_corpus.get("utt09")
    received = b"".join(split_chunks(utt.wire(audio_format), audio_format, 20))
    assert default_corpus.fingerprint_index(audio_format).identify(received).utterance is utt


def test_only_the_end_of_an_utterance_is_enough(default_corpus, audio_format) -> None:
    utt = default_corpus.get("utt12")
    wire = utt.wire(audio_format)
    tail_from = int((utt.speech_end_ms - 400) * audio_format.rate_hz / 1000) * audio_format.bytes_per_sample
    match = default_corpus.fingerprint_index(audio_format).identify(wire[tail_from:])
    assert match is not None and match.utterance is utt and match.start == -tail_from


def test_silence_noise_and_other_speech_do_not_match(default_corpus, audio_format) -> None:
    index = default_corpus.fingerprint_index(audio_format)
    assert index.identify(b"") is None
    assert index.identify(audio_format.silence_byte * 48000) is None
    for utt in load_corpus("telephony").utterances[:5] + load_corpus("noise").utterances:
        assert index.identify(utt.wire(audio_format)) is None


def test_noise_mixed_audio_is_not_recognised_as_documented(default_corpus, audio_format) -> None:
    utt = default_corpus.get("utt03")
    noise = load_corpus("noise").get("pink").samples
    noisy = mix_at_snr(utt.samples, noise, 20.0, utt.segments_ms, utt.rate_hz)
    assert default_corpus.fingerprint_index(audio_format).identify(to_wire(noisy, utt.rate_hz, audio_format)) is None


def test_the_anchors_are_real_speech_not_silence(default_corpus, audio_format) -> None:
    for anchor in default_corpus.fingerprint_index(audio_format).anchors:
        level = np.sqrt(np.mean(from_wire(anchor.key, audio_format).astype(np.float64) ** 2))
        assert level > 300  # about -40 dBFS or louder
