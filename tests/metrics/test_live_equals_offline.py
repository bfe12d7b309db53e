"""The records a session produces while it runs equal the records measured offline from its trace.

Each session's turn meter is fed every record as it is written; `turns_from_trace` feeds the
trace file's records to a new meter. Field by field the two must agree, for every scenario and
for every simulator fault (the faults exercise the incident and status paths).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.client import SessionSpec
from harness.metrics import COLUMNS, turns_from_trace
from harness.scenarios import SCENARIOS, run_sessions
from harness.sim import SimConfig
from harness.trace import read_trace

FAULTS = ["drop_socket:after_deltas=2", "close:code=1011,after_deltas=2", "stall:after_deltas=2,ms=1500",
          "error_event:after_deltas=2", "failed:after_deltas=2", "incomplete:after_deltas=2",
          "cut_audio:after_deltas=2", "false_vad:after_deltas=2", "malformed_json:after_deltas=2",
          "unknown_event:after_deltas=2", "slow_audio:after_deltas=2,rtf=1.2"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _assert_live_equals_offline(results: list[Any]) -> int:
    compared = 0
    for result in results:
        offline = {r["turn"]: r for r in turns_from_trace(read_trace(result.trace_path))}
        live = {r["turn"]: r for r in result.records}
        assert result.measure_error is None
        assert sorted(live) == sorted(offline), (result.trace_path, sorted(live), sorted(offline))
        for turn, row in live.items():
            assert set(row) == set(COLUMNS), set(row) ^ set(COLUMNS)
            differing = {k: (row[k], offline[turn][k]) for k in COLUMNS if not _same(row[k], offline[turn][k])}
            assert not differing, (result.trace_path, turn, differing)
            compared += 1
    return compared


def _specs(url: str, tmp_path: Path, scenario: str, **kw: Any) -> list[SessionSpec]:
    quick = {"wait_playout": False} if "wait_playout" in SCENARIOS[scenario].defaults else {}
    turns = 3 if scenario in ("barge_in",) else 2
    return [SessionSpec(url=url, scenario=scenario, turns=turns, rtf=2.0, trace_dir=tmp_path,
                        session_id=f"{scenario}-{kw.get('dialect', 'ga')}-{kw.get('fmt', 'pcm16')}",
                        scenario_params=quick, turn_timeout_s=6.0, lateness_limit_ms=250.0, **kw)]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_s_live_records_equal_its_offline_records(sim_factory: Any, tmp_path: Path, scenario: str) -> None:
    sim = sim_factory(SimConfig(seed=1, corpus=["corpora/tools"]))
    specs = _specs(sim.url, tmp_path, scenario) + _specs(sim.url, tmp_path, scenario, dialect="beta", fmt="g711_ulaw")
    results = run_sessions(specs)
    assert _assert_live_equals_offline(results) >= len(specs)


def test_live_records_equal_offline_records_under_every_simulator_fault(sim_factory: Any, tmp_path: Path) -> None:
    specs = []
    for index, fault in enumerate(FAULTS):
        sim = sim_factory(SimConfig(faults=[fault], seed=1))
        spec = _specs(sim.url, tmp_path, "plain")[0]
        spec.session_id = f"fault{index}"
        specs.append(spec)
    results = run_sessions(specs)
    causes = {r["incident"] for result in results for r in result.records}
    assert {"disconnected", "stalled", "failed", "max_tokens", "audio_cut_short", "false_barge_in"} <= causes
    assert _assert_live_equals_offline(results) >= len(FAULTS)
