"""Synthetic run directories: realistic turn records, summary, run settings and incident traces.

For the report's tests and benchmarks (and for trying `harness report` without a load test).
The distributions follow what the simulator produces: log-normal first-audio latency that
degrades with the number of active users, server-VAD end-of-speech errors with a few early,
late and missed ones, occasional underruns, timeouts, and a small share of incidents with a
session trace and a repro-bundle folder each. `hostile=True` puts HTML/JS into transcripts and
error messages, as a malicious or buggy target could.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.report.stats import incident_counts, metric_stats, status_counts
from harness.report.synthetic_trace import write_session_trace
from harness.report.turn_table import METRIC_COLUMNS, turns_frame, write_turn_tables

HOSTILE_TRANSCRIPT = "<script>alert(1)</script> what's the weather"
HOSTILE_ERROR = "<img src=x onerror=alert(2)> internal error"
SCENARIOS = {"plain": 0.6, "barge_in": 0.15, "client_cancel": 0.1, "function_call": 0.15}
CAUSES = {"false_barge_in": 0.45, "audio_cut_short": 0.2, "stalled": 0.15, "failed": 0.1, "disconnected": 0.1}
INCIDENT_RESPONSE = {"false_barge_in": ("cancelled", "turn_detected"), "failed": ("failed", None),
                     "disconnected": (None, None)}
TRANSCRIPTS = ["What time does the pharmacy close today?", "Book a table for two at seven.",
               "Can you repeat that, please?", "I'd like to check my order status."]
VERSIONS = {"harness": "0.1.0", "python": "3.11", "locust": "2.40", "websockets": "15.0"}


def synthetic_records(n_turns: int, seed: int = 0, ttfa_shift_ms: float = 0.0, users_max: int = 50,
                      duration_s: float = 600.0, incident_rate: float = 0.02,
                      hostile: bool = False) -> list[dict[str, Any]]:
    """`n_turns` turn records (contract section 5 columns), vectorised so 100,000 turns take a second."""
    rng = np.random.default_rng(seed)
    n = n_turns
    t_wall = np.sort(rng.uniform(0, duration_s, n))
    users = np.clip(np.ceil(t_wall / (duration_s / 3) * users_max), 1, users_max).astype(int)
    scenario = rng.choice(list(SCENARIOS), size=n, p=list(SCENARIOS.values()))
    fmt = rng.choice(["pcm16", "g711_ulaw"], size=n, p=[0.7, 0.3])
    status = rng.choice(["ok", "timeout", "error", "invalid_pacing"], size=n, p=[0.985, 0.008, 0.004, 0.003])
    ok = status == "ok"
    ttfa = rng.lognormal(np.log(550 + 6 * users), 0.25) + np.where(fmt == "pcm16", 0, 30) + ttfa_shift_ms
    vad_err = rng.normal(40, 60, n)
    vad_err[rng.random(n) < 0.02] = rng.normal(-250, 40)   # early: speech_stopped inside the speech
    vad_err[rng.random(n) < 0.02] = rng.normal(450, 80)    # late
    missed = rng.random(n) < 0.005
    vad_err[missed] = np.nan
    verdict = np.where(np.isnan(vad_err), "missed", np.where(vad_err < -100, "early", np.where(vad_err > 300, "late", "ok")))
    vad_stop = 500 + vad_err + rng.gamma(2, 10, n)
    vad_commit = vad_stop + rng.gamma(2, 3, n)
    cancel = scenario == "client_cancel"
    barge = scenario == "barge_in"
    tool = scenario == "function_call"
    underruns = rng.poisson(0.05 + users / 2000, n)
    incident_draw = rng.random(n) < incident_rate
    cause = np.where(incident_draw, rng.choice(list(CAUSES), size=n, p=list(CAUSES.values())), None)
    columns: dict[str, Any] = {
        "ttfa_ms": ttfa, "ttfa_from_commit_ms": ttfa - vad_commit, "ttfa_audible_ms": ttfa + rng.uniform(0, 40, n),
        "vad_stop_ms": vad_stop,
        "vad_commit_ms": vad_commit, "vad_end_error_ms": vad_err, "response_done_ms": ttfa + rng.gamma(8, 150, n),
        "cancel_ack_ms": np.where(cancel, rng.lognormal(np.log(80), 0.3, n), np.nan),
        "cancel_leak_ms": np.where(cancel, rng.gamma(2, 20, n), np.nan),
        "barge_in_ms": np.where(barge, rng.lognormal(np.log(320), 0.3, n), np.nan),
        "truncate_ack_ms": np.where(barge | cancel, rng.lognormal(np.log(60), 0.3, n), np.nan),
        "tool_args_ms": np.where(tool, ttfa + rng.gamma(4, 60, n), np.nan),
        "tool_roundtrip_ms": np.where(tool, rng.lognormal(np.log(650), 0.25, n), np.nan),
        "underrun_count": underruns.astype(float), "underrun_ms": underruns * rng.gamma(2, 40, n),
        "audio_ms": rng.uniform(1500, 6000, n), "leading_silence_ms": rng.uniform(0, 40, n),
        "send_lateness_p50_ms": rng.gamma(2, 0.15, n),
        "send_lateness_p99_ms": rng.gamma(2, 0.9, n), "send_lateness_max_ms": rng.gamma(2, 1.6, n),
    }
    latency_only_when_ok = [c for c in METRIC_COLUMNS if not c.startswith("send_lateness") and c in columns]
    for name in latency_only_when_ok:
        columns[name] = np.where(ok, columns[name], np.nan)
    violations = ((rng.random(n) < 0.01) | (cause == "disconnected")).astype(int)
    records = []
    for i in range(n):
        session = f"s{i // 5:05d}"
        rec: dict[str, Any] = {
            "run_id": "synthetic", "session_id": session, "worker": f"w{(i // 5) % 4}", "turn": i % 5,
            "scenario": scenario[i], "utterance": f"default/utt{i % 36:02d}", "format": fmt[i], "dialect": "ga",
            "target": "ws://127.0.0.1:8765/v1/realtime", "t_start_ns": int(10**10 + t_wall[i] * 1e9),
            "t_wall_s": 1.8e9 + t_wall[i], "users": int(users[i]), "status": status[i],
            "response_id": f"resp_{i:06d}", "response_status": "cancelled" if (cancel[i] or barge[i]) else "completed",
            "response_reason": "client_cancelled" if cancel[i] else ("turn_detected" if barge[i] else None),
            "vad_verdict": verdict[i], "transcript": TRANSCRIPTS[i % len(TRANSCRIPTS)],
            "incident": cause[i], "incident_evidence": None, "violations": int(violations[i]),
            "expected_interruption": bool(cancel[i] or barge[i]),
        }
        rec.update({name: (None if np.isnan(v := float(columns[name][i])) else v) for name in columns})
        if cause[i] is not None:
            rec["incident_evidence"] = f"{cause[i]} at {int(rec['audio_ms'] or 0) // 3} ms of audio"
            rec["response_status"], rec["response_reason"] = INCIDENT_RESPONSE.get(cause[i], ("completed", None))
        records.append(rec)
    if hostile and records:
        records[0]["transcript"] = HOSTILE_TRANSCRIPT
        records[min(1, n - 1)]["incident"] = "failed"
        records[min(1, n - 1)]["transcript"] = HOSTILE_TRANSCRIPT
        records[min(1, n - 1)]["incident_evidence"] = HOSTILE_ERROR
    return records


def synthetic_summary(records: list[dict[str, Any]], run: dict[str, Any], pacing_passed: bool = True,
                      slos: tuple[tuple[str, str, str, float], ...] = (("ttfa_ms", "p95", "<", 1200.0),)) -> dict[str, Any]:
    """A summary.json of the shape in contracts section 10, computed from the records."""
    frame = turns_frame(records)
    metrics = {m: {**metric_stats(frame[m] if m in frame else []), "timeouts": 0} for m in METRIC_COLUMNS}
    slo_rows = []
    for metric, stat, op, threshold in slos:
        value = metrics[metric][stat]
        passed = value is not None and (value < threshold if op == "<" else value <= threshold)
        slo_rows.append({"expr": f"{metric}:{stat}{op}{threshold:g}", "metric": metric, "stat": stat, "op": op,
                         "threshold": threshold, "value": value, "passed": passed})
    causes = incident_counts(frame)
    p99 = float(np.nanpercentile(frame["send_lateness_p99_ms"], 99)) if len(frame) else 0.0
    passed = pacing_passed and all(row["passed"] for row in slo_rows)
    return {
        "run_id": run["run_id"], "run": run, "turns": status_counts(frame), "metrics": metrics, "by": {},
        "incidents": {"total": int(causes["count"].sum()),
                      "by_cause": {c: {"count": int(r["count"]), "rate": float(r["rate"])} for c, r in causes.iterrows()}},
        "pacing": {"p50_ms": 0.3, "p99_ms": p99 if pacing_passed else max(p99, 12.0), "max_ms": 9.0,
                   "limit_ms": 5.0, "passed": pacing_passed},
        "slos": slo_rows, "passed": passed, "exit_code": 0 if passed else 1,
    }


def write_locust_history(run_dir: Path, users_max: int, duration_s: float = 600.0, t0_wall_s: float = 1.8e9) -> Path:
    """stats_stats_history.csv as Locust writes it (one Aggregated row a second), with the user ramp of
    `synthetic_records`: 0 at the start, users_max after a third of the run."""
    path = run_dir / "stats_stats_history.csv"
    lines = ["Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,Total Failure Count"]
    for second in range(int(duration_s) + 1):
        users = int(min(users_max, np.ceil(second / (duration_s / 3) * users_max)))
        lines.append(f"{int(t0_wall_s) + second},{users},,Aggregated,{users / 10:.6f},0.000000,{second * 3},0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_synthetic_run(run_dir: str | Path, n_turns: int = 2000, seed: int = 0, ttfa_shift_ms: float = 0.0,
                       incident_traces: int = 5, hostile: bool = False, pacing_passed: bool = True,
                       users_max: int = 50, locust_history: bool = True) -> Path:
    """Write a complete run directory (turn tables, summary.json, run.json, Locust's stats history,
    traces, bundles); returns it."""
    run_dir = Path(run_dir)
    records = synthetic_records(n_turns, seed=seed, ttfa_shift_ms=ttfa_shift_ms, hostile=hostile, users_max=users_max)
    run = {"run_id": run_dir.name, "target": "wss://gateway.example/v1/realtime?model=gpt-realtime&api-key=REDACTED",
           "users": users_max, "spawn_rate": 5, "duration_s": 600.0, "scenarios": {"plain": 4, "barge_in": 1,
           "client_cancel": 1, "function_call": 1}, "format": "pcm16,g711_ulaw", "dialect": "ga",
           "corpus": "corpora/default", "started_wall_s": 1.8e9, "versions": VERSIONS}
    write_turn_tables(run_dir, records)
    if locust_history:
        write_locust_history(run_dir, users_max)
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    summary = synthetic_summary(records, run, pacing_passed=pacing_passed)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    first_of_each_cause: dict[str, dict[str, Any]] = {}
    for row in records:
        if row["incident"] and row["incident"] not in first_of_each_cause:
            first_of_each_cause[row["incident"]] = row
    for row in list(first_of_each_cause.values())[:incident_traces]:
        _write_incident(run_dir, row, records)
    return run_dir


def _write_incident(run_dir: Path, row: dict[str, Any], records: list[dict[str, Any]]) -> None:
    session = [dict(r) for r in records if r["session_id"] == row["session_id"]]
    for turn in session:
        turn["incident"] = turn["incident"] if turn["turn"] == row["turn"] else None
        turn["error_message"] = row["incident_evidence"] or ""
    header = {"run_id": run_dir.name, "session_id": row["session_id"], "worker": row["worker"],
              "target": row["target"], "dialect": row["dialect"], "format": row["format"], "corpus": "corpora/default",
              "scenario": row["scenario"], "scenario_params": {}, "session_config": {"type": "realtime"},
              "chunk_ms": 20, "rtf": 1.0, "versions": VERSIONS}
    trace_path = run_dir / "traces" / f"{row['worker']}-{row['session_id']}.jsonl"
    write_session_trace(trace_path, header, session)
    bundle = run_dir / "incidents" / f"{row['session_id']}-{row['turn']}"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "trace.jsonl").write_bytes(trace_path.read_bytes())
    (bundle / "bundle.json").write_text(json.dumps({"session_id": row["session_id"], "turn": row["turn"],
                                                    "cause": row["incident"], "evidence": row["incident_evidence"]}))
    (bundle / "summary.txt").write_text(f"{row['incident']}: {row['incident_evidence']}\n")
