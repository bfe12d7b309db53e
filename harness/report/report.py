"""`build_report(run_dir)`: RUN_DIR/report.html from the run directory's files alone.

Reads the turn table, summary.json, run.json, Locust's stats history, traces and incident
bundles (never live Locust state), writes the page and one timeline page per incident and per
slowest turn (up to a cap) under RUN_DIR/timelines/. The page, the timelines and the bundles'
timelines share one RUN_DIR/plotly.min.js (a page written outside the run directory inlines it),
so the run directory opens offline with one copy of plotly. A timeline a bundle already has is
linked instead of rebuilt. A failed run says why at the top.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import figures_latency as lat
from harness.report import figures_quality as qual
from harness.report import report_sections as sec
from harness.report.figures_probes import probes_section
from harness.report.html_page import Page, esc, fmt_num, table
from harness.report.load_history import user_history
from harness.report.progress import Progress
from harness.report.report_load import load_section
from harness.report.run_files import RunFiles
from harness.report.stats import incident_counts
from harness.report.timeline import LEGEND, render_session_timeline, timeline_figure
from harness.report.turn_table import read_turns
from harness.trace import TraceFormatError, read_trace

MAX_INCIDENT_ROWS = 1000
MAX_TIMELINES = 200
MAX_VIOLATION_TRACES = 500
SLOWEST_TURNS = 10
CDF_METRICS = (("ttfa_ms", "Time to first audio"), ("vad_commit_ms", "VAD commit latency"),
               ("cancel_ack_ms", "Cancel acknowledgement"), ("barge_in_ms", "Barge-in: interruption to stop"),
               ("truncate_ack_ms", "Truncate acknowledgement"), ("tool_roundtrip_ms", "Tool round trip"))
SECTIONS = (("verdicts", "Verdicts"), ("latency", "Latency"), ("load", "Under load"), ("concurrency", "Concurrency"),
            ("vad", "VAD accuracy"), ("playout", "Playout"), ("pacing", "Pacing"), ("slowest", "Slowest turns"),
            ("incidents", "Incidents"), ("conformance", "Conformance"), ("settings", "Settings"))


def build_report(run_dir: str | Path, out_html: str | Path | None = None, max_timelines: int = MAX_TIMELINES,
                 progress: Progress | None = None) -> Path:
    """Write the run's report (default RUN_DIR/report.html) and its timelines; returns the page."""
    run_dir = Path(run_dir)
    progress = progress or Progress("report")
    turns = read_turns(run_dir)
    progress.step(f"read {len(turns)} turns ...")
    files = RunFiles.load(run_dir)
    out_path = Path(out_html) if out_html is not None else run_dir / "report.html"
    page = Page(f"report {files.run.get('run_id') or run_dir.name}")
    page.add(f"<h1>Realtime voice load test: {esc(files.run.get('run_id') or run_dir.name)}</h1>")
    page.add(sec.failure_html(files.summary, turns))
    page.add("<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS) + "</nav>")
    page.add(sec.header_html(files, _versions_from_a_trace(files), turns))
    page.heading("Verdicts", "verdicts")
    page.add(sec.pacing_banner_html(files.summary))
    page.add(sec.verdict_html(files.summary))
    page.add(sec.status_html(turns))
    progress.step(f"building figures of {len(turns)} turns ...")
    _latency(page, turns)
    history = user_history(run_dir, turns)
    load_section(page, turns, history, files.summary)
    _quality(page, turns, files)
    probes_section(page, turns, files.summary)
    budget = [max_timelines]
    progress.step("timelines of the slowest turns ...")
    _slowest(page, turns, files, out_path.parent, budget)
    progress.step("incidents ...")
    _incidents(page, turns, files, out_path.parent, budget)
    _conformance(page, turns, files)
    page.heading("Settings of the run (run.json)", "settings")
    page.add(sec.settings_html(files.run))
    page.add(f'<p class="muted">Built {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())} from '
             f"{esc(run_dir)}; every number is computed from turns.parquet (exact percentiles over the turn records).</p>")
    written = page.write(out_path, plotlyjs="auto")
    progress.done(f"{written} ({max_timelines - budget[0]} timelines built)")
    return written


def _versions_from_a_trace(files: RunFiles) -> dict[str, Any] | None:
    if files.run.get("versions"):
        return None
    for path in sorted((files.run_dir / "traces").glob("*.jsonl"))[:1]:
        try:
            return read_trace(path).header.get("versions")
        except TraceFormatError:
            return None
    return None


def _latency(page: Page, turns: pd.DataFrame) -> None:
    page.heading("Latency percentiles (ms)", "latency")
    page.add(sec.percentile_table_html(turns))
    page.add("<h3>Time to first audio by scenario and format</h3>")
    page.add(sec.breakdown_html(turns, "ttfa_ms"))
    figures = [lat.cdf_figure(turns, metric, f"CDF: {title}") for metric, title in CDF_METRICS]
    page.add('<div class="grid">' + "".join(page.figure_html(f) for f in figures if f is not None) + "</div>")


def _quality(page: Page, turns: pd.DataFrame, files: RunFiles) -> None:
    page.heading("VAD accuracy", "vad")
    verdicts = turns["vad_verdict"].value_counts()
    page.add(table(["early", "late", "missed", "ok"], [[int(verdicts.get(v, 0)) for v in ("early", "late", "missed", "ok")]],
                   numeric=[True] * 4))
    vad = qual.vad_accuracy_figure(turns)
    page.add(page.figure_html(vad) if vad is not None else '<p class="muted">No VAD measurements.</p>')
    page.heading("Playout", "playout")
    with_underruns = turns["underrun_count"].fillna(0) > 0
    page.add(table(["turns with underruns", "underruns", "stall time (ms)"],
                   [[int(with_underruns.sum()), float(turns["underrun_count"].sum()), float(turns["underrun_ms"].sum())]],
                   numeric=[True] * 3))
    playout = qual.playout_figure(turns)
    if playout is not None:
        page.figure(playout)
    elif turns["underrun_count"].notna().any():
        page.add('<p>No underruns: every response played out without running dry.</p>')
    page.heading("Pacing of the load generator", "pacing")
    page.add(sec.pacing_banner_html(files.summary))
    page.add(sec.pacing_table_html(files.summary, turns))
    pacing = qual.pacing_figure(turns, ((files.summary or {}).get("pacing") or {}).get("limit_ms"))
    if pacing is not None:
        page.figure(pacing)


def _timeline_link(files: RunFiles, row: Any, out_dir: Path, budget: list[int]) -> str:
    """A relative link to the incident's timeline page, building it when needed and allowed."""
    name = f"{row.session_id}-{row.turn}"
    bundle = files.bundles.get(name)
    if bundle is not None and (bundle / "timeline.html").is_file():
        target = bundle / "timeline.html"
    else:
        trace = files.trace_for(row.worker, row.session_id, row.turn)
        if trace is None or budget[0] <= 0:
            return '<span class="muted">no trace</span>' if trace is None else '<span class="muted">not built</span>'
        budget[0] -= 1
        target = files.run_dir / "timelines" / f"{name}.html"
        try:
            render_session_timeline(trace, target, turn=None if pd.isna(row.turn) else int(row.turn))
        except TraceFormatError as exc:
            return f'<span class="muted">{esc(exc)}</span>'
    href = Path(target).resolve().relative_to(out_dir.resolve()) if _is_under(target, out_dir) else Path(target).resolve()
    return f'<a href="{esc(href.as_posix())}">timeline</a>'


def _is_under(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _evidence_text(evidence: Any) -> Any:
    """Evidence written as a JSON object reads better as `key: value; ...` (escaped by the table)."""
    if not isinstance(evidence, str) or not evidence.startswith("{"):
        return evidence
    try:
        fields = json.loads(evidence)
    except ValueError:
        return evidence
    if not isinstance(fields, dict):
        return evidence
    return "; ".join(f"{k}: {round(v, 1) if isinstance(v, float) else v}" for k, v in fields.items())


def _slowest(page: Page, turns: pd.DataFrame, files: RunFiles, out_dir: Path, budget: list[int]) -> None:
    """The SLOWEST_TURNS turns with the longest time to first audio, each linked to its timeline."""
    page.heading("Slowest turns (time to first audio)", "slowest")
    slowest = turns[turns["ttfa_ms"].notna()].sort_values("ttfa_ms", ascending=False).head(SLOWEST_TURNS)
    if slowest.empty:
        page.add('<p class="muted">No turn measured a time to first audio.</p>')
        return
    rows = [(row.session_id, row.turn, row.scenario, row.format, fmt_num(row.ttfa_ms), row.status, row.incident,
             row.transcript, _timeline_link(files, row, out_dir, budget)) for row in slowest.itertuples(index=False)]
    page.add(table(["session", "turn", "scenario", "format", "ttfa (ms)", "status", "incident", "transcript", "timeline"],
                   rows, raw_html_columns=(8,)))


def _incidents(page: Page, turns: pd.DataFrame, files: RunFiles, out_dir: Path, budget: list[int]) -> None:
    page.heading("Incidents", "incidents")
    counts = incident_counts(turns)
    if counts.empty:
        if not (turns["status"] == "ok").any():    # nothing played out at all: nothing to be green about
            page.add('<div class="banner warn">No incidents, and no turn was ok: nothing was heard to judge.</div>')
        elif files.summary is None or not files.summary.get("passed"):   # never green on a failed run
            page.add(f'<div class="banner warn">No incidents among the {int((turns["status"] == "ok").sum())} ok '
                     "turns, but the run did not pass: see the top of the page.</div>")
        else:
            page.add('<div class="banner good">No incidents: every response played out as the caller should hear it.'
                     '</div>')
        return
    rows = [(cause, int(r["count"]), f"{100 * r['rate']:.2f} %") for cause, r in counts.iterrows()]
    page.add(table(["cause", "count", "rate (of all turns)"], rows, numeric=[False, True, False]))
    page.figure(qual.counts_bar_figure(dict(zip(counts.index, counts["count"])), "Incidents by cause", "incidents", "#d62728"))
    incidents = turns[turns["incident"].notna()]
    table_rows = []
    for row in incidents.head(MAX_INCIDENT_ROWS).itertuples(index=False):
        table_rows.append((row.session_id, row.turn, row.scenario, row.format, row.incident, row.response_status,
                           row.response_reason, _evidence_text(row.incident_evidence), row.transcript,
                           _timeline_link(files, row, out_dir, budget)))
    page.add('<div class="scroll">' + table(
        ["session", "turn", "scenario", "format", "cause", "status", "reason", "evidence", "transcript", "timeline"],
        table_rows, raw_html_columns=(9,)) + "</div>")
    if len(incidents) > MAX_INCIDENT_ROWS:
        page.add(f'<p class="muted">{len(incidents) - MAX_INCIDENT_ROWS} more incidents in turns.csv.</p>')
    first = incidents.iloc[0]
    trace_path = files.trace_for(first["worker"], first["session_id"], first["turn"])
    try:
        trace = read_trace(trace_path) if trace_path is not None else None
    except TraceFormatError:
        trace = None  # its row in the table says why
    if trace is not None:
        page.add(f"<h3>Timeline of the first incident ({esc(first['incident'])})</h3>")
        turn = None if pd.isna(first["turn"]) else int(first["turn"])
        page.figure(timeline_figure(trace, turn=turn))
        page.add(f'<p class="muted">{LEGEND}</p>')


def _violation_rules(turns: pd.DataFrame, files: RunFiles) -> dict[str, int]:
    """Violation counts by rule, from the traces of the sessions whose turns recorded any."""
    sessions = turns.loc[turns["violations"].fillna(0) > 0, ["worker", "session_id"]].drop_duplicates()
    rules: dict[str, int] = {}
    for worker, session in sessions.head(MAX_VIOLATION_TRACES).itertuples(index=False):
        path = files.trace_for(worker, session)
        if path is None:
            continue
        with path.open("rb") as handle:  # a substring test first: traces are mostly appends
            for line in handle:
                if b'"violation"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("rec") == "violation":
                    rules[str(record.get("rule"))] = rules.get(str(record.get("rule")), 0) + 1
    return rules


def _conformance(page: Page, turns: pd.DataFrame, files: RunFiles) -> None:
    page.heading("Protocol conformance", "conformance")
    measured = (files.summary or {}).get("conformance")
    if measured:   # every session's own count (refused sessions with no turn included), with examples
        total = sum(int(row["count"]) for row in measured.values())
        page.add(f"<p>{total} violations of {len(measured)} rules.</p>")
        page.add(table(["rule", "count", "sessions", "side", "first examples"],
                       [[rule, row["count"], row.get("sessions", ""), row.get("side"),
                         " | ".join(str(e) for e in row.get("examples") or [])] for rule, row in measured.items()],
                       numeric=[False, True, True, False, False]))
        page.figure(qual.counts_bar_figure({r: int(v["count"]) for r, v in measured.items()},
                                           "Violations by rule", "violations", "#9467bd"))
        return
    total = int(turns["violations"].fillna(0).sum())
    if total == 0:
        page.add('<p>No protocol violations were recorded.</p>')
        return
    affected = int((turns["violations"].fillna(0) > 0).sum())
    page.add(f"<p>{total} violations in {affected} turns.</p>")
    rules = _violation_rules(turns, files)
    if not rules:
        page.add('<p class="muted">By rule: no trace of the affected sessions is in traces/.</p>')
        return
    page.add(table(["rule", "count (in traces)"], sorted(rules.items(), key=lambda kv: -kv[1]), numeric=[False, True]))
    page.figure(qual.counts_bar_figure(rules, "Violations by rule", "violations", "#9467bd"))