"""Each row of the protocol reference's error table (section 5f), in both dialects, plus auth and expiry."""

from __future__ import annotations

import pytest
from sim_client import RawClient, burst_audio, session_body
from websockets.exceptions import ConnectionClosed

from harness.protocol import AudioFormat
from harness.sim import SimConfig


def _error_for(client: RawClient, sent: dict) -> dict:
    error = client.until("error")[-1]
    assert error["event_id"].startswith("event_")
    body = error["error"]
    assert body["event_id"] == sent.get("event_id")
    return body


@pytest.fixture
def client(sim, request):
    c = RawClient(sim.url, request.param)
    c.until("session.created")
    yield c
    c.close()


both = pytest.mark.parametrize("client", ["ga", "beta"], indirect=True)


@pytest.mark.processes
@both
@pytest.mark.parametrize("appended_ms", [0, 40, 99])
def test_a_commit_under_100_ms_is_rejected_with_commit_empty(client: RawClient, appended_ms: int) -> None:
    fmt = AudioFormat.PCM16
    client.configure(fmt, turn_detection=None)
    if appended_ms:
        client.append(burst_audio(fmt, [("speech", appended_ms)]), fmt, chunk_ms=appended_ms)
    sent = client.send("input_audio_buffer.commit")
    body = _error_for(client, sent)
    assert (body["type"], body["code"], body["param"]) == ("invalid_request_error", "input_audio_buffer_commit_empty", None)
    assert body["message"] == ("Error committing input audio buffer: buffer too small. Expected at least 100ms of "
                               f"audio, but buffer only has {appended_ms:.2f}ms of audio.")
    assert client.quiet_for(0.2) == []  # no committed, session continues


@both
def test_a_silent_commit_of_100_ms_or_more_is_accepted(client: RawClient) -> None:
    fmt = AudioFormat.G711_ULAW
    client.configure(fmt, turn_detection=None)
    client.append(burst_audio(fmt, [("silence", 100)]), fmt)
    client.send("input_audio_buffer.commit")
    assert client.until("input_audio_buffer.committed")[-1]["item_id"].startswith("item_")


@both
def test_clear_empties_the_buffer_so_a_following_commit_is_empty(client: RawClient) -> None:
    fmt = AudioFormat.PCM16
    client.configure(fmt, turn_detection=None)
    client.append(burst_audio(fmt, [("speech", 300)]), fmt)
    client.send("input_audio_buffer.clear")
    client.until("input_audio_buffer.cleared")
    body = _error_for(client, client.send("input_audio_buffer.commit"))
    assert body["code"] == "input_audio_buffer_commit_empty"


@both
def test_an_unknown_type_is_invalid_value_on_param_type(client: RawClient) -> None:
    body = _error_for(client, client.send("response.explode"))
    assert (body["code"], body["param"]) == ("invalid_value", "type")
    assert "'response.explode'" in body["message"]


@both
def test_a_missing_type_and_broken_json_are_invalid_events(client: RawClient) -> None:
    client.ws.send('{"event_id": "e1"}')
    body = client.until("error")[-1]["error"]
    assert body["code"] == "invalid_event" and "type" in body["message"]
    client.ws.send("{not json")
    body = client.until("error")[-1]["error"]
    assert body["type"] == "invalid_request_error" and body["code"] == "invalid_json"
    assert body["message"].startswith("We could not parse the JSON body of your request.")


@both
def test_a_bad_enum_value_names_the_dotted_param_and_rejects_the_whole_update(client: RawClient) -> None:
    fmt_param = "session.audio.input.format" if client.dialect == "ga" else "session.input_audio_format"
    session = session_body(client.dialect, AudioFormat.PCM16)
    if client.dialect == "ga":
        session["audio"]["input"]["format"] = {"type": "audio/mp3"}
    else:
        session["input_audio_format"] = "mp3"
    session["instructions"] = "should not apply"
    body = _error_for(client, client.send("session.update", session=session))
    assert (body["code"], body["param"]) == ("invalid_value", fmt_param)
    client.send("session.update", session=session_body(client.dialect, AudioFormat.PCM16))
    assert client.until("session.updated")[-1]["session"]["instructions"] != "should not apply"


