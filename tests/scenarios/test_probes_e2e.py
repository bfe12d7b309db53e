"""Endpointing cost against the real simulator over real sockets: an injected VAD decision delay is recovered.

Two embedded simulators, one with `vad_decision=fixed:300`, each serve one endpointing session
of the same utterance, concurrently. Tolerance 15 ms: each of the four TTFAs carries the
simulator's own scheduling lateness (its gate allows 5 ms at p99; tests/conftest.py loosens it on
a busy machine) and the caller's receive stamp; an error of 300 ms would be 20x that.
"""

from __future__ import annotations

from pathlib import Path

from harness.client import SessionSpec
from harness.scenarios import run_sessions
from harness.sim import SimConfig, start_in_thread


def test_the_real_simulator_s_extra_vad_decision_delay_comes_back_as_endpointing_cost(tmp_path: Path) -> None:
    params = {"silence_duration_ms": 500, "utterances": ["utt05"]}
    with start_in_thread(SimConfig(reply_text="Sure."), host="127.0.0.1", port=0) as base, \
            start_in_thread(SimConfig(reply_text="Sure.", latency={"vad_decision": "fixed:300"}),
                            host="127.0.0.1", port=0) as slow:
        specs = [SessionSpec(url=sim.url, scenario="endpointing", turns=1, trace_dir=tmp_path, session_id=name,
                             auth="none", scenario_params=params) for name, sim in (("base", base), ("slow", slow))]
        results = run_sessions(specs)
    costs = []
    for result in results:
        assert result.reason == "done", result.error
        assert [r["status"] for r in result.records] == ["ok", "ok"]
        costs.append(next(r["endpointing_cost_ms"] for r in result.records if r["turn_detection"] == "manual"))
    assert abs((costs[1] - costs[0]) - 300.0) < 15.0, costs
    assert 400.0 < costs[0] < 700.0     # the 500 ms silence window less a chunk, plus the commit stage
