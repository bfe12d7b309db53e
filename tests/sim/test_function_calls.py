"""Function calls (sequence e): recognised from corpus audio or by rule, then answered after the output."""

from __future__ import annotations

import json

import pytest
from sim_client import NAMES, RawClient, burst_audio, check_audio_response, types

from harness.corpus import load_corpus
from harness.protocol import AudioFormat
from harness.sim import FunctionCallRule, SimConfig

WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _call_sequence(events: list[dict], dialect: str) -> dict:
    """Checks response.created ... response.done of a function-call response; returns the call facts."""
    n = NAMES[dialect]
    created, rate, added, conv_added = events[:4]
    rid = created["response"]["id"]
    assert types(events[:2]) == ["response.created", "rate_limits.updated"]
    assert added["type"] == "response.output_item.added" and added["response_id"] == rid
    item = added["item"]
    assert (item["type"], item["status"], item["arguments"]) == ("function_call", "in_progress", "")
    fid, call_id = item["id"], item["call_id"]
    assert call_id.startswith("call_") and conv_added["type"] == n["item_added"] and conv_added["item"]["id"] == fid
    tail = ["response.function_call_arguments.done", "response.output_item.done"]
    tail += ["conversation.item.done"] if dialect == "ga" else []
    tail += ["response.done"]
    deltas, closing = events[4:-len(tail)], events[-len(tail):]
    assert deltas and set(types(deltas)) == {"response.function_call_arguments.delta"}
    assert types(closing) == tail
    arguments = "".join(d["delta"] for d in deltas)
    for e in deltas + closing[:1]:
        assert (e["response_id"], e["item_id"], e["output_index"], e["call_id"]) == (rid, fid, 0, call_id)
    assert closing[0]["arguments"] == arguments and closing[0]["name"] == item["name"]
    done_item = closing[1]["item"]
    assert (done_item["id"], done_item["status"], done_item["arguments"]) == (fid, "completed", arguments)
    response = closing[-1]["response"]
    assert response["status"] == "completed" and [o["id"] for o in response["output"]] == [fid]
    return {"name": item["name"], "arguments": json.loads(arguments), "call_id": call_id, "item_id": fid}


@pytest.mark.processes
@pytest.mark.parametrize("fmt", list(AudioFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_a_recognised_tool_request_streams_a_call_and_the_output_is_answered(sim_factory, dialect: str,
                                                                              fmt: AudioFormat) -> None:
    sim = sim_factory(SimConfig(corpus="corpora/tools", latency={"first_audio": "fixed:10", "delta_gap": "fixed:1"}))
    utterance = next(u for u in load_corpus("corpora/tools").utterances if u.id.endswith("weather_paris"))
    client = RawClient(sim.url, dialect)
    client.until("session.created")
    client.configure(fmt, tools=[WEATHER_TOOL], tool_choice="auto")
    client.append(utterance.wire(fmt) + burst_audio(fmt, [("silence", 400)]), fmt)
    events = client.until("response.done")
    first = types(events).index("response.created")
    call = _call_sequence(events[first:], dialect)
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "Paris"}
    output = json.dumps({"temperature_c": 21, "sky": "clear"})
    client.send("conversation.item.create", item={"type": "function_call_output", "call_id": call["call_id"],
                                                  "output": output})
    added = client.until(NAMES[dialect]["item_added"])[-1]
    assert added["item"]["type"] == "function_call_output" and added["previous_item_id"] == call["item_id"]
    if dialect == "ga":
        client.until("conversation.item.done")
    client.send("response.create")
    answer = client.until("response.done")
    facts = check_audio_response(answer, dialect, fmt, added["item"]["id"])
    assert "clear" in facts["transcript"]
    client.assert_conformant()
    client.close()


@pytest.mark.processes
def test_the_every_nth_rule_calls_a_tool_without_a_corpus_and_unknown_call_ids_are_rejected(sim_factory) -> None:
    sim = sim_factory(SimConfig(function_call=FunctionCallRule(every=2, arguments='{"city": "Oslo"}'),
                                latency={"first_audio": "fixed:5", "delta_gap": "fixed:1"}, reply_text="Ok."))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt, turn_detection=None, tools=[WEATHER_TOOL])
    kinds = []
    for _ in range(4):
        client.send("conversation.item.create", item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "hi"}]})
        client.send("response.create")
        done = client.until("response.done")[-1]
        kinds.append(done["response"]["output"][0]["type"])
    assert kinds == ["message", "function_call", "message", "function_call"]
    bad = client.send("conversation.item.create", item={"type": "function_call_output", "call_id": "call_nope",
                                                        "output": "{}"})
    error = client.until("error")[-1]["error"]
    assert error["event_id"] == bad["event_id"] and error["param"] == "item.call_id"
    client.assert_conformant()
    client.close()


def test_a_response_create_during_a_tool_call_is_rejected_as_already_active(sim_factory) -> None:
    sim = sim_factory(SimConfig(function_call=FunctionCallRule(every=1),
                                latency={"first_audio": "fixed:400", "delta_gap": "fixed:50"}))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None, tools=[WEATHER_TOOL], tool_choice="required")
    client.send("response.create")
    rid = client.until("response.created")[-1]["response"]["id"]
    second = client.send("response.create")
    error = client.until("error")[-1]["error"]
    assert error["code"] == "conversation_already_has_active_response" and rid in error["message"]
    assert error["event_id"] == second["event_id"]
    assert client.until("response.done")[-1]["response"]["output"][0]["type"] == "function_call"
    client.assert_conformant()
    client.close()
