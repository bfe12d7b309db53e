"""Server-VAD and manual turns in both dialects and all three formats, checked event by event."""

from __future__ import annotations

import pytest
from sim_client import RawClient, burst_audio, check_audio_response, check_user_item, types

from harness.protocol import AudioFormat
from harness.sim import SimConfig

DIALECTS = ["ga", "beta"]
FORMATS = list(AudioFormat)
REPLY = "Sure, the table is booked for two at eight."


@pytest.fixture
def fast_sim(sim_factory):
    return sim_factory(SimConfig(reply_text=REPLY, ms_per_char=20, delta_ms=100,
                                 latency={"first_audio": "fixed:20", "delta_gap": "fixed:2"}))


@pytest.mark.processes
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_server_vad_turn_produces_the_documented_sequence(fast_sim, dialect: str, fmt: AudioFormat) -> None:
    client = RawClient(fast_sim.url, dialect)
    created = client.recv()
    assert created["type"] == "session.created" and created["event_id"].startswith("event_")
    session = created["session"]
    assert session["id"].startswith("sess_") and session["object"] == "realtime.session"
    if dialect == "beta":
        assert client.recv()["type"] == "conversation.created"
    client.configure(fmt)
    client.append(burst_audio(fmt, [("silence", 500), ("speech", 800), ("silence", 700)]), fmt)
    events = client.until("response.done")
    assert types(events[:2]) == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"]
    started, stopped = events[0], events[1]
    user_id = started["item_id"]
    assert user_id.startswith("item_") and stopped["item_id"] == user_id
    assert started["audio_start_ms"] == 500 - 300  # prefix padding
    assert stopped["audio_end_ms"] == 1300 + 200  # end of speech + silence_duration_ms
    used = check_user_item(events[2:], dialect, user_id, None)
    facts = check_audio_response(events[2 + used:], dialect, fmt, user_id)
    assert facts["transcript"] == REPLY
    assert facts["audio_ms"] == pytest.approx(round(len(REPLY) * 20 / 10) * 10, abs=0.5)
    client.assert_conformant()
    client.close()


@pytest.mark.processes
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_manual_turn_commits_without_answering_until_response_create(fast_sim, dialect: str,
                                                                         fmt: AudioFormat) -> None:
    client = RawClient(fast_sim.url, dialect)
    client.until("session.created")
    client.configure(fmt, turn_detection=None)
    client.append(burst_audio(fmt, [("speech", 400), ("silence", 100)]), fmt)
    commit = client.send("input_audio_buffer.commit")
    events = client.until("conversation.item.added" if dialect == "ga" else "conversation.item.created")
    if dialect == "ga":
        events += client.until("conversation.item.done")
    assert "input_audio_buffer.speech_started" not in types(events)
    user_id = events[0]["item_id"]
    check_user_item(events, dialect, user_id, None)
    assert client.quiet_for(0.3) == []  # a commit alone never produces a response
    client.send("response.create")
    events = client.until("response.done")
    check_audio_response(events, dialect, fmt, user_id)
    assert commit["event_id"]  # sent with an id; the server echoes ids only in errors
    client.assert_conformant()
    client.close()


@pytest.mark.processes
def test_audio_times_are_cumulative_across_turns(fast_sim) -> None:
    fmt = AudioFormat.PCM16
    client = RawClient(fast_sim.url)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("silence", 400), ("speech", 600), ("silence", 600)]), fmt)
    first = client.until("response.done")
    client.append(burst_audio(fmt, [("silence", 400), ("speech", 500), ("silence", 600)]), fmt)
    second = client.until("response.done")
    starts = [e["audio_start_ms"] for e in first + second if e["type"] == "input_audio_buffer.speech_started"]
    ends = [e["audio_end_ms"] for e in first + second if e["type"] == "input_audio_buffer.speech_stopped"]
    assert starts == [100, 1600 + 400 - 300] and ends == [1200, 1600 + 900 + 200]
    commits = [e for e in first + second if e["type"] == "input_audio_buffer.committed"]
    assert commits[1]["previous_item_id"] is not None  # the first turn's assistant item
    client.assert_conformant()
    client.close()
