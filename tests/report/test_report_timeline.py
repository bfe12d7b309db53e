"""Session timelines: lanes built from traces of the real client against the real simulator, and
from synthetic traces with a known incident."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.client import SessionSpec
from harness.report import render_session_timeline
from harness.report.synthetic_trace import write_session_trace
from harness.report.timeline import collect_lanes
from harness.report.timeline_events import event_rows
from harness.scenarios import run_sessions
from harness.trace import read_trace

HEADER = {"run_id": "r", "session_id": "s1", "worker": "w0", "target": "ws://127.0.0.1:1/v1/realtime",
          "dialect": "ga", "format": "pcm16", "scenario": "plain"}


def _lane(lanes: Any, name: str) -> list[Any]:
    return [b for b in lanes.bars if b[0] == name]


def _ms(trace: Any, t_ns: int) -> float:
    return (t_ns - min(r["t_ns"] for r in trace.records)) / 1e6


def test_a_false_barge_in_shows_the_cancelled_response_and_the_moment_audio_was_cut(tmp_path: Path) -> None:
    path = write_session_trace(tmp_path / "t.jsonl", HEADER, [
        {"turn": 0, "ttfa_ms": 700.0, "incident": None},
        {"turn": 1, "ttfa_ms": 650.0, "incident": "false_barge_in"},
    ])
    trace = read_trace(path)
    lanes = collect_lanes(trace)
    stop = next(r for r in trace.records if r.get("mark") == "playout_stop")
    assert len(lanes.cuts) == 1
    assert lanes.cuts[0][0] == pytest.approx(_ms(trace, stop["t_ns"]))
    assert "barge_in" in lanes.cuts[0][1] and "600" in lanes.cuts[0][1]
    responses = _lane(lanes, "responses")
    assert [b[3] for b in responses] == ["#2ca02c", "#d62728"]  # completed, then cancelled
    assert "turn_detected" in responses[1][4]
    speech_runs = [b for b in _lane(lanes, "caller audio") if b[3] == "#1b7837"]
    assert len(speech_runs) == 2 and all(b[2] == pytest.approx(1800.0) for b in speech_runs)
    assert [t[0] for t in lanes.turns] == [0, 1]


def test_a_stall_shows_an_underrun_bar_of_its_length(tmp_path: Path) -> None:
    path = write_session_trace(tmp_path / "t.jsonl", HEADER, [{"turn": 0, "ttfa_ms": 700.0, "incident": "stalled"}])
    underruns = [b for b in _lane(collect_lanes(read_trace(path)), "playout") if b[4].startswith("underrun")]
    assert len(underruns) == 1 and underruns[0][2] == pytest.approx(1900.0)


def test_error_messages_from_the_target_are_escaped_in_the_timeline_page(tmp_path: Path) -> None:
    path = write_session_trace(tmp_path / "t.jsonl", HEADER, [
        {"turn": 0, "ttfa_ms": 700.0, "incident": "failed", "error_message": "<script>alert(3)</script>"}])
    page = render_session_timeline(path, tmp_path / "timeline.html").read_text()
    assert "<script>alert(3)" not in page
    assert "&lt;script&gt;alert(3)" in page                       # event table
    assert "&lt;script&gt;alert(3)&lt;\\u002fscript&gt;" in page   # hover text in the figure JSON


def test_the_event_table_of_one_turn_holds_only_that_turn(tmp_path: Path) -> None:
    path = write_session_trace(tmp_path / "t.jsonl", HEADER, [
        {"turn": 0, "ttfa_ms": 700.0, "incident": None}, {"turn": 1, "ttfa_ms": 700.0, "incident": None}])
    rows = event_rows(read_trace(path), turn=1)
    starts = [r for r in rows if r[2] == "turn_start"]
    assert len(starts) == 1 and '"turn":1' in starts[0][3]
    assert not any(r[2] == "append" for r in rows)


@pytest.mark.parametrize("scenario, params", [("barge_in", {"barge_offset_ms": 300}), ("client_cancel", {})])
def test_the_timeline_of_a_real_session_shows_what_the_trace_recorded(sim_factory: Any, tmp_path: Path,
                                                                      scenario: str, params: dict[str, Any]) -> None:
    sim = sim_factory(reply_text="This answer is long enough to be interrupted by the caller.", seed=1)
    spec = SessionSpec(url=sim.url, scenario=scenario, turns=2, rtf=4.0, auth="none", trace_dir=tmp_path,
                       session_id=f"real-{scenario}", turn_timeout_s=10,
                       scenario_params={"utterances": ["utt01", "utt11"], **params})
    (result,) = run_sessions([spec])
    assert result.reason == "done", result.error
    trace = read_trace(result.trace_path)
    lanes = collect_lanes(trace)
    deltas = [r for r in trace.records if r.get("kind") == "output_audio_delta"]
    assert len([p for p in lanes.points if p[0] == "audio deltas"]) == len(deltas) > 0
    done = [r for r in trace.records if r.get("kind") == "response_done"]
    assert len(_lane(lanes, "responses")) == len(done)
    stops = [r for r in trace.records if r.get("mark") == "playout_stop" and r.get("reason") != "end"]
    assert [round(c[0], 3) for c in lanes.cuts] == [round(_ms(trace, s["t_ns"]), 3) for s in stops]
    assert stops, "the scenario interrupts one answer"
    if scenario == "client_cancel":
        statuses = [d["event"]["response"]["status"] for d in done]
        assert "cancelled" in statuses
        assert any("client_cancelled" in b[4] for b in _lane(lanes, "responses"))
    page = render_session_timeline(result.trace_path, tmp_path / "timeline.html", turn=0)
    assert page.read_text().count("Plotly.newPlot(") == 1


def test_the_callers_own_pacing_trouble_is_marked_in_the_errors_lane(tmp_path: Path) -> None:
    from harness.trace import TraceRecorder

    recorder = TraceRecorder(tmp_path / "t.jsonl", header=HEADER)
    recorder.mark("connect_start", 1_000_000_000)
    recorder.mark("pacing_invalid", 1_500_000_000, turn=0, seq=7, lateness_ms=31.5)
    recorder.close("done")
    points = [p for p in collect_lanes(read_trace(tmp_path / "t.jsonl")).points if p[0] == "errors"]
    assert len(points) == 1 and points[0][1] == 500.0 and "pacing_invalid" in points[0][4] and "31.5" in points[0][4]


def test_a_response_the_server_cancelled_is_cut_where_its_audio_ran_out(tmp_path: Path) -> None:
    from harness.trace import TraceRecorder

    ms = 1_000_000
    recorder = TraceRecorder(tmp_path / "t.jsonl", header=HEADER)
    recorder.mark("connect_start", 0)
    recorder.recv(100 * ms, "response.created", "response_created", {"response": {"id": "r1"}})
    recorder.mark("playout_start", 150 * ms, response_id="r1", item_id="i1")
    recorder.recv(180 * ms, "response.done", "response_done", {"response": {
        "id": "r1", "status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"}}})
    recorder.mark("playout_end", 350 * ms, response_id="r1", played_ms=200.0)
    recorder.close("done")
    cuts = collect_lanes(read_trace(tmp_path / "t.jsonl")).cuts
    assert cuts == [(350.0, "audio cut: response cancelled turn_detected after 200 ms")]


def test_a_socket_closed_mid_playout_is_a_cut(tmp_path: Path) -> None:
    from harness.trace import TraceRecorder

    ms = 1_000_000
    recorder = TraceRecorder(tmp_path / "t.jsonl", header=HEADER)
    recorder.mark("connect_start", 0)
    recorder.mark("playout_start", 150 * ms, response_id="r1", item_id="i1")
    recorder.mark("close", 400 * ms, code=1006, reason="", by="server")
    recorder.close("closed")
    cuts = collect_lanes(read_trace(tmp_path / "t.jsonl")).cuts
    assert cuts == [(400.0, "audio cut: socket closed (1006)")]
