"""Compare shows the probes of both runs side by side, from summary.json's `probes` block."""

from __future__ import annotations

from typing import Any

from harness.metrics.summary import summarize
from harness.report.compare_probes import probe_rows


def _turn(**fields: Any) -> dict[str, Any]:
    return {"status": "ok", "scenario": "probe", "format": "pcm16", "dialect": "ga", "utterance": "u1", **fields}


def test_the_probe_shares_of_both_runs_and_their_change_come_from_each_runs_summary() -> None:
    a = summarize([_turn(pause_ms=200.0, pause_split=False), _turn(pause_ms=200.0, pause_split=False),
                   _turn(pause_ms=1200.0, pause_split=True), _turn(snr_db=10.0, incident="false_barge_in"),
                   _turn(endpointing_cost_ms=300.0)])
    b = summarize([_turn(pause_ms=200.0, pause_split=True), _turn(pause_ms=200.0, pause_split=False),
                   _turn(pause_ms=1200.0, pause_split=True), _turn(endpointing_cost_ms=350.0)])
    rows = {(probe.split(":")[0], level): (shown_a, shown_b, change) for probe, level, shown_a, shown_b, change
            in probe_rows(a, b)}
    assert rows[("pause ladder", "200 pause ms")] == ("0/2 (0 %)", "1/2 (50 %)", "+50 pp")
    assert rows[("pause ladder", "1200 pause ms")] == ("1/1 (100 %)", "1/1 (100 %)", "+0 pp")
    assert rows[("noise ladder", "10 SNR dB")] == ("1/1 (100 %)", "-", "")
    assert rows[("endpointing cost (VAD minus manual commit)", "mean")] == ("300.0 ms (n=1)", "350.0 ms (n=1)", "+50.0 ms")


def test_runs_without_probes_have_no_probe_rows() -> None:
    plain = summarize([_turn(ttfa_ms=400.0)])
    assert probe_rows(plain, plain) == []
