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
from typing import Any, Callable

from harness.exit_codes import ExitCode
from harness.load.junit import write_junit
from harness.load.records import merged_records, merged_sessions
from harness.load.slo import evaluate, load_slos
from harness.trace import iter_trace_files, read_header, read_trace

StepCallback = Callable[[str], None]   # told what the assembly is doing, one short phrase at a time
PROGRESS_EVERY_S = 2.0             # while traces are measured
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


def apply_simulator_gate(summary: dict[str, Any], sim_gate: dict[str, Any] | None) -> None:
    """A failed simulator gate decides the run (exit 5) before every other verdict but one: when the
    target refused every session (exit 3) no turn was measured, so the simulator's lateness (of its
    idle timers alone) shaped nothing and is only noted."""
    if sim_gate is None or sim_gate["passed"]:
        return
    if summary["exit_code"] == ExitCode.TARGET_FAILED:
        summary["why"].append(f"also: {sim_gate['message']}")
        return
    summary["passed"], summary["exit_code"] = False, int(ExitCode.SIM_OVERLOADED)
    summary["why"].insert(0, str(sim_gate["message"]))


def sessions_missing_from(out: Path, sessions: list[dict[str, Any]],
                          records: list[dict[str, Any]] | None = None,
                          progress: StepCallback | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Turn records and session rows measured from the traces of sessions that reported nothing.

    A user killed mid-session (Locust's stop without a stop timeout, a worker killed) never
    reported its session; its trace, flushed as it went, still holds every turn it started. Only
    those traces are read (the others' headers say they are known), and only after the run.

    With the run's `records`, a session that reported its row but whose records are missing
    (`records/` deleted or torn, as `harness finalize` may find it) is measured too, and only
    the turns not already recorded are added; a session with records but no row gets its row.
    """
    from harness.metrics import meter_trace

    rows_by_id = {s.get("session_id"): s for s in sessions}
    recorded: dict[Any, set[Any]] = {}
    for record in records or ():
        recorded.setdefault(record.get("session_id"), set()).add(record.get("turn"))
    new_records: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    seen = measured = 0
    said_at = time.monotonic()
    for path in iter_trace_files(out / "traces"):
        seen += 1
        if progress is not None and time.monotonic() - said_at >= PROGRESS_EVERY_S:
            said_at = time.monotonic()
            progress(f"traces: {seen} checked, {measured} measured (sessions without records)")
        header = read_header(path)   # the full trace is read only for a session without records
        session_id = header.get("session_id") if header is not None else None
        row = rows_by_id.get(session_id)
        if header is not None and row is not None and (
                records is None or len(recorded.get(session_id, ())) >= int(row.get("turns") or 0)):
            continue
        measured += 1
        trace = read_trace(path)
        meter = meter_trace(trace)
        have = recorded.get(trace.header.get("session_id"), set())
        new_records.extend(r for r in meter.records if r.get("turn") not in have)
        if row is None:
            rows.append({"session_id": trace.header.get("session_id"),
                         "reason": (trace.footer or {}).get("reason", "killed"), "turns": len(meter.records),
                         "connect_failed": meter.index.first_mark("connect_failed", None) is not None,
                         "error": None, "lateness": meter.index.lateness_summary(), "from_trace": True,
                         "conformance": meter.index.violations_by_rule})
    return new_records, rows


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
    if not total:   # no audio was sent: a gate with no value fails
        return {"appends": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "limit_ms": limit_ms, "passed": False}

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


def verdict(summary: dict[str, Any]) -> tuple[bool, int, list[str]]:
    """(passed, exit code, why) of a run, from its summary: the default gates first, then the SLOs.

    Exit 3 when the target failed every session (nothing could be measured); 6 when the run
    measured nothing although sessions ran (no turn was ok, no audio was sent, or no ok turn's
    answer could be heard), with or without `--slo`; 1 when an SLO, the pacing gate or the
    findings gate (a conformance finding about the target's behaviour) failed; else 0.
    """
    from harness.metrics import target_findings
    from harness.metrics.incidents import UNHEARD_CAUSES

    turns, sessions = summary["turns"], summary["sessions"]
    why: list[str] = []
    target_failed = sessions["total"] > 0 and (turns["total"] == 0 or turns["ok"] == 0) and (
        sessions["connect_failed"] == sessions["total"] or turns["total"] == 0)
    if target_failed:
        why.append(f"the target failed: {sessions['connect_failed']} of {sessions['total']} sessions could not "
                   f"connect and no turn was measured")
        return False, int(ExitCode.TARGET_FAILED), why
    if turns["ok"] == 0:
        why.append(f"no turn was ok ({turns['total']} turns: " + ", ".join(
            f"{turns.get(s, 0)} {s}" for s in ("timeout", "error", "invalid_pacing", "stopped") if turns.get(s)) + ")")
    elif summary["incidents"].get("unheard_ok_turns") == turns["ok"]:
        causes = {c: row["count"] for c, row in (summary["incidents"].get("by_cause") or {}).items()
                  if c in UNHEARD_CAUSES and row["count"]}
        why.append(f"no answer could be heard: every ok turn ({turns['ok']}) had no audio, silent audio or audio "
                   "in another format than declared (incidents: " + ", ".join(f"{n} {c}" for c, n in causes.items()) + ")")
    if not summary["pacing"]["appends"]:
        why.append("no audio was sent")
    if why:
        return False, int(ExitCode.NOTHING_MEASURED), why
    failed = [r["expr"] for r in summary["slos"] if not r["passed"]]
    why.extend(f"gate failed: {expr}" for expr in failed)
    why.extend(f"finding: {rule} x{row['count']}: {(row.get('examples') or [''])[0]}"
               for rule, row in target_findings(summary.get("conformance")).items())
    if why:
        return False, int(ExitCode.GATE_FAILED), why
    return True, int(ExitCode.OK), why


def assembly_progress(label: str, quiet: bool = False) -> Any:
    """The printer of an assembly's steps (`LABEL: step (elapsed s)`, in place on a terminal, plain
    lines in a CI log): the report's own (`harness.report.progress.Progress`), which `build_report`
    continues on the same line."""
    from harness.report.progress import Progress as Printer

    return Printer(label, quiet=quiet)


def finalize_run(out: Path, run: dict[str, Any], slo_items: list[str], pacing_limit_ms: float,
                 build_html: bool = True, simulator: dict[str, Any] | None = None,
                 progress: Any = None) -> dict[str, Any]:
    """`simulator`: for a run against the embedded simulator, {"settings": SimConfig.describe(),
    "lateness": its lateness summary, "lateness_limit_ms": the gate's limit}. `progress` is told
    each step (and every few seconds while traces are measured): an `assembly_progress` printer."""
    from harness.metrics import merged_conformance, summarize
    from harness.report import build_report, write_turn_tables

    printer = progress if progress is not None else assembly_progress("assembly", quiet=True)
    step = printer.step
    out.mkdir(parents=True, exist_ok=True)
    step("assembling: reading records")
    records = merged_records(out)
    sessions = merged_sessions(out)
    missing_records, missing_sessions = sessions_missing_from(out, sessions, records, step)
    records += missing_records
    sessions += missing_sessions
    step(f"assembling: {len(records)} turn records of {len(sessions)} sessions ({len(missing_sessions)} measured "
         "from their traces); writing turns.parquet, summary.json, junit.xml")
    if simulator is not None:   # its settings, and what `harness finalize` needs to judge it again
        run = {**run, "simulator": simulator.get("settings"),
               "simulator_lateness": {k: simulator.get(k) for k in ("lateness", "lateness_limit_ms")}}
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str), encoding="utf-8")
    write_turn_tables(out, records)
    summary: dict[str, Any] = {"run_id": run.get("run_id"), "run": run, **summarize(records)}
    summary["sessions"] = {"total": len(sessions),
                           "connect_failed": sum(1 for s in sessions if s.get("connect_failed")),
                           "errors": sorted({s["error"] for s in sessions if s.get("error")})[:5]}
    summary["pacing"] = pacing_of(sessions, pacing_limit_ms)
    summary["conformance"] = merged_conformance(s.get("conformance") for s in sessions)
    results = evaluate(load_slos(slo_items), summary, records)
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
    summary["passed"], summary["exit_code"], summary["why"] = verdict(summary)
    apply_simulator_gate(summary, sim_gate)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    write_junit(out / "junit.xml", str(run.get("run_id")), results, run=run)
    from harness.replay.bundle import write_incident_bundles

    step(f"assembling: incident bundles ({summary['incidents']['total']} incidents)")
    bundle_errors: list[str] = []
    try:
        summary["incidents"]["bundles"] = len(write_incident_bundles(out, records, errors=bundle_errors))
        if bundle_errors:
            summary["incidents"]["bundle_errors"] = bundle_errors[:20]
    except Exception as exc:  # noqa: BLE001 - a missing bundle must not lose the run's results
        summary["incidents"]["bundle_error"] = f"{type(exc).__name__}: {exc}"
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    if build_html:
        step("assembling: report.html")
        build_report(out, progress=printer)
    else:
        printer.done("assembled")
    compress_run_traces(out)
    return summary


def compress_run_traces(out: Path) -> None:
    """The last step of the assembly: `traces/*.jsonl` -> `*.jsonl.gz` (every reader takes either;
    an interrupted compression leaves each trace readable, plain or compressed)."""
    from harness.report.progress import Progress
    from harness.trace import compress_traces

    if next((out / "traces").rglob("*.jsonl"), None) is None:
        return   # none, or compressed already (`harness finalize` on an assembled run)
    progress = Progress("traces")
    progress.step("compressing ...")
    done = compress_traces(out / "traces")
    progress.done(f"{done.files} compressed, {done.bytes_before / 1e6:.2f} -> {done.bytes_after / 1e6:.2f} MB")


def summary_table(summary: dict[str, Any]) -> str:
    """The few lines `harness run` prints at the end."""
    turns = summary["turns"]
    lines = [f"turns: {turns['total']} (ok {turns['ok']}, timeout {turns['timeout']}, error {turns['error']}, "
             f"invalid_pacing {turns['invalid_pacing']}, stopped {turns.get('stopped', 0)}); "
             f"incidents: {summary['incidents']['total']}"
             + "".join(f", {cause} {row['count']}" for cause, row in (summary["incidents"].get("by_cause") or {}).items()
                       if row["count"])]
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
    vad = summary.get("vad") or {}
    if vad.get("turns"):
        lines.append("vad verdicts: " + ", ".join(f"{v} {c['count']}" for v, c in vad["by_verdict"].items()
                                                   if c["count"]) + f" (of {vad['turns']} VAD turns)")
    for rule, row in (summary.get("conformance") or {}).items():
        lines.append(f"conformance: {rule} x{row['count']} in {row.get('sessions', 1)} session(s) ({row['side']}): "
                     f"{(row.get('examples') or [''])[0]}")
    for error in (summary.get("sessions") or {}).get("errors") or []:
        lines.append(f"session error: {error}")
    for reason in summary.get("why") or []:
        lines.append(f"FAILED: {reason}")
    return "\n".join(lines)
