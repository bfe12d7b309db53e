"""Loading the shipped corpora and converting utterances to every wire format."""

from __future__ import annotations

import numpy as np
import pytest

from harness.audio import from_wire, mix_at_snr, quantisation_error_bound, snr_db
from harness.corpus import SHIPPED_CORPORA_DIR, CorpusError, load_corpus

SHIPPED = ["default", "tools", "telephony", "noise"]


def test_the_default_corpus_has_at_least_30_24khz_speech_utterances_with_transcripts() -> None:
    corpus = load_corpus("corpora/default")
    assert len(corpus) >= 30 and corpus.kind == "speech"
    for utt in corpus.utterances:
        assert utt.rate_hz == 24000 and utt.transcript and utt.id.startswith("default/")
        assert 0 < utt.speech_start_ms < utt.speech_end_ms < utt.duration_ms
        assert utt.speech_start_ms >= 300 and utt.duration_ms - utt.speech_end_ms >= 300  # natural silence


def test_the_telephony_corpus_is_at_least_20_real_8khz_recordings_with_transcripts() -> None:
    corpus = load_corpus("telephony")
    assert len(corpus) >= 20
    assert all(u.rate_hz == 8000 and u.transcript and "CC-BY-SA-3.0" in u.license for u in corpus.utterances)


def test_the_noise_corpus_has_pink_brown_and_babble_without_speech() -> None:
    corpus = load_corpus("noise")
    assert corpus.kind == "noise"
    assert {u.id for u in corpus.utterances} >= {"noise/pink", "noise/brown", "noise/babble"}
    assert all(u.segments_ms == [] and u.kind == "noise" for u in corpus.utterances)


def test_the_tools_corpus_has_a_weather_request_and_an_utterance_of_at_least_8_s() -> None:
    corpus = load_corpus("tools")
    assert any("weather in Paris" in u.transcript for u in corpus.utterances)
    assert any(u.speech_end_ms - u.speech_start_ms >= 8000 for u in corpus.utterances)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_utterance_decodes_from_g711_within_the_quantisation_error(name: str, audio_format) -> None:
    for utt in load_corpus(name).utterances:
        wire = utt.wire(audio_format)
        reference = utt.pcm(audio_format.rate_hz)  # the same audio at the wire's rate, before encoding
        decoded = from_wire(wire, audio_format)
        assert decoded.size == reference.size
        assert len(wire) == reference.size * audio_format.bytes_per_sample
        error = np.abs(decoded.astype(np.int32) - reference.astype(np.int32))
        assert np.all(error <= quantisation_error_bound(reference)), utt.id


def test_wire_audio_is_converted_once_and_cached(audio_format) -> None:
    utt = load_corpus("default").utterances[0]
    assert utt.wire(audio_format) is utt.wire(audio_format)


def test_pcm16_wire_of_a_24khz_utterance_is_exactly_its_samples(formats) -> None:
    utt = load_corpus("default").utterances[1]
    assert utt.wire(formats.PCM16) == utt.samples.astype("<i2").tobytes()


def test_a_telephony_utterance_sent_as_pcm16_keeps_its_duration(formats) -> None:
    utt = load_corpus("telephony").get("hello-world")
    wire = utt.wire(formats.PCM16)
    assert len(wire) / 48.0 == pytest.approx(utt.duration_ms, abs=0.1)


def test_samples_are_read_only_so_a_scenario_cannot_corrupt_the_cache() -> None:
    utt = load_corpus("default").utterances[0]
    with pytest.raises(ValueError):
        utt.samples[0] = 1


def test_an_unknown_utterance_id_is_a_one_line_error() -> None:
    with pytest.raises(CorpusError, match="no utterance 'nope'"):
        load_corpus("default").get("nope")


def test_shipped_noise_mixes_into_a_shipped_utterance_at_10_db_over_its_speech() -> None:
    utt = load_corpus("default").get("utt12")
    noise = load_corpus("noise").get("babble")
    mixed = mix_at_snr(utt.samples, noise.samples, 10.0, utt.segments_ms, utt.rate_hz)
    assert abs(snr_db(utt.samples, mixed, utt.segments_ms, utt.rate_hz) - 10.0) < 0.5


def test_a_mixed_utterance_keeps_labels_and_transcript_and_hits_the_snr(audio_format) -> None:
    utt = load_corpus("default").get("utt03")
    noise = load_corpus("noise").get("pink")
    noisy = utt.mixed(noise, 10.0, noise_offset_ms=250)
    assert noisy.id == "default/utt03+noise/pink@10dB"
    assert (noisy.segments_ms, noisy.transcript, noisy.duration_ms) == (
        utt.segments_ms,
        utt.transcript,
        utt.duration_ms,
    )
    assert abs(snr_db(utt.samples, noisy.samples, utt.segments_ms, utt.rate_hz) - 10.0) < 0.5
    assert len(noisy.wire(audio_format)) == len(utt.wire(audio_format))
    assert noisy.wire(audio_format) != utt.wire(audio_format)
    assert utt.samples.flags.writeable is False  # the clean original is untouched


def test_holds_speech_tells_whether_a_stretch_overlaps_the_labelled_speech() -> None:
    utt = load_corpus("default").get("utt12")  # two segments with a pause between them
    (first_start, first_end), (second_start, _) = utt.segments_ms
    assert not utt.holds_speech(0, first_start)
    assert utt.holds_speech(first_start - 10, first_start + 10)
    assert not utt.holds_speech(first_end + 1, second_start - 1)
    assert utt.holds_speech(second_start, second_start + 20)


def test_a_shipped_corpus_resolves_by_name_or_as_corpora_slash_name_from_any_directory(
    tmp_path, monkeypatch
) -> None:
    from harness.client import SessionSpec
    from harness.corpus.loader import resolve_corpus_dir

    monkeypatch.chdir(tmp_path)   # no corpora/ here
    assert resolve_corpus_dir("default") == SHIPPED_CORPORA_DIR / "default"
    assert resolve_corpus_dir("corpora/telephony") == SHIPPED_CORPORA_DIR.parent / "corpora" / "telephony"
    assert load_corpus(SessionSpec.noise_corpus).kind == "noise"   # the noisy_playback scenario's default
    with pytest.raises(CorpusError, match="no such corpus folder"):
        resolve_corpus_dir("corpora/default/extra")   # only a shipped corpus itself, not a path below it