def test_ga_session_update_without_session_type_is_missing_required_parameter(sim) -> None:
    client = RawClient(sim.url, "ga")
    client.until("session.created")
    body = _error_for(client, client.send("session.update", session={"instructions": "hi"}))
    assert (body["code"], body["param"]) == ("missing_required_parameter", "session.type")
    client.close()


def test_a_beta_field_on_ga_is_an_unknown_parameter(sim) -> None:
    client = RawClient(sim.url, "ga")
    client.until("session.created")
    body = _error_for(client, client.send("session.update", session={"type": "realtime", "modalities": ["audio"]}))
    assert body["code"] == "unknown_parameter" and body["param"] == "session.modalities"
    client.close()


@both
def test_changing_the_voice_after_assistant_audio_is_rejected(client: RawClient) -> None:
    fmt = AudioFormat.PCM16
    client.configure(fmt, turn_detection=None)
    client.send("response.create")
    client.until("response.done")
    voice = {"audio": {"output": {"voice": "ash"}}} if client.dialect == "ga" else {"voice": "ash"}
    session = {"type": "realtime", **voice} if client.dialect == "ga" else voice
    body = _error_for(client, client.send("session.update", session=session))
    assert body["code"] == "cannot_update_voice"
    assert body["message"] == "Cannot update a conversation's voice if assistant audio is present."


@pytest.mark.processes
def test_a_binary_frame_gets_an_error_and_the_session_continues(sim) -> None:
    client = RawClient(sim.url)
    client.until("session.created")
    client.ws.send(b"\x00\x01binary")
    assert client.until("error")[-1]["error"]["code"] == "invalid_event"
    client.configure(AudioFormat.PCM16)
    client.close()


@pytest.mark.processes
def test_a_missing_key_is_refused_after_the_upgrade_with_invalid_api_key(sim_factory) -> None:
    sim = sim_factory(SimConfig(require_key=True))
    client = RawClient(sim.url, headers={})
    error = client.recv()
    assert error["type"] == "error" and error["error"]["code"] == "invalid_api_key"
    assert error["error"]["message"] == "Missing bearer or basic authentication in header"
    with pytest.raises(ConnectionClosed) as info:
        client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    ok = RawClient(sim.url)  # any key will do without ENV:NAME
    assert ok.recv()["type"] == "session.created"
    ok.close()


def test_a_wrong_key_is_refused_and_never_echoed(sim_factory, monkeypatch) -> None:
    monkeypatch.setenv("SIM_TEST_KEY", "sk-right")
    sim = sim_factory(SimConfig(require_key="ENV:SIM_TEST_KEY"))
    client = RawClient(sim.url, headers={"Authorization": "Bearer sk-wrong-secret"})
    error = client.recv()
    assert error["error"]["code"] == "invalid_api_key" and "sk-wrong" not in error["error"]["message"]
    good = RawClient(sim.url, headers={}, subprotocols=["realtime", "openai-insecure-api-key.sk-right"])
    assert good.recv()["type"] == "session.created" and good.ws.subprotocol == "realtime"
    good.close()
    assert "sk-" not in repr(sim.trace.records)


@pytest.mark.processes
def test_a_session_past_its_maximum_duration_gets_session_expired_and_is_closed(sim_factory) -> None:
    sim = sim_factory(SimConfig(session_max_s=0.3))
    client = RawClient(sim.url)
    client.until("session.created")
    error = client.until("error", timeout=5)[-1]["error"]
    assert error["code"] == "session_expired"
    with pytest.raises(ConnectionClosed):
        client.recv(timeout=5)


def test_the_beta_subprotocol_selects_beta_and_is_selected_back(sim) -> None:
    client = RawClient(sim.url, "beta", subprotocols=["realtime", "openai-beta.realtime-v1"])
    assert client.ws.subprotocol == "realtime"
    session = client.recv()["session"]
    assert "input_audio_format" in session  # beta shape
    client.close()


def test_reject_beta_answers_the_beta_shape_like_the_service_does_today(sim_factory) -> None:
    sim = sim_factory(SimConfig(reject_beta=True))
    client = RawClient(sim.url, "beta")
    error = client.recv()["error"]
    assert error["code"] == "beta_api_shape_disabled"
    with pytest.raises(ConnectionClosed) as info:
        client.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4000
    ga = RawClient(sim.url, "ga")
    assert ga.recv()["type"] == "session.created"
    ga.close()
