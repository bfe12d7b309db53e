"""noisy_playback, silence and the client-side mute probe in the Live dialect, against the real
simulator on 127.0.0.1: what each measures there, checked against what the simulator itself did.

Truths, from the simulator's server trace (Live hides its VAD events from the socket, but the
engine stamps them there with `live: "not sent"`) and its sent audio chunks:
- noisy_playback: loud noise (-20 dBFS) under the answer makes the simulator's VAD start "speech"
  while the caller sends no speech, and the answer stops mid-sentence: the turn's incident is
  `false_barge_in`; quiet noise (-70 dBFS, under its energy VAD) starts nothing and the answer
  plays whole, with no incident;
- silence: digital silence makes the simulator send no audio at all, and the turn has no answer;
  loud noise as the "silence" makes it answer, and the caller credits every chunk it sent to the
  silence turn (the Live turn for silence is the span of silence sent);
- mute (`barge_in` with `mute_during_answer`): speech over an answer while muted leaves the answer
  whole (as long as the one nobody spoke over) and asks for nothing; unmuted, the same speech cuts
  the next answer; a server that ignores the mute cuts it and the turn's incident is `muted_barge_in`.
Every event each caller sent validates against the SDK's Live client models.
"""

from __future__ import annotations

import typing
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import pytest

from harness.client import SessionSpec, SpecError
from harness.protocol import Kind
from harness.scenarios import prepare, run_sessions
from harness.sim import SimConfig, live_session, start_in_thread
from harness.sim.process import start_in_process
from harness.trace import read_trace

live_types = pytest.importorskip("openai.types.live")
pydantic = pytest.importorskip("pydantic")

SHORT = "utt11"
FULL_TEXT = "An answer long enough to be spoken over, yes."
SIM = SimConfig(delta_ms=20, reply_text=FULL_TEXT,
                latency={"first_audio": "fixed:300", "delta_gap": "fixed:15", "speech_start": "fixed:300"})
LOUD_DBFS, QUIET_DBFS = -20.0, -70.0


def _client_adapter() -> Any:
    union = typing.get_args(live_types.ClientEvent)[0] if typing.get_origin(live_types.ClientEvent) is Annotated \
        else live_types.ClientEvent
    return pydantic.TypeAdapter(Annotated[typing.Union[tuple(typing.get_args(union))], pydantic.Discriminator("type")])


def _spec(url: str, tmp_path: Path, name: str, scenario: str, turns: int, **params: Any) -> SessionSpec:
    return SessionSpec(url=url, dialect="live", scenario=scenario, turns=turns, rtf=1.0, trace_dir=tmp_path,
                       session_id=name, lateness_limit_ms=1000.0, turn_timeout_s=20.0, scenario_params=params)


class Ran:
    """One session's result, trace, and what the simulator did on its session."""

    def __init__(self, result: Any, server: list[dict[str, Any]]) -> None:
        assert result.reason == "done" and result.error is None and result.measure_error is None, result
        self.result = result
        self.rows = {row["turn"]: row for row in result.records}
        self.trace = read_trace(result.trace_path)
        started = next(r for r in self.trace.records if r.get("rec") == "recv" and r.get("kind") == "session_started")
        sid = started["event"]["session"]["id"]
        mine = [r for r in server if r.get("session") == sid]
        self.sent_chunks = [r for r in mine if r.get("rec") == "send" and r.get("type") == "session.output_audio.delta"]
        self.vad_starts = [r for r in mine if r.get("type") == "input_audio_buffer.speech_started"]
        self.sent_types = [r["event"]["type"] for r in self.trace.records if r.get("rec") == "send"]

    def validate_sent(self) -> None:
        adapter = _client_adapter()
        for record in self.trace.records:
            if record.get("rec") == "send":
                adapter.validate_python(record["event"])


def _run(tmp_path: Path, specs: list[SessionSpec], in_thread: bool = False) -> dict[str, Ran]:
    """Run the specs against one simulator: a child process, or (`in_thread`, for a test that changes
    the simulator's code) a thread of this process."""
    if in_thread:
        with start_in_thread(SIM) as threaded:
            specs = [replace(s, url=threaded.url) for s in specs]
            results = run_sessions(specs)
            threaded.stop()
            server = list(threaded.trace.records)
    else:
        with start_in_process(SIM) as sim:
            specs = [replace(s, url=sim.url) for s in specs]
            results = run_sessions(specs)
            sim.stop()
            server = sim.read_records()
    return {spec.session_id: Ran(result, server) for spec, result in zip(specs, results)}


@pytest.fixture(scope="module")
def honest_sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """One simulator, five concurrent Live sessions: noisy_playback loud and quiet, silence as digital
    silence and as loud noise, and the mute probe (muted, then unmuted, barge-in)."""
    tmp = tmp_path_factory.mktemp("live_scenarios")
    url = "ws://127.0.0.1:9/v1/realtime"
    return _run(tmp, [
        _spec(url, tmp, "noisy_loud", "noisy_playback", 1, noise_dbfs=LOUD_DBFS, utterances=[SHORT]),
        _spec(url, tmp, "noisy_quiet", "noisy_playback", 1, noise_dbfs=QUIET_DBFS, utterances=[SHORT]),
        _spec(url, tmp, "silence_digital", "silence", 1, duration_ms=1500, listen_ms=1000),
        _spec(url, tmp, "silence_noise", "silence", 1, duration_ms=1500, listen_ms=1000, noise="babble",
              noise_dbfs=LOUD_DBFS),
        _spec(url, tmp, "mute", "barge_in", 4, mute_during_answer=True, utterances=[SHORT]),
    ])


