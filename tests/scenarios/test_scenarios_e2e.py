"""Every scenario, in both dialects and all three formats, against the real simulator on loopback.

Each test runs six sessions at once (2 dialects x 3 formats) and reads every trace back: the
records must tell the whole story of the scenario in the right order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from story import FAST_SIM, SHORT_UTTERANCES, Story, assert_common_story, matrix_specs

from harness.client import SessionSpec
from harness.corpus import SHIPPED_CORPORA_DIR
from harness.scenarios import run_sessions


def _run(sim: Any, tmp_path: Path, scenario: str, turns: int = 2, **params: Any) -> list[tuple[SessionSpec, Story]]:
    specs = matrix_specs(sim.url, tmp_path, scenario, turns=turns, **params)
    results = run_sessions(specs)
    assert [r.reason for r in results] == ["done"] * len(specs), [(r.reason, r.error) for r in results]
    return [(spec, Story.read(result.trace_path)) for spec, result in zip(specs, results)]


def _audio_delta_type(spec: SessionSpec) -> str:
    return "response.output_audio.delta" if spec.dialect == "ga" else "response.audio.delta"


def test_plain_turns_go_speech_then_vad_then_answer_then_playout_in_every_dialect_and_format(sim_factory, tmp_path):
    sim = sim_factory(**FAST_SIM)
    for spec, story in _run(sim, tmp_path, "plain", utterances=SHORT_UTTERANCES):
        assert_common_story(story, spec, turns=2)
        for turn in range(2):
            start = story.marks("turn_start", turn=turn)[0]
            assert start["utterance"] == f"default/{SHORT_UTTERANCES[turn]}" and start["expect"] == "response"
            sent_start = story.marks("speech_start_sent", turn=turn)[0]["t_ns"]
            sent_end = story.marks("speech_end_sent", turn=turn)[0]["t_ns"]
            assert start["t_ns"] <= sent_start < sent_end
        deltas = [r for r in story.received("output_audio_delta")]
        assert deltas and {d["type"] for d in deltas} == {_audio_delta_type(spec)}
        # size, plus the levels of the deltas decoded until the answer was audible (never the audio)
        levels = {"bytes", "ms", "peak", "audible_at_ms", "crossing_rate"}
        assert all({"bytes", "ms"} <= set(d["event"]["delta"]) <= levels for d in deltas)
        audible = [d for d in deltas if "audible_at_ms" in d["event"]["delta"]]
        assert len(audible) == len({d["event"]["response_id"] for d in deltas})   # one decoded onset each
        order = [r["kind"] for r in story.records if r["rec"] == "recv"]
        for a, b in [("speech_started", "speech_stopped"), ("speech_stopped", "committed"),
                     ("committed", "response_created"), ("response_created", "output_audio_delta"),
                     ("output_audio_delta", "response_done")]:
            assert order.index(a) < order.index(b), (a, b)
        assert len(story.marks("playout_start")) == 2 and len(story.marks("playout_end")) == 2
        for end in story.marks("playout_end"):
            start = [m for m in story.marks("playout_start") if m["response_id"] == end["response_id"]][0]
            audio = sum(d["event"]["delta"]["ms"] for d in deltas if d["event"]["response_id"] == end["response_id"])
            assert abs(end["played_ms"] - audio) < 0.01
            assert end["t_ns"] - start["t_ns"] >= audio * 1e6 - 1e3   # real time, never faster


def test_manual_turns_commit_after_the_utterance_then_ask_for_the_response(sim_factory, tmp_path):
    sim = sim_factory(**FAST_SIM)
    for spec, story in _run(sim, tmp_path, "manual", utterances=SHORT_UTTERANCES):
        assert_common_story(story, spec, turns=2)
        assert story.trace.header["session_config"].get("turn_detection", "absent") is None or \
            story.trace.header["session_config"].get("audio", {}).get("input", {}).get("turn_detection") is None
        assert not story.received("speech_started")
        for turn in range(2):
            commit = story.marks("commit_sent", turn=turn)[0]
            create = story.marks("response_create_sent", turn=turn)[0]
            last_chunk = max(a["t_ns"] for a in story.appends() if a["turn"] == turn and a["speech"])
            assert last_chunk < commit["t_ns"] < create["t_ns"]
        assert len(story.sent("input_audio_buffer.commit")) == 2 and len(story.sent("response.create")) == 2
        assert len(story.received("committed")) == 2 and len(story.received("response_done")) == 2


def test_barge_in_truncates_the_answer_at_the_played_position_on_speech_started(sim_factory, tmp_path):
    sim = sim_factory(reply_text="This answer is long enough to be interrupted by the caller.", seed=1)
    for spec, story in _run(sim, tmp_path, "barge_in", barge_offset_ms=300, utterances=SHORT_UTTERANCES):
        assert_common_story(story, spec, turns=2)
        assert story.marks("turn_start", turn=0)[0]["expect"] == "barge_in"
        assert story.marks("turn_start", turn=1)[0]["expect"] == "response"
        stop = story.marks("playout_stop", reason="barge_in")[0]
        start = [m for m in story.marks("playout_start") if m["response_id"] == stop["response_id"]][0]
        speech = [r for r in story.received("speech_started") if r["t_ns"] > start["t_ns"]][0]
        assert stop["t_ns"] == speech["t_ns"]
        assert abs(stop["played_ms"] - (stop["t_ns"] - start["t_ns"]) / 1e6) < 1.0   # no underrun here
        assert stop["played_ms"] >= 300
        truncate = story.marks("truncate_sent", turn=0)[0]
        assert truncate["audio_end_ms"] == int(stop["played_ms"])
        sent = story.sent("conversation.item.truncate")[0]["event"]
        assert sent["audio_end_ms"] == truncate["audio_end_ms"] and sent["item_id"] == truncate["item_id"]
        assert story.received("item_truncated")
        assert len(story.marks("playout_end")) == 1          # the second answer plays to its end


def test_client_cancel_cancels_after_the_configured_audio_then_truncates(sim_factory, tmp_path):
    sim = sim_factory(reply_text="A long answer that the caller is going to cancel part way through it.", seed=1,
                      latency={"delta_gap": "fixed:60"})
    for spec, story in _run(sim, tmp_path, "client_cancel", turns=1, cancel_after_ms=200,
                            utterances=SHORT_UTTERANCES[:1]):
        assert_common_story(story, spec, turns=1)
        assert story.marks("turn_start")[0]["expect"] == "cancel"
        cancel = story.marks("cancel_sent", turn=0)[0]
        before = sum(r["event"]["delta"]["ms"] for r in story.received("output_audio_delta") if r["t_ns"] < cancel["t_ns"])
        assert 200 <= before < 400
        done = [r for r in story.received("response_done") if r["event"]["response"]["id"] == cancel["response_id"]][0]
        assert done["event"]["response"]["status"] == "cancelled"
        assert done["event"]["response"]["status_details"]["reason"] == "client_cancelled"
        stop = story.marks("playout_stop", reason="cancel")[0]
        assert stop["t_ns"] == cancel["t_ns"] and story.marks("truncate_sent")[0]["audio_end_ms"] == int(stop["played_ms"])


def test_function_call_runs_the_local_tool_then_asks_for_the_spoken_follow_up(sim_factory, tmp_path):
    # The simulator recognises the tools corpus's audio, so "weather" in the transcript calls get_weather.
    sim = sim_factory(corpus=[str(SHIPPED_CORPORA_DIR / "tools")], **FAST_SIM)
    for spec, story in _run(sim, tmp_path, "function_call", turns=1, tool_delay_ms=150):
        assert_common_story(story, spec, turns=1)
        assert story.trace.header["session_config"]
        args = story.received("function_call_arguments_done")[0]
        output = story.marks("function_output_sent", turn=0)[0]
        assert output["call_id"] == args["event"]["call_id"]
        assert output["t_ns"] - args["t_ns"] >= 150e6
        item = story.sent("conversation.item.create")[0]["event"]["item"]
        assert item["type"] == "function_call_output" and "sunny" in item["output"]
        create = story.marks("response_create_sent", turn=0)[0]
        dones = story.received("response_done")
        assert len(dones) == 2 and dones[0]["t_ns"] < create["t_ns"] < dones[1]["t_ns"]
        assert story.marks("playout_end")


def test_noisy_playback_sends_noise_instead_of_silence_while_the_answer_plays(sim_factory, tmp_path):
    sim = sim_factory(reply_text="Here is a reply that plays for a little while.", seed=1)
    # -70 dBFS: below the simulator's energy VAD, so the answer plays to its end under the noise
    for spec, story in _run(sim, tmp_path, "noisy_playback", turns=1, noise_dbfs=-70,
                            utterances=SHORT_UTTERANCES[:1]):
        assert story.trace.complete and story.trace.footer["reason"] == "done"
        start = story.marks("playout_start")[0]["t_ns"]
        silence_sha = story.appends()[0]["sha1"]           # chunk 0 is the leading silence
        during = [a for a in story.appends() if a["t_ns"] > start + 100e6]
        ended = story.marks("playout_end") + story.marks("playout_stop")
        assert ended
        during = [a for a in during if a["t_ns"] < ended[0]["t_ns"]]
        assert during and all(a["sha1"] != silence_sha and not a["speech"] for a in during)
        after = [a for a in story.appends() if a["t_ns"] > ended[0]["t_ns"] + 50e6]
        assert all(a["sha1"] == silence_sha for a in after)


def test_loud_noise_during_playback_is_a_false_barge_in_the_caller_reacts_to(sim_factory, tmp_path):
    sim = sim_factory(reply_text="Here is a reply that plays for a little while.", seed=1)
    spec = SessionSpec(url=sim.url, scenario="noisy_playback", turns=1, rtf=4.0, auth="none", trace_dir=tmp_path,
                       lateness_limit_ms=250.0, scenario_params={"noise_dbfs": -25, "utterances": SHORT_UTTERANCES[:1]})
    result = run_sessions([spec])[0]
    story = Story.read(result.trace_path)
    assert result.reason == "done"
    playout = story.marks("playout_start")[0]
    speech_end = story.marks("speech_end_sent")[0]["t_ns"]
    false_start = [r for r in story.received("speech_started") if r["t_ns"] > playout["t_ns"]][0]
    assert false_start["t_ns"] > speech_end      # the caller was saying nothing: only noise was going out
    stop = story.marks("playout_stop")[0]
    assert stop["reason"] == "barge_in" and stop["t_ns"] == false_start["t_ns"]
    assert story.marks("truncate_sent")[0]["audio_end_ms"] == int(stop["played_ms"])
    assert story.marks("turn_end")[0]["status"] == "ok"


def test_silence_sends_no_speech_and_nothing_answers(sim_factory, tmp_path):
    sim = sim_factory(**FAST_SIM)
    for spec, story in _run(sim, tmp_path, "silence", turns=1, duration_ms=1000, listen_ms=300):
        assert_common_story(story, spec, turns=1)
        start = story.marks("turn_start")[0]
        assert start["expect"] == "none" and start["speech_start_ms"] is None
        assert not story.marks("speech_start_sent") and not any(a["speech"] for a in story.appends())
        assert not story.received("response_created") and not story.received("speech_started")


def test_a_response_the_vad_starts_at_a_pause_inside_the_utterance_is_not_taken_for_the_answer(sim_factory, tmp_path):
    # utt36 pauses 337 ms mid-sentence; with 150 ms of silence the server's VAD ends the turn there.
    sim = sim_factory(**FAST_SIM)
    spec = SessionSpec(url=sim.url, turns=1, rtf=4.0, auth="none", trace_dir=tmp_path,
                       lateness_limit_ms=250.0, scenario_params={"utterances": ["utt36"], "silence_duration_ms": 150})
    result = run_sessions([spec])[0]
    story = Story.read(result.trace_path)
    assert result.reason == "done" and result.turns_ok == 1
    speech_end = story.marks("speech_end_sent")[0]["t_ns"]
    created = story.received("response_created")
    assert len(created) >= 2 and created[0]["t_ns"] < speech_end      # the premature response exists ...
    answer = [c for c in created if c["t_ns"] > speech_end][0]["event"]["response"]["id"]
    assert story.marks("playout_end")[0]["response_id"] == answer     # ... and the turn waited for the real one
    assert story.marks("turn_end")[0]["t_ns"] >= story.marks("playout_end")[0]["t_ns"]
