"""Probes against the real simulator over real sockets: an injected VAD decision delay is recovered as
endpointing cost; the pause ladder splits a turn on a pause over the VAD's silence window only.

Two embedded simulators, one with `vad_decision=fixed:300`, each serve one endpointing session
of the same utterance, concurrently. Tolerance 15 ms: each of the four TTFAs carries the
simulator's own scheduling lateness (its gate allows 5 ms at p99; tests/conftest.py loosens it on
a busy machine) and the caller's receive stamp; an error of 300 ms would be 20x that.
"""

from __future__ import annotations

from pathlib import Path

from harness.client import SessionSpec
from harness.scenarios import run_scenario, run_sessions
from harness.sim import SimConfig, start_in_thread
from harness.trace import read_trace


def test_the_real_simulator_s_extra_vad_decision_delay_comes_back_as_endpointing_cost(tmp_path: Path) -> None:
    # The cost is measured from the caller's own sends, so a turn the caller itself sent late is flagged
    # invalid_pacing and says nothing (a CI run once had one): such an attempt is run again, at most 3 times.
    params = {"silence_duration_ms": 500, "utterances": ["utt05"]}
    statuses: list[list[str]] = []
    for attempt in range(3):
        with start_in_thread(SimConfig(reply_text="Sure."), host="127.0.0.1", port=0) as base, \
                start_in_thread(SimConfig(reply_text="Sure.", latency={"vad_decision": "fixed:300"}),
                                host="127.0.0.1", port=0) as slow:
            specs = [SessionSpec(url=sim.url, scenario="endpointing", turns=1, trace_dir=tmp_path / str(attempt),
                                 session_id=name, auth="none", scenario_params=params)
                     for name, sim in (("base", base), ("slow", slow))]
            results = run_sessions(specs)
        for result in results:
            assert result.reason == "done", result.error
        statuses = [[r["status"] for r in result.records] for result in results]
        assert all(s in ("ok", "invalid_pacing") for row in statuses for s in row), statuses
        if statuses == [["ok", "ok"], ["ok", "ok"]]:
            break
    assert statuses == [["ok", "ok"], ["ok", "ok"]], statuses
    costs = [next(r["endpointing_cost_ms"] for r in result.records if r["turn_detection"] == "manual")
             for result in results]
    assert abs((costs[1] - costs[0]) - 300.0) < 15.0, costs
    assert 400.0 < costs[0] < 700.0     # the 500 ms silence window less a chunk, plus the commit stage


def test_on_the_real_simulator_a_pause_over_its_silence_window_splits_the_turn_and_one_under_it_does_not(
        tmp_path: Path) -> None:
    # utt18 first: its soft tail ends the energy VAD's speech ~107 ms before the annotated end (the
    # case a real run once counted as unsplit); 1200 and 200 ms sit far either side of the 500 ms window
    params = {"silence_duration_ms": 500, "pauses": "1200/200", "utterances": ["utt18", "utt11"]}
    with start_in_thread(SimConfig(reply_text="Sure."), host="127.0.0.1", port=0) as sim:
        spec = SessionSpec(url=sim.url, scenario="pause_ladder", turns=2, trace_dir=tmp_path, session_id="ladder",
                           auth="none", scenario_params=params, lateness_limit_ms=250.0)   # VAD on audio time, not pacing
        result = run_scenario(spec)
    assert result.reason == "done", result.error
    rows = sorted(result.records, key=lambda r: r["turn"])
    assert [r["utterance"] for r in rows] == ["default/utt18+pause1200ms+default/utt11",
                                              "default/utt11+pause200ms+default/utt18"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [r["pause_split"] for r in rows] == [True, False]
    stops = [m for m in read_trace(result.trace_path).records
             if (m.get("event") or {}).get("type") == "input_audio_buffer.speech_stopped"]
    assert len(stops) == 3          # the simulator itself stopped twice in the split turn, once in the other