def test_loud_noise_under_a_live_answer_that_stops_it_mid_sentence_is_a_false_barge_in(honest_sim: dict[str, Ran]) -> None:
    loud, quiet = honest_sim["noisy_loud"], honest_sim["noisy_quiet"]
    speech_end_ns = next(r["t_ns"] for r in loud.trace.records if r.get("mark") == "speech_end_sent")
    # the simulator's VAD heard "speech" after the caller's last word: only noise was going out
    assert loud.vad_starts and all(v["t_ns"] > speech_end_ns for v in loud.vad_starts[1:])
    row = loud.rows[0]
    assert row["status"] == "ok" and row["incident"] == "false_barge_in", row
    assert row["incident_evidence"]["noise"] is True and row["incident_evidence"]["caller_speaking"] is False
    assert row["transcript"] and row["transcript"] != FULL_TEXT and row["audio_ms"] < quiet.rows[0]["audio_ms"]
    assert len(loud.sent_chunks) == int(row["audio_ms"] / 20)     # the caller heard what was sent, no more
    # quiet noise: the VAD started once (the caller's own utterance), the answer played whole
    assert len(quiet.vad_starts) == 1
    assert quiet.rows[0]["incident"] is None and quiet.rows[0]["transcript"] == FULL_TEXT
    for ran in (loud, quiet):
        ran.validate_sent()


def test_silence_in_live_counts_any_output_audio_during_the_silence_sent_as_that_turns_answer(
        honest_sim: dict[str, Ran]) -> None:
    digital, noise = honest_sim["silence_digital"], honest_sim["silence_noise"]
    assert not digital.sent_chunks and not digital.vad_starts
    assert digital.rows[0]["status"] == "ok" and digital.rows[0]["response_id"] is None
    assert digital.rows[0]["audio_ms"] is None
    # the simulator answered the noise: every chunk it sent is the silence turn's answer
    assert noise.vad_starts and noise.sent_chunks
    row = noise.rows[0]
    assert row["status"] == "ok" and row["response_id"] == "live-1" and row["ttfa_ms"] is None
    assert row["audio_ms"] == pytest.approx(20.0 * len(noise.sent_chunks))
    for ran in (digital, noise):
        ran.validate_sent()


def test_speech_over_a_live_answer_while_muted_leaves_it_whole_and_unmuted_cuts_it(honest_sim: dict[str, Ran]) -> None:
    ran = honest_sim["mute"]
    rows = ran.rows
    assert ran.sent_types == ["session.start", "session.input_audio.mute", "session.input_audio.unmute"]
    ran.validate_sent()
    # turn 0, spoken over while muted: played whole, as long as turn 3's, which nobody spoke over
    assert rows[0]["incident"] is None and rows[0]["response_status"] == "completed"
    assert rows[0]["transcript"] == FULL_TEXT and rows[0]["audio_ms"] == rows[3]["audio_ms"]
    assert rows[0]["barge_in_ms"] is None
    # turn 1, the muted speech: the server heard silence, so it asked for nothing
    assert rows[1]["response_id"] is None and rows[1]["status"] == "ok"
    # turn 2, spoken over unmuted: cut, and its barge-in measured
    assert rows[2]["response_status"] == "interrupted" and rows[2]["barge_in_ms"] is not None
    assert rows[2]["audio_ms"] < rows[3]["audio_ms"]
    assert len(ran.vad_starts) == 3   # turns 0, 2, 3 were heard; the muted turn 1 never was


def test_a_server_that_ignores_the_mute_and_cuts_the_answer_is_a_muted_barge_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def ignore_mute(session: Any, fields: dict[str, Any], t_ns: int, eid: str | None) -> None:
        session.put_live(Kind.INPUT_AUDIO_MUTED, eid)    # acknowledges, keeps listening

    monkeypatch.setitem(live_session._HANDLERS, Kind.INPUT_AUDIO_MUTE, ignore_mute)
    ran = _run(tmp_path, [_spec("ws://127.0.0.1:9/v1/realtime", tmp_path, "deaf", "barge_in", 2,
                                mute_during_answer=True, utterances=[SHORT])], in_thread=True)["deaf"]
    row = ran.rows[0]
    assert row["incident"] == "muted_barge_in" and row["incident_evidence"]["muted"] is True, row
    assert row["transcript"] != FULL_TEXT and len(ran.vad_starts) == 2   # it heard the muted speech
    ran.validate_sent()


def test_mute_during_answer_outside_live_is_refused_in_one_line() -> None:
    with pytest.raises(SpecError, match="mute_during_answer needs --dialect live"):
        prepare(SessionSpec(url="ws://127.0.0.1:9/v1/realtime", scenario="barge_in",
                            scenario_params={"mute_during_answer": True}))
