"""Assemble the run directory from its files: turn tables, summary.json, junit.xml, report.html.

Works from files only (records/, sessions/, traces/), so it gives the same result in a local
run, on a Locust master, and in `harness run` after a Locust process died.

This is the one module above `load`, `report` and `replay` (DESIGN section 2): it is called by
`harness run` (`harness.load.command`) and by the Locust master's quit hook
(`harness.load.users`), and it uses `report` (tables, report.html) and `replay` (incident
bundles), so neither `load` nor `report` nor `replay` needs the others for it. From `load` it uses
only the locust-free modules that define the run's files and gates (`records`, `slo`, `junit`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


from harness.load.junit import write_junit
from harness.load.records import merged_records, merged_sessions
from harness.load.slo import evaluate, load_slos
from harness.trace import iter_trace_files, read_header, read_trace, redact_url

EXIT_OK, EXIT_SLO_FAILED, EXIT_TARGET_FAILED, EXIT_SIM_OVERLOADED = 0, 1, 3, 5
SIM_OVERLOAD_MESSAGE = ("the embedded simulator could not keep its latency model (its lateness p99 {p99} ms is over "
                        "the limit of {limit} ms; max {max} ms): the latencies of this run are the simulator's own "
                        "overload, not a target's; use --sim-processes N, fewer users or a quieter machine "
                        "(--sim-lateness-limit-ms sets the limit)")


def simulator_gate(simulator: dict[str, Any] | None) -> dict[str, Any] | None:
    """The simulator's lateness gate: passed unless its p99 (over every send, decision and timer
    probe of every process) is over the limit; no samples, no verdict against it."""
    if not simulator:
        return None
    lateness = simulator.get("lateness") or {}
    limit = float(simulator.get("lateness_limit_ms") or 5.0)
    p99 = lateness.get("p99_ms")
    passed = p99 is None or p99 <= limit
    message = None if passed else SIM_OVERLOAD_MESSAGE.format(
        p99=f"{p99:.2f}", limit=f"{limit:g}", max=f"{(lateness.get('max_ms') or 0):.1f}")
    return {"expr": f"sim_lateness:p99<={limit:g}", "metric": "sim_lateness_ms", "stat": "p99", "op": "<=",
            "threshold": limit, "value": p99, "passed": passed, "message": message}


def sessions_missing_from(out: Path, sessions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Turn records and session rows measured from the traces of sessions that reported nothing.

    A user killed mid-session (Locust's stop without a stop timeout, a worker killed) never
    reported its session; its trace, flushed as it went, still holds every turn it started. Only
    those traces are read (the others' headers say they are known), and only after the run.
    """
    from harness.metrics import meter_trace

    known = {s.get("session_id") for s in sessions}
    records: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for path in iter_trace_files(out / "traces"):
        header = read_header(path)   # the full trace is read only for a session without records
        if header is not None and header.get("session_id") in known:
            continue
        trace = read_trace(path)
        meter = meter_trace(trace)
        records.extend(meter.records)
        rows.append({"session_id": trace.header.get("session_id"), "reason": (trace.footer or {}).get("reason", "killed"),
                     "turns": len(meter.records), "connect_failed": meter.index.first_mark("connect_failed", None) is not None,
                     "error": None, "lateness": meter.index.lateness_summary(), "from_trace": True})
    return records, rows


def pacing_of(sessions: list[dict[str, Any]], limit_ms: float) -> dict[str, Any]:
    """Send lateness over every append of every session, merged from the sessions' 10 us buckets.

    Each session's meter counted its appends as it sent them; percentiles are the upper edges of
    the buckets (exact to 10 us), the maximum is exact.
    """
    buckets: dict[int, int] = {}
    max_ns: int | None = None
    bucket_ns = 10_000
    for session in sessions:
        lateness = session.get("lateness") or {}
        bucket_ns = int(lateness.get("bucket_ns") or bucket_ns)
        for key, count in (lateness.get("buckets") or {}).items():
            buckets[int(key)] = buckets.get(int(key), 0) + int(count)
        if lateness.get("max_ns") is not None:
            max_ns = max(max_ns or 0, int(lateness["max_ns"]))
    total = sum(buckets.values())
    if not total:
        return {"appends": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "limit_ms": limit_ms, "passed": True}

    def percentile_ms(q: float) -> float:
        rank, seen = q / 100.0 * total, 0
        for key in sorted(buckets):
            seen += buckets[key]
            if seen >= rank:
                return min((key + 1) * bucket_ns, max_ns if max_ns is not None else (key + 1) * bucket_ns) / 1e6
        return (max_ns or 0) / 1e6

    p50, p99 = percentile_ms(50), percentile_ms(99)
    return {"appends": total, "p50_ms": p50, "p99_ms": p99, "max_ms": (max_ns or 0) / 1e6, "limit_ms": limit_ms,
            "passed": p99 <= limit_ms}


