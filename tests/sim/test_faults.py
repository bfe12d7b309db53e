"""Every fault kind, injected by rule, produces exactly the incident it names (and only for the chosen responses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_client import NAMES, RawClient, burst_audio, types
from websockets.exceptions import ConnectionClosed

from harness.protocol import AudioFormat
from harness.sim import SimConfig

REPLY = "One two three four five six seven eight nine ten eleven twelve."  # 64 chars -> 3.8 s -> 39 deltas
FAST = {"first_audio": "fixed:10", "delta_gap": "fixed:5"}
REPLY_MS = round(len(REPLY) * 60 / 10) * 10  # its audio at the default 60 ms per character


def _start(sim_factory, fault: str, dialect: str = "ga", latency: dict | None = None, **cfg) -> RawClient:
    sim = sim_factory(SimConfig(faults=[fault], reply_text=REPLY, latency=latency or FAST, **cfg))
    client = RawClient(sim.url, dialect)
    client.sim = sim  # type: ignore[attr-defined]
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None)
    client.send("response.create")
    return client


def _audio_deltas(events: list[dict], dialect: str = "ga") -> list[dict]:
    return [e for e in events if e["type"] == NAMES[dialect]["audio_delta"]]


def _until_closed(client: RawClient) -> tuple[list[dict], ConnectionClosed]:
    got = []
    with pytest.raises(ConnectionClosed) as info:
        while True:
            got.append(client.recv(timeout=10))
    return got, info.value


@pytest.mark.processes
def test_drop_socket_aborts_the_connection_after_n_deltas(sim_factory) -> None:
    client = _start(sim_factory, "drop_socket:after_deltas=3")
    events, closed = _until_closed(client)
    assert len(_audio_deltas(events)) == 3 and "response.done" not in types(events)
    assert closed.rcvd is None  # no close frame: the TCP connection was dropped


@pytest.mark.parametrize("code", [1000, 1011, 4000])
def test_close_sends_the_configured_close_code_mid_response(sim_factory, code: int) -> None:
    client = _start(sim_factory, f"close:code={code},after_deltas=2")
    events, closed = _until_closed(client)
    assert len(_audio_deltas(events)) == 2 and closed.rcvd is not None and closed.rcvd.code == code


@pytest.mark.processes
def test_stall_pauses_the_deltas_for_the_configured_time_then_completes(sim_factory) -> None:
    client = _start(sim_factory, "stall:after_deltas=2,ms=400")
    events = client.until("response.done")
    assert events[-1]["response"]["status"] == "completed"
    deltas = [r for r in client.sim.trace.records if r.get("type") == "response.output_audio.delta"]
    assert deltas[2]["stall_ns"] == 400_000_000 and deltas[2]["delay_ns"] == 405_000_000
    received = _audio_deltas(events)
    assert received[2]["_t_ns"] - received[1]["_t_ns"] >= 400_000_000
    client.assert_conformant()


@pytest.mark.processes
def test_malformed_json_is_one_broken_frame_in_an_otherwise_complete_response(sim_factory) -> None:
    client = _start(sim_factory, "malformed_json:after_deltas=1")
    events = client.until("response.done")
    broken = [e for e in events if e["type"] == "<malformed>"]
    assert len(broken) == 1 and events[-1]["response"]["status"] == "completed"
    assert types(events).index("<malformed>") > types(events).index("response.output_audio.delta")


def test_error_event_is_a_server_error_and_the_response_carries_on(sim_factory) -> None:
    client = _start(sim_factory, "error_event:after_deltas=1")
    events = client.until("response.done")
    errors = [e for e in events if e["type"] == "error"]
    assert [e["error"]["type"] for e in errors] == ["server_error"]
    assert events[-1]["response"]["status"] == "completed"
    client.assert_conformant()


def test_failed_ends_the_response_failed_after_an_error_event(sim_factory) -> None:
    client = _start(sim_factory, "failed:after_deltas=2")
    events = client.until("response.done")
    assert "error" in types(events)
    response = events[-1]["response"]
    assert response["status"] == "failed"
    assert response["status_details"] == {"type": "failed", "error": {"type": "server_error", "code": "server_error"}}
    client.assert_conformant()


@pytest.mark.parametrize("reason", ["max_output_tokens", "content_filter"])
@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_incomplete_ends_the_response_with_the_reason_and_an_incomplete_item(sim_factory, reason: str,
                                                                              dialect: str) -> None:
    client = _start(sim_factory, f"incomplete:reason={reason},after_deltas=2", dialect)
    events = client.until("response.done")
    assert len(_audio_deltas(events, dialect)) == 2
    response = events[-1]["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": reason}
    assert response["output"][0]["status"] == "incomplete"
    client.assert_conformant()


def test_cut_audio_stops_the_audio_early_but_reports_the_full_transcript(sim_factory) -> None:
    client = _start(sim_factory, "cut_audio:after_deltas=4")
    events = client.until("response.done")
    assert len(_audio_deltas(events)) == 4  # of 39
    transcript_done = [e for e in events if e["type"] == "response.output_audio_transcript.done"][0]
    assert transcript_done["transcript"] == REPLY
    assert "response.output_audio.done" in types(events)
    assert events[-1]["response"]["status"] == "completed"
    client.assert_conformant()


@pytest.mark.processes
def test_slow_audio_spaces_deltas_by_rtf_times_their_duration(sim_factory) -> None:
    client = _start(sim_factory, "slow_audio:rtf=1.5,after_deltas=0")
    client.until("response.done")
    deltas = [r for r in client.sim.trace.records if r.get("type") == "response.output_audio.delta"]
    gaps = {r["delay_ns"] for r in deltas[1:-1]}
    assert gaps == {150_000_000}  # 100 ms deltas, 1.5 x slower than real time
    assert all(r["slow_audio_rtf"] == 1.5 for r in deltas[1:])
    client.assert_conformant()


@pytest.mark.processes
def test_false_vad_cancels_with_turn_detected_on_silent_input(sim_factory) -> None:
    sim = sim_factory(SimConfig(faults=["false_vad:after_deltas=3,nth=1"], reply_text=REPLY, latency=FAST))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("speech", 400), ("silence", 300)]), fmt)
    events = client.until("response.done")
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    assert len(started) == 2  # the real one, then the false trigger during the response
    assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert len(_audio_deltas(events)) == 3
    # the caller keeps streaming silence: the VAD stops the phantom turn and answers it (the incident)
    client.append(burst_audio(fmt, [("silence", 400)]), fmt)
    rest = client.until("response.done")
    assert [e["item_id"] for e in rest if e["type"] == "input_audio_buffer.speech_stopped"] == [started[1]["item_id"]]
    assert rest[-1]["response"]["status"] == "completed"
    assert [r["kind"] for r in sim.trace.records if r["rec"] == "fault"] == ["false_vad"]
    client.assert_conformant()


def test_noise_during_playout_with_a_low_threshold_barges_in_and_a_high_one_does_not(sim_factory) -> None:
    import numpy as np

    from harness.audio import to_wire

    fmt = AudioFormat.PCM16
    noise = to_wire((np.random.default_rng(1).standard_normal(24000) * 10 ** (-45 / 20) * 32767).astype(np.int16),
                    24000, fmt)
    outcomes = {}
    for threshold in (0.3, 0.7):
        sim = sim_factory(SimConfig(reply_text=REPLY, latency={"first_audio": "fixed:10", "delta_gap": "fixed:40"}))
        client = RawClient(sim.url)
        client.until("session.created")
        client.configure(fmt, turn_detection={"type": "server_vad", "threshold": threshold,
                                              "silence_duration_ms": 200, "prefix_padding_ms": 300})
        client.append(burst_audio(fmt, [("speech", 400), ("silence", 300)], dbfs=-12), fmt)
        client.until("response.output_audio.delta")
        client.append(noise, fmt)
        done = client.until("response.done")[-1]["response"]
        outcomes[threshold] = (done["status"], (done["status_details"] or {}).get("reason"))
        client.close()
    assert outcomes == {0.3: ("cancelled", "turn_detected"), 0.7: ("completed", None)}


def test_probability_zero_never_fires_and_nth_fires_once(sim_factory) -> None:
    sim = sim_factory(SimConfig(faults=["drop_socket:p=0", "incomplete:nth=2"], reply_text="Hi.", latency=FAST))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None)
    statuses = []
    for _ in range(3):
        client.send("response.create")
        statuses.append(client.until("response.done")[-1]["response"]["status"])
    assert statuses == ["completed", "incomplete", "completed"]
    client.assert_conformant()


def test_discard_mode_accepts_the_session_and_audio_and_answers_nothing_else(sim_factory) -> None:
    sim = sim_factory(SimConfig(discard=True))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16)
    fmt = AudioFormat.PCM16
    client.append(burst_audio(fmt, [("speech", 500), ("silence", 500)]), fmt)
    client.send("input_audio_buffer.commit")
    client.send("response.create")
    assert client.quiet_for(0.5) == []


# ---- target behaviours (issue 15): shape faults on a whole response, session faults on a whole session

def _audio_bytes(events: list[dict], dialect: str = "ga") -> bytes:
    import base64

    return b"".join(base64.b64decode(e["delta"]) for e in _audio_deltas(events, dialect))


def _one_answer(sim_factory, fault: str, fmt: AudioFormat) -> tuple[RawClient, dict, list[dict]]:
    """A manual session in `fmt` under `fault`: (client, its session.updated, the events of one response)."""
    sim = sim_factory(SimConfig(faults=[fault], reply_text=REPLY, latency=FAST))
    client = RawClient(sim.url)
    client.until("session.created")
    ack = client.configure(fmt, turn_detection=None)
    client.send("response.create")
    return client, ack, client.until("response.done")


def test_text_only_answers_with_text_deltas_and_no_audio_although_audio_was_asked(sim_factory) -> None:
    client = _start(sim_factory, "text_only")
    events = client.until("response.done")
    assert _audio_deltas(events) == [] and "response.output_text.delta" in types(events)
    assert events[-1]["response"]["status"] == "completed"
    assert events[-1]["response"]["output_modalities"] == ["text"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == REPLY
    client.assert_conformant()


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_silent_audio_sends_the_answer_as_digital_silence_in_the_declared_format(sim_factory, fmt: AudioFormat) -> None:
    from harness.audio import silence_bytes

    client, _, events = _one_answer(sim_factory, "silent_audio", fmt)
    audio = _audio_bytes(events)
    assert len(audio) == int(REPLY_MS * fmt.rate_hz / 1000) * fmt.bytes_per_sample
    assert audio == silence_bytes(fmt, len(audio))
    client.assert_conformant()


def test_silent_audio_with_a_level_scales_the_answer_below_audibility(sim_factory) -> None:
    import numpy as np

    from harness.audio import from_wire
    from harness.audio.levels import AUDIBLE_PEAK

    client = _start(sim_factory, "silent_audio:dbfs=-60")
    samples = from_wire(_audio_bytes(client.until("response.done")), AudioFormat.PCM16)
    peak = int(np.abs(samples.astype(np.int32)).max())
    assert 0 < peak < AUDIBLE_PEAK and abs(peak - 10 ** (-60 / 20) * 32767) <= 2


@pytest.mark.parametrize("declared,sent", [(AudioFormat.G711_ULAW, AudioFormat.PCM16),
                                           (AudioFormat.PCM16, AudioFormat.G711_ULAW)])
def test_wrong_format_sends_another_format_than_the_session_declares(sim_factory, declared: AudioFormat,
                                                                      sent: AudioFormat) -> None:
    from harness.sim.voice import AnswerVoice

    _, ack, events = _one_answer(sim_factory, "wrong_format", declared)
    assert ack["session"]["audio"]["output"]["format"] == declared.render("ga")
    assert _audio_bytes(events) == AnswerVoice().audio(sent, REPLY_MS)   # the answer, sample for sample, in `sent`
    assert events[-1]["response"]["audio"]["output"]["format"] == declared.render("ga")


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_leading_silence_prepends_exactly_that_many_samples_of_digital_silence(sim_factory, fmt: AudioFormat) -> None:
    from harness.audio import silence_bytes
    from harness.sim.voice import AnswerVoice

    client, _, events = _one_answer(sim_factory, "leading_silence:ms=180", fmt)
    audio = _audio_bytes(events)
    lead = int(180 * fmt.rate_hz / 1000) * fmt.bytes_per_sample
    assert audio == silence_bytes(fmt, lead) + AnswerVoice().audio(fmt, REPLY_MS)
    client.assert_conformant()


def test_error_no_done_sends_an_error_and_never_the_response_done_then_answers_the_next(sim_factory) -> None:
    sim = sim_factory(SimConfig(faults=["error_no_done:nth=1,after_deltas=2"], reply_text=REPLY, latency=FAST))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=None)
    client.send("response.create")
    events = client.until("error")
    assert events[-1]["error"]["type"] == "server_error" and len(_audio_deltas(events)) == 2
    assert "response.done" not in types(client.quiet_for(0.5))
    client.send("response.create")                     # the target forgot the broken response
    assert client.until("response.done")[-1]["response"]["status"] == "completed"


def test_refuse_closes_with_its_code_and_reason_before_session_created(sim_factory) -> None:
    sim = sim_factory(SimConfig(faults=["refuse:code=4000,reason=no realtime for you"]))
    client = RawClient(sim.url)
    events, closed = _until_closed(client)
    assert events == [] and closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "no realtime for you")


def test_a_refuse_with_probability_hits_some_sessions_the_same_way_for_the_same_seed(sim_factory) -> None:
    from harness.sim.faults import FaultPlan

    plan = FaultPlan.parse(["refuse:p=0.5", "drop_socket:p=0.5"])
    hits = [bool(plan.session_faults(3, i)) for i in range(40)]
    assert hits == [bool(plan.session_faults(3, i)) for i in range(40)] and 5 < sum(hits) < 35
    assert [f.kind for f in plan.chooser(3, 0).next_response()] in ([], ["drop_socket"])   # never a session fault


@pytest.mark.parametrize("turn_detection", ["default", None], ids=["server-vad", "turn-detection-off"])
def test_vad_without_speech_fires_speech_started_early_on_silence(sim_factory, turn_detection) -> None:
    sim = sim_factory(SimConfig(faults=["vad_without_speech:ms=70"], latency=FAST))
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(AudioFormat.PCM16, turn_detection=turn_detection)
    client.append(burst_audio(AudioFormat.PCM16, [("silence", 200)]), AudioFormat.PCM16)
    started = client.until("input_audio_buffer.speech_started")[-1]
    assert started["audio_start_ms"] == 70
    assert client.quiet_for(0.3) == []      # once, and nothing follows it on silence


def test_no_server_vad_acknowledges_server_vad_but_never_detects_or_commits(sim_factory) -> None:
    sim = sim_factory(SimConfig(faults=["no_server_vad"], latency=FAST))
    client = RawClient(sim.url)
    client.until("session.created")
    ack = client.configure(AudioFormat.PCM16)
    assert ack["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    client.append(burst_audio(AudioFormat.PCM16, [("speech", 500), ("silence", 700)]), AudioFormat.PCM16)
    assert client.quiet_for(0.5) == []
    client.send("input_audio_buffer.commit")           # a manual commit still works
    assert client.until("input_audio_buffer.committed")


def test_ignore_session_update_echoes_the_session_as_created(sim_factory) -> None:
    sim = sim_factory(SimConfig(faults=["ignore_session_update"]))
    client = RawClient(sim.url)
    created = client.until("session.created")[-1]["session"]
    ack = client.configure(AudioFormat.G711_ULAW, turn_detection=None)["session"]
    assert ack["audio"] == created["audio"] and ack["audio"]["input"]["turn_detection"] is not None


def test_each_new_fault_is_documented_and_its_settings_are_checked() -> None:
    from harness.sim.faults import FAULT_KINDS, Fault, SimConfigError

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for kind in ("text_only", "silent_audio", "wrong_format", "leading_silence", "error_no_done", "refuse",
                 "vad_without_speech", "no_server_vad", "ignore_session_update"):
        assert FAULT_KINDS[kind][1] and f"`{kind}`" in readme, kind
    for bad in ("wrong_format:as=mp3", "silent_audio:dbfs=-20", "refuse:code=99", "leading_silence:ms=-1"):
        with pytest.raises(SimConfigError):
            Fault.parse(bad)
