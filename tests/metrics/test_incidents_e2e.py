"""Each simulator fault and each scenario yields exactly the expected incident cause (or none)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.client import SessionSpec
from harness.metrics import turns_from_trace
from harness.scenarios import SCENARIOS, run_scenario
from harness.sim import SimConfig
from harness.trace import read_trace

FAULTS = [
    ("drop_socket:after_deltas=2", "disconnected"),
    ("close:code=1011,after_deltas=2", "disconnected"),
    ("stall:after_deltas=2,ms=2500", "stalled"),
    ("error_event:after_deltas=2", "failed"),
    ("failed:after_deltas=2", "failed"),
    ("incomplete:after_deltas=2", "max_tokens"),
    ("incomplete:after_deltas=2,reason=content_filter", "content_filter"),
    ("cut_audio:after_deltas=2", "audio_cut_short"),
    ("false_vad:after_deltas=2", "false_barge_in"),
]


def _run(sim_factory: Any, tmp_path: Path, faults: list[str], scenario: str = "plain", turns: int = 1,
         params: dict[str, Any] | None = None, dialect: str = "ga", fmt: str = "pcm16") -> list[dict[str, Any]]:
    # the simulator recognises the tools corpus's requests by their audio and calls the tool
    sim = sim_factory(SimConfig(faults=faults, seed=1, corpus=["corpora/tools"]))
    quick = {"wait_playout": False} if "wait_playout" in SCENARIOS[scenario].defaults else {}
    spec = SessionSpec(url=sim.url, scenario=scenario, turns=turns, rtf=2.0, dialect=dialect, fmt=fmt,
                       trace_dir=tmp_path, scenario_params={**quick, **(params or {})},
                       turn_timeout_s=8.0, lateness_limit_ms=250.0)   # causes, not pacing: a busy CI
    result = run_scenario(spec)                                          # machine may send a chunk late
    return turns_from_trace(read_trace(result.trace_path))


@pytest.mark.parametrize("fault,cause", FAULTS, ids=[f[0].split(":")[0] + ("-cf" if "content" in f[0] else "")
                                                    + ("-close" if "close" in f[0] else "") for f in FAULTS])
def test_each_simulator_fault_yields_exactly_its_incident_cause(sim_factory: Any, tmp_path: Path,
                                                                fault: str, cause: str) -> None:
    rows = _run(sim_factory, tmp_path, [fault])
    assert [r["incident"] for r in rows] == [cause], [(r["status"], r["incident"], r["incident_evidence"]) for r in rows]
    assert rows[0]["incident_evidence"]


def test_audio_slower_than_real_time_shows_as_underruns_not_as_an_incident(sim_factory: Any, tmp_path: Path) -> None:
    rows = _run(sim_factory, tmp_path, ["slow_audio:rtf=1.6"], params={"wait_playout": True})
    row = rows[0]
    assert row["incident"] is None, row["incident_evidence"]
    assert row["underrun_count"] is not None and row["underrun_count"] >= 1, {k: row[k] for k in (
        "status", "response_id", "response_status", "audio_ms", "utterance", "vad_verdict")}
    assert row["underrun_ms"] > 0


@pytest.mark.parametrize("scenario,metric", [
    ("plain", "ttfa_ms"), ("manual", "ttfa_from_commit_ms"), ("client_cancel", "cancel_ack_ms"),
    ("function_call", "tool_roundtrip_ms"),
])
@pytest.mark.parametrize("dialect,fmt", [("ga", "pcm16"), ("beta", "g711_alaw")])
def test_a_clean_run_of_each_scenario_has_no_incident_and_measures_its_metric(
        sim_factory: Any, tmp_path: Path, scenario: str, metric: str, dialect: str, fmt: str) -> None:
    # 500 ms of silence ends a turn: the TTS utterances' own pauses (up to ~300 ms) do not split it
    rows = _run(sim_factory, tmp_path, [], scenario=scenario, turns=2, dialect=dialect, fmt=fmt,
                params={"silence_duration_ms": 500})
    assert rows and all(r["incident"] is None for r in rows), [(r["incident"], r["incident_evidence"]) for r in rows]
    assert all(r["status"] == "ok" for r in rows)
    assert all(r[metric] is not None and r[metric] > 0 for r in rows)


def test_an_expected_barge_in_is_measured_not_reported(sim_factory: Any, tmp_path: Path) -> None:
    rows = _run(sim_factory, tmp_path, [], scenario="barge_in", turns=2, params={"barge_offset_ms": 300})
    interrupted = rows[0]
    assert interrupted["incident"] is None and interrupted["expected_interruption"]
    assert interrupted["barge_in_ms"] is not None and interrupted["barge_in_ms"] >= 0
    assert interrupted["truncate_ack_ms"] is not None
