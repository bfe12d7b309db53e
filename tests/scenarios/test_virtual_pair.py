"""Scenarios and turn matching on an in-memory caller/server pair on a virtual clock.

The caller is the real one; time and the wire are virtual (tests/client/memory_pair.py), so
every interval the harness measures is exactly what the server scripted, on any machine, under
any load. These are the correctness tests of the turn matcher and the scenarios; the real-socket
end-to-end tests (test_scenarios_e2e.py) check the same flows against the real simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.client import SessionSpec
from harness.metrics import LATENCY_COLUMNS, turns_from_trace
from harness.scenarios import run_scenario
from harness.trace import read_trace
from tests.client.memory_pair import MS, Delays, ScriptedServer, VirtualClock


def _run(tmp_path: Path, scenario: str, turns: int = 2, delays: Delays | None = None, session_id: str = "v1",
         **spec_fields: Any) -> tuple[Any, ScriptedServer]:
    clock = VirtualClock()
    server = ScriptedServer(clock, delays or Delays())
    # a silence window longer than the corpus's pauses: one commit per utterance
    params = {"silence_duration_ms": 800} if scenario != "manual" else {}
    spec = SessionSpec(url="ws://memory.invalid/v1/realtime", scenario=scenario, turns=turns,
                       trace_dir=tmp_path, session_id=session_id, scenario_params=params, **spec_fields)
    result = run_scenario(spec, clock=clock, connector=server.connect, pacer=clock.pacer)
    assert result.reason == "done", result.error
    return result, server


def _sent(server: ScriptedServer, type_: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in server.sent if e["type"] == type_ and all(e.get(k) == v for k, v in match.items())]


def test_a_plain_turn_measures_exactly_the_delays_the_server_scripted(tmp_path: Path) -> None:
    result, server = _run(tmp_path, "plain", turns=3)
    assert [r["status"] for r in result.records] == ["ok"] * 3
    for row in result.records:
        assert row["ttfa_from_commit_ms"] == 300.0                    # response at commit + 0, audio + 300
        assert row["vad_commit_ms"] - row["vad_stop_ms"] == pytest.approx(200.0, abs=1e-9)
        assert row["ttfa_ms"] == pytest.approx(row["vad_commit_ms"] + 300.0, abs=1e-9)
        assert row["send_lateness_max_ms"] == 0.0 and row["violations"] == 0 and row["incident"] is None
        assert row["underrun_count"] == 0 and row["audio_ms"] == 1000.0


def test_each_turn_is_credited_the_response_created_after_its_own_commit(tmp_path: Path) -> None:
    result, server = _run(tmp_path, "plain", turns=3)
    commits = _sent(server, "input_audio_buffer.committed")
    created = _sent(server, "response.created")
    assert len(commits) == len(created) == 3
    for row, commit in zip(result.records, commits):
        answer = next(c for c in created if c["t_ns"] >= commit["t_ns"])
        assert row["response_id"] == answer["response"]["id"]


def test_the_same_session_on_the_virtual_clock_gives_the_same_records_every_time(tmp_path: Path) -> None:
    first, _ = _run(tmp_path / "a", "client_cancel")
    second, _ = _run(tmp_path / "b", "client_cancel")
    for a, b in zip(first.records, second.records, strict=True):
        assert {k: a[k] for k in LATENCY_COLUMNS} == {k: b[k] for k in LATENCY_COLUMNS}
        assert (a["response_id"], a["status"], a["t_start_ns"]) == (b["response_id"], b["status"], b["t_start_ns"])


def test_client_cancel_measures_the_scripted_cancel_and_truncate_acknowledgements(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "client_cancel", delays=Delays(cancel_ms=15.0, truncate_ms=5.0))
    for row in result.records:
        assert row["status"] == "ok" and row["response_status"] == "cancelled" and row["incident"] is None
        assert row["cancel_ack_ms"] == 15.0 and row["truncate_ack_ms"] == 5.0
        assert row["cancel_leak_ms"] == 0.0


def test_a_barge_in_is_timed_from_the_interrupting_speech_to_the_cancelled_response(tmp_path: Path) -> None:
    # answer audio delivered in real time, so the server is still sending when the caller barges in
    result, server = _run(tmp_path, "barge_in", turns=3, delays=Delays(answer_audio_ms=6000.0, delta_gap_ms=100.0))
    trace = read_trace(result.trace_path)
    interrupted = [r for r in result.records if r["expected_interruption"]]
    assert len(interrupted) == 2
    for row in interrupted:
        assert row["status"] == "ok" and row["response_status"] == "cancelled" and row["incident"] is None
        done = _sent(server, "response.done")
        cancel = next(d for d in done if d["response"]["id"] == row["response_id"])
        interrupter = next(m for m in trace.records if m.get("mark") == "speech_start_sent"
                           and m["turn"] == row["turn"] + 1)
        assert row["barge_in_ms"] == (cancel["t_ns"] - interrupter["t_ns"]) / MS
        assert cancel["response"]["status_details"]["reason"] == "turn_detected"


def test_a_manual_turn_is_answered_after_the_caller_s_own_response_create(tmp_path: Path) -> None:
    result, server = _run(tmp_path, "manual")
    assert [r["status"] for r in result.records] == ["ok", "ok"]
    for row in result.records:
        assert row["ttfa_from_commit_ms"] == 300.0 and row["vad_commit_ms"] is None and row["vad_verdict"] is None


def test_an_answer_slower_than_the_turn_timeout_is_a_timeout_after_exactly_one_timeout(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "plain", turns=1, delays=Delays(first_audio_ms=60_000.0), turn_timeout_s=5.0)
    row = result.records[0]
    assert row["status"] == "timeout" and row["ttfa_ms"] is None
    trace = read_trace(result.trace_path)
    timeout = next(m for m in trace.records if m.get("mark") == "timeout")
    start = next(m for m in trace.records if m.get("mark") == "turn_start")
    # one budget (the utterance's own time plus one timeout), counted from when the turn was
    # queued: at most one chunk before its first chunk went out
    elapsed_ms = (timeout["t_ns"] - start["t_ns"]) / MS
    assert 0.0 <= timeout["waited_ms"] - elapsed_ms <= 20.0 and timeout["waited_ms"] > 5000.0


def test_virtual_records_equal_the_records_measured_offline_from_the_trace(tmp_path: Path) -> None:
    for scenario in ("plain", "barge_in", "client_cancel", "manual", "noisy_playback"):
        result, _ = _run(tmp_path / scenario, scenario, turns=2, delays=Delays(answer_audio_ms=3000.0),
                         session_id=scenario)
        offline = turns_from_trace(read_trace(result.trace_path))
        assert [r["turn"] for r in offline] == [r["turn"] for r in result.records]
        for live, measured in zip(sorted(result.records, key=lambda r: r["turn"]), offline):
            assert {k: live[k] for k in measured} == measured


@pytest.mark.parametrize("fmt", ["pcm16", "g711_ulaw", "g711_alaw"])
def test_the_answer_s_leading_silence_is_measured_to_the_sample_in_every_format(tmp_path: Path, fmt: str) -> None:
    # 137 ms of digital silence before the tone: it ends inside the second 100 ms delta
    result, _ = _run(tmp_path, "plain", turns=2, delays=Delays(leading_silence_ms=137.0), fmt=fmt)
    for row in result.records:
        assert row["status"] == "ok" and row["incident"] is None
        assert row["leading_silence_ms"] == pytest.approx(137.0, abs=1.0)
        # the first audible sample came with the second delta, 20 ms (one delta gap) after the first
        assert row["ttfa_audible_ms"] == pytest.approx(row["ttfa_ms"] + 20.0, abs=1e-6)


def test_an_answer_of_silent_audio_is_a_silent_audio_incident(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "plain", turns=1, delays=Delays(answer="silent"))
    row = result.records[0]
    assert row["incident"] == "silent_audio" and row["ttfa_ms"] is not None and row["ttfa_audible_ms"] is None
    assert row["incident_evidence"]["peak"] == 0


def test_an_answer_without_audio_is_a_no_audio_incident(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "plain", turns=1, delays=Delays(answer="none"))
    row = result.records[0]
    assert row["incident"] == "no_audio" and row["ttfa_ms"] is None
    assert row["incident_evidence"]["output_modalities"] == ["audio"]


def test_pcm16_sent_where_g711_was_declared_is_an_audio_format_mismatch(tmp_path: Path) -> None:
    from harness.protocol import AudioFormat

    result, _ = _run(tmp_path, "plain", turns=1, fmt="g711_ulaw",
                     delays=Delays(send_format=AudioFormat.PCM16, answer_audio_ms=3000.0), turn_timeout_s=60.0)
    row = result.records[0]
    assert row["incident"] == "audio_format_mismatch", row["incident_evidence"]
    assert row["incident_evidence"]["declared_format"] == "g711_ulaw"


def test_the_right_format_is_not_a_mismatch(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "plain", turns=2, fmt="g711_ulaw", delays=Delays(answer_audio_ms=3000.0))
    assert [r["incident"] for r in result.records] == [None, None]


def _violations(result: Any, rule: str) -> list[dict[str, Any]]:
    return [r for r in read_trace(result.trace_path).records if r.get("rec") == "violation" and r["rule"] == rule]


def test_a_target_without_server_vad_is_committed_by_the_caller_and_still_measured(tmp_path: Path) -> None:
    result, server = _run(tmp_path, "client_cancel", delays=Delays(server_vad=False))
    assert [r["status"] for r in result.records] == ["ok", "ok"]
    for row in result.records:
        assert row["ttfa_from_commit_ms"] == 300.0 and row["cancel_ack_ms"] == 15.0   # still measured
        assert row["vad_commit_ms"] is None and row["vad_verdict"] is None
    found = _violations(result, "no_server_vad_commit")
    assert len(found) == 2 and "silence window 800 ms" in found[0]["message"]
    trace = read_trace(result.trace_path)
    for turn in (0, 1):   # committed once the silence window plus the 1.5 s margin had passed
        end = next(m for m in trace.records if m.get("mark") == "speech_end_sent" and m["turn"] == turn)
        commit = next(m for m in trace.records if m.get("mark") == "commit_sent" and m["turn"] == turn)
        assert 2300.0 <= (commit["t_ns"] - end["t_ns"]) / MS <= 2300.0 + 250.0


def test_without_the_fallback_a_target_without_vad_times_out_after_one_budget(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "plain", turns=1, delays=Delays(server_vad=False), vad_fallback="none",
                     turn_timeout_s=4.0)
    assert result.records[0]["status"] == "timeout"
    assert not _violations(result, "no_server_vad_commit")


def test_a_barge_in_turn_that_gets_no_answer_times_out_within_its_one_budget(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "barge_in", turns=2, delays=Delays(first_audio_ms=120_000.0), turn_timeout_s=4.0)
    first = result.records[0]
    assert first["status"] == "timeout" and first["expected_interruption"]
    timeout = next(m for m in read_trace(result.trace_path).records if m.get("mark") == "timeout" and m["turn"] == 0)
    start = next(m for m in read_trace(result.trace_path).records if m.get("mark") == "turn_start" and m["turn"] == 0)
    elapsed_ms = (timeout["t_ns"] - start["t_ns"]) / MS
    assert timeout["waited_ms"] == pytest.approx(elapsed_ms, abs=20.0)
    from harness.scenarios.base import corpus_of

    clip_ms = corpus_of("corpora/default").get(start["utterance"]).duration_ms
    assert elapsed_ms <= clip_ms + 20.0 + 4000.0 + 20.0     # one budget: the utterance plus one timeout
