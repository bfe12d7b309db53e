"""Client cancel, barge-in (while generating and after), truncation, in both dialects and all formats."""

from __future__ import annotations

import base64

import pytest
from sim_client import NAMES, RawClient, burst_audio, types

from harness.protocol import AudioFormat
from harness.sim import SimConfig

LONG_REPLY = "This answer is long on purpose so that there is time to interrupt it while it is still streaming."


@pytest.fixture
def slow_sim(sim_factory):
    # 100 ms deltas every 40 ms: generation takes about 1.6 s for the long reply
    return sim_factory(SimConfig(reply_text=LONG_REPLY, ms_per_char=40, latency={"first_audio": "fixed:30",
                                                                                  "delta_gap": "fixed:40"}))


def _closing_types(dialect: str) -> list[str]:
    n = NAMES[dialect]
    tail = [n["audio_done"], n["transcript_done"], "response.content_part.done", "response.output_item.done"]
    return tail + (["conversation.item.done"] if dialect == "ga" else []) + ["response.done"]


@pytest.mark.processes
@pytest.mark.parametrize("fmt", list(AudioFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_client_cancel_closes_the_open_parts_and_ends_cancelled(slow_sim, dialect: str, fmt: AudioFormat) -> None:
    client = RawClient(slow_sim.url, dialect)
    client.until("session.created")
    client.configure(fmt, turn_detection=None)
    client.append(burst_audio(fmt, [("speech", 300)]), fmt)
    client.send("input_audio_buffer.commit")
    client.send("response.create")
    n = NAMES[dialect]
    before = client.until(n["audio_delta"])
    before += client.until(n["audio_delta"])
    rid = before[-1]["response_id"]
    aid = before[-1]["item_id"]
    client.send("response.cancel")
    after = client.until("response.done")
    closing = [e for e in after if e["type"] not in (n["audio_delta"], n["transcript_delta"])]
    assert types(closing) == _closing_types(dialect)
    assert all(e.get("response_id", rid) == rid for e in closing)
    done = closing[-1]["response"]
    assert done["id"] == rid and done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert closing[-1 - (dialect == "ga") - 1]["item"]["status"] == "incomplete"
    assert all(e.get("response_id") != rid for e in client.quiet_for(0.3))  # nothing for R after response.done
    # the client truncates what it played; beyond the generated audio is an error
    deltas = [e for e in before + after if e["type"] == n["audio_delta"]]
    generated_ms = sum(fmt.duration_ms(len(base64.b64decode(e["delta"]))) for e in deltas)
    client.send("conversation.item.truncate", item_id=aid, content_index=0, audio_end_ms=150)
    truncated = client.until("conversation.item.truncated")[-1]
    assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (aid, 0, 150)
    bad = client.send("conversation.item.truncate", item_id=aid, content_index=0,
                      audio_end_ms=int(generated_ms) + 1000)
    error = client.until("error")[-1]["error"]
    assert error["event_id"] == bad["event_id"] and error["param"] == "audio_end_ms"
    late = client.send("response.cancel")
    error = client.until("error")[-1]["error"]
    assert error["code"] == "response_cancel_not_active" and error["event_id"] == late["event_id"]
    assert error["message"] == "Cancellation failed: no active response found"
    client.assert_conformant()
    client.close()


@pytest.mark.processes
@pytest.mark.parametrize("fmt", list(AudioFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_speech_while_generating_cancels_with_turn_detected_then_answers_the_new_turn(
        slow_sim, dialect: str, fmt: AudioFormat) -> None:
    client = RawClient(slow_sim.url, dialect)
    client.until("session.created")
    client.configure(fmt)
    n = NAMES[dialect]
    client.append(burst_audio(fmt, [("silence", 300), ("speech", 500), ("silence", 300)]), fmt)
    first = client.until(n["audio_delta"])
    rid = first[-1]["response_id"]
    client.append(burst_audio(fmt, [("speech", 400), ("silence", 300)]), fmt)
    events = client.until("response.done")
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    assert len(started) == 1
    cut = events[-1]["response"]
    assert cut["id"] == rid and cut["status"] == "cancelled"
    assert cut["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert types(events).index("input_audio_buffer.speech_started") < types(events).index("response.done")
    # the interrupting turn is committed and answered (its VAD events may overtake the cancellation)
    rest = events + client.until("response.done")
    stopped = [e for e in rest if e["type"] == "input_audio_buffer.speech_stopped"]
    committed = [e for e in rest if e["type"] == "input_audio_buffer.committed"]
    assert stopped[-1]["item_id"] == started[0]["item_id"] == committed[-1]["item_id"]
    assert rest[-1]["response"]["status"] == "completed" and rest[-1]["response"]["id"] != rid
    client.assert_conformant()
    client.close()


def test_speech_after_generation_finished_only_sends_speech_started(sim_factory) -> None:
    sim = sim_factory(SimConfig(reply_text="Short.", latency={"first_audio": "fixed:10", "delta_gap": "fixed:1"}))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("speech", 400), ("silence", 300)]), fmt)
    done = client.until("response.done")[-1]
    assert done["response"]["status"] == "completed"
    client.append(burst_audio(fmt, [("speech", 300)]), fmt)
    events = client.quiet_for(0.4)
    assert types(events) == ["input_audio_buffer.speech_started"]
    client.assert_conformant()
    client.close()


def test_with_interrupt_response_false_the_response_continues(slow_sim) -> None:
    fmt = AudioFormat.G711_ALAW
    client = RawClient(slow_sim.url)
    client.until("session.created")
    client.configure(fmt, turn_detection={"type": "server_vad", "silence_duration_ms": 200,
                                          "interrupt_response": False})
    client.append(burst_audio(fmt, [("speech", 400), ("silence", 300)]), fmt)
    client.until("response.output_audio.delta")
    client.append(burst_audio(fmt, [("speech", 300)]), fmt)
    events = client.until("response.done")
    assert "input_audio_buffer.speech_started" in types(events)
    assert events[-1]["response"]["status"] == "completed"
    client.assert_conformant()
    client.close()


def test_delete_and_retrieve_find_items_and_report_unknown_ids(slow_sim) -> None:
    client = RawClient(slow_sim.url, "beta")
    client.until("session.created")
    created = client.send("conversation.item.create", item={
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]})
    item = client.until("conversation.item.created")[-1]["item"]
    client.send("conversation.item.retrieve", item_id=item["id"])
    assert client.until("conversation.item.retrieved")[-1]["item"]["content"] == [{"type": "input_text", "text": "hello"}]
    client.send("conversation.item.delete", item_id=item["id"])
    assert client.until("conversation.item.deleted")[-1]["item_id"] == item["id"]
    for kind, code in (("retrieve", "item_retrieve_invalid_item_id"), ("delete", "item_delete_invalid_item_id"),
                       ("truncate", "item_truncate_invalid_item_id")):
        extra = {"content_index": 0, "audio_end_ms": 0} if kind == "truncate" else {}
        sent = client.send(f"conversation.item.{kind}", item_id=item["id"], **extra)
        error = client.until("error")[-1]["error"]
        assert (error["code"], error["event_id"], error["type"]) == (code, sent["event_id"], "invalid_request_error")
        assert item["id"] in error["message"]
    assert created["event_id"]
    client.assert_conformant()
    client.close()


@pytest.mark.processes
def test_speech_before_any_output_cancels_with_an_empty_output_and_zero_usage(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency={"first_audio": "fixed:1000"}))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("speech", 300), ("silence", 300)]), fmt)
    client.until("response.created")
    client.append(burst_audio(fmt, [("speech", 300)]), fmt)
    events = client.until("response.done")
    response = events[-1]["response"]
    assert response["status"] == "cancelled" and response["output"] == []
    assert response["status_details"]["reason"] == "turn_detected" and response["usage"]["total_tokens"] == 0
    assert types(events) == ["rate_limits.updated", "input_audio_buffer.speech_started", "response.done"]
    client.assert_conformant()


@pytest.mark.processes
def test_speech_before_response_created_was_sent_abandons_the_response_silently(sim_factory) -> None:
    sim = sim_factory(SimConfig(latency={"response_start": "fixed:1000"}, reply_text="Ok."))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("speech", 300), ("silence", 300)]), fmt)
    client.until("input_audio_buffer.committed")
    client.append(burst_audio(fmt, [("speech", 300), ("silence", 300)]), fmt)
    events = client.until("response.done")
    # the barge-in's speech_started is not held back by the pending response.created
    assert types(events).index("input_audio_buffer.speech_started") < types(events).index("response.created")
    created = [e["response"]["id"] for e in events if e["type"] == "response.created"]
    assert len(created) == 1 and events[-1]["response"]["id"] == created[0]
    assert events[-1]["response"]["status"] == "completed"
    assert [r["rec"] for r in sim.trace.records if r["rec"] == "response_abandoned"] == ["response_abandoned"]
    client.assert_conformant()
    client.close()
