"""Live latencies at p99 against the simulator's own truth: `ttfa_audible_ms` and `barge_in_ms`,
pcm16 and G.711 µ-law, many concurrent barge_in sessions over real sockets to the real simulator.

Live chunks carry no id, so each answer is found on both sides by position: the simulator's
server trace records when it handed every `session.output_audio.delta` to the socket
(CLOCK_MONOTONIC, the caller's clock too); a turn's answer is the chunks that session sent after
the caller's true speech end and before the next utterance's speech end (TCP keeps their order).
- ttfa_audible_ms truth: the send of the answer's first audible chunk (the caller's index of it)
  minus the caller's true speech end;
- barge_in_ms truth: the send of the interrupted answer's last chunk minus the interrupting
  utterance's true speech start (0 when the simulator's VAD stopped it before that start).
The caller's values exceed them by the loopback transit only: within 2 ms at p99. Turns whose
chunks the simulator sent > 5 ms behind its own schedule are left out (its loop was starved:
its send times are suspect as a truth), as in tests/metrics/test_truth_latency.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.client import SessionSpec
from harness.scenarios import run_sessions
from harness.sim import SimConfig
from harness.sim.process import start_in_process
from harness.trace import read_trace

live_types = pytest.importorskip("openai.types.live")
pydantic = pytest.importorskip("pydantic")

SHORT = "utt11"
FORMATS = ("pcm16", "g711_ulaw")
SESSIONS_PER_FORMAT, TURNS = 4, 3
SIM_BEHIND_NS = 5_000_000
# 20 ms chunks a little faster than real time (no underruns), a VAD that stops the answer 300 ms
# after the speech it hears, answers long enough (2.7 s) to be spoken over 500 ms into their playout
SIM = SimConfig(delta_ms=20, reply_text="An answer long enough to be spoken over, yes.",
                latency={"first_audio": "fixed:300", "delta_gap": "fixed:15", "speech_start": "fixed:300"})


def _marks(trace: Any, name: str) -> dict[int, int]:
    return {int(r["turn"]): int(r["t_ns"]) for r in trace.records if r.get("rec") == "mark" and r.get("mark") == name}


def _caller_chunks(trace: Any, after_ns: int, before_ns: int) -> list[dict[str, Any]]:
    return [r for r in trace.records if r.get("rec") == "recv" and r.get("kind") == "output_audio_delta"
            and after_ns <= r["t_ns"] < before_ns]


def test_live_ttfa_audible_and_barge_in_match_the_simulators_truth_within_2_ms_at_p99(tmp_path: Path) -> None:
    with start_in_process(SIM) as sim:
        specs = [SessionSpec(url=sim.url, dialect="live", fmt=fmt, scenario="barge_in", turns=TURNS, rtf=1.0,
                             trace_dir=tmp_path, session_id=f"{fmt}-{i}", lateness_limit_ms=1000.0,
                             turn_timeout_s=20.0, scenario_params={"utterances": [SHORT]})
                 for fmt in FORMATS for i in range(SESSIONS_PER_FORMAT)]
        results = run_sessions(specs)
        sim.stop()
        server = sim.read_records()
    sends: dict[str, list[dict[str, Any]]] = {}
    for record in server:
        if record.get("rec") == "send" and record.get("type") == "session.output_audio.delta":
            sends.setdefault(str(record["session"]), []).append(record)

    client_events = pydantic.TypeAdapter(live_types.ClientEvent)
    errors: dict[tuple[str, str], list[float]] = {(f, m): [] for f in FORMATS for m in ("ttfa_audible_ms", "barge_in_ms")}
    interrupted = {f: 0 for f in FORMATS}
    for spec, result in zip(specs, results):
        assert result.reason == "done" and result.error is None and result.measure_error is None, result
        trace = read_trace(result.trace_path)
        for record in trace.records:     # every event the barge_in caller sent is one of the SDK's
            if record.get("rec") == "send":
                client_events.validate_python(record["event"])
        started = next(r for r in trace.records if r.get("rec") == "recv" and r.get("kind") == "session_started")
        chunks = sorted(sends[started["event"]["session"]["id"]], key=lambda r: r["sent_ns"])
        starts, ends = _marks(trace, "speech_start_sent"), _marks(trace, "speech_end_sent")
        rows = {row["turn"]: row for row in result.records}
        assert sorted(rows) == list(range(TURNS)) and all(r["status"] == "ok" for r in rows.values()), rows
        for turn, row in rows.items():
            until_ns = ends.get(turn + 1, 1 << 62)
            sent = [c for c in chunks if ends[turn] <= c["sent_ns"] < until_ns]
            heard = _caller_chunks(trace, ends[turn], until_ns)
            assert sent and len(heard) == len(sent), (turn, len(heard), len(sent))
            if any(c.get("late_ns", 0) > SIM_BEHIND_NS for c in sent):
                continue      # the simulator was starved: its send times are no truth
            audible = next(i for i, c in enumerate(heard) if "audible_at_ms" in c["event"]["delta"])
            truth_ttfa_ms = (sent[audible]["sent_ns"] - ends[turn]) / 1e6
            assert truth_ttfa_ms >= 300.0                         # the injected first_audio holds
            errors[(spec.fmt, "ttfa_audible_ms")].append(row["ttfa_audible_ms"] - truth_ttfa_ms)
            if turn == TURNS - 1:
                assert row["barge_in_ms"] is None                 # the last answer plays to its end
                continue
            truth_barge_ms = max(0.0, (sent[-1]["sent_ns"] - starts[turn + 1]) / 1e6)
            interrupted[spec.fmt] += truth_barge_ms > 0
            errors[(spec.fmt, "barge_in_ms")].append(row["barge_in_ms"] - truth_barge_ms)
            # the answer was cut: less audio than the one that played to its end
            assert row["audio_ms"] < rows[TURNS - 1]["audio_ms"]
    for (fmt, metric), values in errors.items():
        assert len(values) >= SESSIONS_PER_FORMAT, (fmt, metric, len(values))   # most turns compared
        p99 = float(np.percentile(np.abs(values), 99))
        assert min(values) >= -0.1 and p99 <= 2.0, (fmt, metric, p99, values)
    for fmt in FORMATS:   # the VAD's 300 ms stop delay: the audio really stops after the speech start
        assert interrupted[fmt] >= SESSIONS_PER_FORMAT, interrupted
