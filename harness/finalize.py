"""`harness finalize RUN_DIR`: complete a run directory from the files it already holds.

For a run whose assembly never happened or never finished: a second Ctrl-C during `harness run`,
a crash, a killed Locust master, an assembly killed halfway. It rebuilds everything from the
run's own files, exactly as the run's end would have (`harness.rundir.finalize_run`): the turn
records of `records/`, and for every session that reported nothing (or whose records are gone)
the turns measured from its trace in `traces/`; then `turns.parquet`/`turns.csv`,
`summary.json` with the SLO and pacing verdicts, `junit.xml`, the incident bundles and
`report.html`. It prints the summary table and exits with the run's exit code (0, 1 or 3).

The run's settings come from `run.json` (written when `harness run` starts, rewritten when it
ends: target, SLOs, pacing limit, corpus path); without one, from the traces' headers, with
`--slo`/`--pacing-limit-ms` (or their defaults) for the gates.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness.rundir import assembly_progress, finalize_run, summary_table
from harness.trace import iter_trace_files, read_header, redact_url

DEFAULT_PACING_LIMIT_MS = 5.0   # harness run's default (--pacing-limit-ms)


class NotARunDirectory(ValueError):
    user_error = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the run directory (reports/<RUN_ID>, or the --out of harness run)")
    parser.add_argument("--slo", action="append", default=None,
                        help="SLO expression or TOML file, repeatable (default: the run's own, from run.json)")
    parser.add_argument("--pacing-limit-ms", type=float, default=None,
                        help=f"pacing gate (default: the run's own, else {DEFAULT_PACING_LIMIT_MS:g})")
    parser.add_argument("--no-report", action="store_true", help="skip report.html (tables and summary only)")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.jsonl*"))   # traces may be compressed (.jsonl.gz)


def _from_traces(out: Path) -> dict[str, Any]:
    """What the traces' headers say about the run, for a run directory without run.json."""
    headers = [h for h in (read_header(p) for p in iter_trace_files(out / "traces")) if h is not None]
    first = headers[0] if headers else {}
    scenarios = Counter(str(h.get("scenario")) for h in headers if h.get("scenario"))
    return {"run_id": first.get("run_id") or out.name, "target": redact_url(str(first.get("target") or "")),
            "dialect": first.get("dialect"), "format": first.get("format"), "corpus": first.get("corpus"),
            "scenarios": dict(scenarios), "chunk_ms": first.get("chunk_ms"), "rtf": first.get("rtf"),
            "sessions_seen": len(headers)}


def run_settings(out: Path) -> dict[str, Any]:
    """The run's `run.json`, else what its traces say; NotARunDirectory when `out` is neither."""
    if not out.exists():
        raise NotARunDirectory(f"{out}: no such folder; pass the run directory harness run wrote (reports/<RUN_ID>)")
    if not out.is_dir():
        raise NotARunDirectory(f"{out}: a file, not a run directory; pass the folder harness run wrote "
                               "(reports/<RUN_ID>)")
    run = _read_json(out / "run.json")
    if run is None and not (_has_files(out / "traces") or _has_files(out / "records")):
        raise NotARunDirectory(f"{out}: not a run directory (no run.json, traces/ or records/); pass the folder "
                               "harness run wrote (reports/<RUN_ID>)")
    return run if run is not None else _from_traces(out)


def run(args: argparse.Namespace) -> int:
    out = Path(args.run_dir)
    info = run_settings(out)
    previous = _read_json(out / "summary.json") or {}
    slos = args.slo if args.slo is not None else info.get("slos")
    if slos is None:   # a run.json from before SLOs were recorded: the verdicts the run printed
        slos = [r["expr"] for r in previous.get("slos") or [] if not str(r.get("expr", "")).startswith("pacing:")]
    limit = next((v for v in (args.pacing_limit_ms, info.get("pacing_limit_ms"),
                              (previous.get("pacing") or {}).get("limit_ms")) if v is not None), DEFAULT_PACING_LIMIT_MS)
    info = {**info, "slos": list(slos), "pacing_limit_ms": limit,
            "finished_at": info.get("finished_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "finalized_by": "harness finalize", "finalized_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    judged = info.get("simulator_lateness") or {}
    simulator = ({"settings": info.get("simulator"), **judged} if info.get("simulator") and judged.get("lateness")
                 else None)   # the embedded simulator's own lateness, as the run recorded it
    summary = finalize_run(out, info, list(slos), float(limit), build_html=not args.no_report, simulator=simulator,
                           progress=assembly_progress("harness finalize"))
    print(summary_table(summary))
    print(f"harness finalize: report {out / 'report.html'}" if not args.no_report else f"harness finalize: {out}")
    return int(summary["exit_code"])