def run_info(settings: Any, users: Any, spawn_rate: Any, run_time: Any) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for package in ("realtime-voice-harness", "locust", "websockets", "numpy", "pandas", "plotly"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {"run_id": settings.run_id, "target": redact_url(settings.target), "dialect": settings.dialect,
            "format": settings.fmt, "corpus": settings.corpus, "scenarios": settings.mix, "turns": settings.turns,
            "users": users, "spawn_rate": spawn_rate, "run_time": run_time, "chunk_ms": settings.chunk_ms, "rtf": settings.rtf,
            "versions": versions, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def finalize_run(out: Path, run: dict[str, Any], slo_items: list[str], pacing_limit_ms: float,
                 build_html: bool = True, simulator: dict[str, Any] | None = None) -> dict[str, Any]:
    """`simulator`: for a run against the embedded simulator, {"settings": SimConfig.describe(),
    "lateness": its lateness summary, "lateness_limit_ms": the gate's limit}."""
    from harness.metrics import summarize
    from harness.report import build_report, write_turn_tables

    out.mkdir(parents=True, exist_ok=True)
    records = merged_records(out)
    sessions = merged_sessions(out)
    missing_records, missing_sessions = sessions_missing_from(out, sessions)
    records += missing_records
    sessions += missing_sessions
    if simulator is not None:
        run = {**run, "simulator": simulator.get("settings")}
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str), encoding="utf-8")
    write_turn_tables(out, records)
    summary: dict[str, Any] = {"run_id": run.get("run_id"), "run": run, **summarize(records)}
    summary["sessions"] = {"total": len(sessions),
                           "connect_failed": sum(1 for s in sessions if s.get("connect_failed")),
                           "errors": sorted({s["error"] for s in sessions if s.get("error")})[:5]}
    summary["pacing"] = pacing_of(sessions, pacing_limit_ms)
    results = evaluate(load_slos(slo_items), summary)
    pacing = summary["pacing"]
    results.append({"expr": f"pacing:p99<={pacing_limit_ms:g}", "metric": "send_lateness_ms", "stat": "p99",
                    "op": "<=", "threshold": pacing_limit_ms, "value": pacing["p99_ms"], "passed": pacing["passed"]})
    sim_gate = simulator_gate(simulator)
    if simulator is not None and sim_gate is not None:
        summary["simulator"] = {"settings": simulator.get("settings"), "lateness": simulator.get("lateness"),
                                "lateness_limit_ms": sim_gate["threshold"], "passed": sim_gate["passed"],
                                "message": sim_gate["message"]}
        results.append({k: v for k, v in sim_gate.items() if k != "message"})
    summary["slos"] = results
    ok_turns = summary["turns"]["ok"]
    target_failed = (summary["turns"]["total"] == 0 or ok_turns == 0) and summary["sessions"]["total"] > 0 and (
        summary["sessions"]["connect_failed"] == summary["sessions"]["total"] or summary["turns"]["total"] == 0)
    summary["passed"] = all(r["passed"] for r in results) and not target_failed
    if sim_gate is not None and not sim_gate["passed"]:
        # before any other verdict: what was measured is the simulator's overload, including a failure to connect
        summary["exit_code"] = EXIT_SIM_OVERLOADED
    else:
        summary["exit_code"] = EXIT_TARGET_FAILED if target_failed else (EXIT_OK if summary["passed"] else EXIT_SLO_FAILED)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    write_junit(out / "junit.xml", str(run.get("run_id")), results)
    from harness.replay.bundle import write_incident_bundles

    try:
        summary["incidents"]["bundles"] = len(write_incident_bundles(out, records))
    except Exception as exc:  # noqa: BLE001 - a missing bundle must not lose the run's results
        summary["incidents"]["bundle_error"] = f"{type(exc).__name__}: {exc}"
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    if build_html:
        build_report(out)
    return summary


def summary_table(summary: dict[str, Any]) -> str:
    """The few lines `harness run` prints at the end."""
    turns = summary["turns"]
    lines = [f"turns: {turns['total']} (ok {turns['ok']}, timeout {turns['timeout']}, error {turns['error']}, "
             f"invalid_pacing {turns['invalid_pacing']}, stopped {turns.get('stopped', 0)}); "
             f"incidents: {summary['incidents']['total']}"]
    lines.append(f"{'metric':20} {'count':>6} {'p50':>8} {'p95':>8} {'p99':>8}")
    for name in ("ttfa_ms", "vad_commit_ms", "response_done_ms", "cancel_ack_ms", "barge_in_ms", "tool_roundtrip_ms"):
        m = summary["metrics"].get(name) or {}
        if m.get("count"):
            lines.append(f"{name:20} {m['count']:>6} {m['p50']:>8.1f} {m['p95']:>8.1f} {m['p99']:>8.1f}")
    simulator = summary.get("simulator")
    if simulator:
        late = simulator.get("lateness") or {}
        shown = "/".join("n/a" if late.get(k) is None else f"{late[k]:.2f}" for k in ("p50_ms", "p99_ms", "max_ms"))
        lines.append(f"simulator lateness p50/p99/max {shown} ms over {late.get('count', 0)} sends and decisions "
                     f"({(simulator.get('settings') or {}).get('processes', 1)} process(es))")
    for r in summary["slos"]:
        value = "n/a" if r["value"] is None else f"{r['value']:.3f}"
        lines.append(f"{'PASS' if r['passed'] else 'FAIL'}  {r['expr']}  (value {value})")
    if simulator and simulator.get("message"):
        lines.append(f"SIMULATOR OVERLOADED: {simulator['message']}")
    return "\n".join(lines)
