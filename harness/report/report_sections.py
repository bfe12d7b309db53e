"""The report's text sections: header with SLO verdicts, banners, percentile and breakdown tables.

The percentile table carries each shown number's exact value in a `data-value` attribute, so a
test (or a script scraping the page) can check it against the records without rounding.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.exit_codes import FAILURE_TITLES
from harness.metrics.uncertainty import TOO_FEW, min_count, percentile_interval
from harness.report.html_page import esc, fmt_num, table
from harness.report.run_files import RunFiles
from harness.report.stats import STAT_NAMES, metric_stats, percentile_table, status_counts
from harness.trace import redact_url

PERCENTILE_COLUMNS = ("p50", "p90", "p95", "p99")


def header_html(files: RunFiles, versions_fallback: dict[str, Any] | None, turns: pd.DataFrame) -> str:
    wall = turns["t_wall_s"].dropna()
    span = float(wall.max() - wall.min()) if len(wall) > 1 else None
    facts = files.header_facts(versions_fallback, turns_span_s=span)
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v) if v not in (None, '') else '—'}</td></tr>" for k, v in facts)
    return f'<table class="kv">{rows}</table>'


def verdict_html(summary: dict[str, Any] | None) -> str:
    """Overall banner plus one row per SLO: value against threshold, pass or fail."""
    if summary is None:
        return '<div class="banner warn">No summary.json in this run directory: SLOs were not evaluated.</div>'
    passed = bool(summary.get("passed"))
    slos = summary.get("slos") or []
    failed = [slo for slo in slos if not slo.get("passed")]
    reasons = [f"{len(failed)} of {len(slos)} SLOs failed"] if failed else []
    if not ((summary.get("pacing") or {}).get("passed", True)):
        reasons.append("the pacing gate failed")
    reasons = list(summary.get("why") or []) or reasons   # the run's own reasons, default gates first
    if not ((summary.get("simulator") or {}).get("passed", True)) and not summary.get("why"):
        reasons.insert(0, "the embedded simulator could not keep its latency model (its lateness gate failed), "
                          "so the latencies below are its own overload, not a target's")
    why = "; ".join(reasons) if reasons else ("every SLO and the pacing gate passed" if passed else "see below")
    banner = (f'<div class="banner {"good" if passed else "bad"}">'
              f'{"PASSED" if passed else "FAILED"} (exit code {esc(summary.get("exit_code"))}): {esc(why)}</div>')
    errors = (summary.get("sessions") or {}).get("errors") or []
    if errors:   # the target's own words (error codes and messages, close codes and reasons)
        banner += ('<div class="banner bad">What the target said: <ul>'
                   + "".join(f"<li>{esc(e)}</li>" for e in errors) + "</ul></div>")
    if not slos:
        return banner + '<p class="muted">No SLOs were set for this run.</p>'
    rows = []
    for slo in slos:
        verdict = '<span class="pass">pass</span>' if slo.get("passed") else '<span class="fail">FAIL</span>'
        note = f' <span class="muted">({esc(slo["note"])})</span>' if slo.get("note") else ""
        rows.append((esc(slo.get("expr")), fmt_num(slo.get("value")) + note,
                     f"{esc(slo.get('op'))} {fmt_num(slo.get('threshold'))}", verdict))
    return banner + table(["SLO", "value", "threshold", "verdict"], rows, raw_html_columns=(0, 1, 2, 3))


def pacing_banner_html(summary: dict[str, Any] | None) -> str:
    pacing = (summary or {}).get("pacing") or {}
    if pacing.get("passed", True):
        return ""
    return ('<div class="banner bad">Pacing gate FAILED: send lateness p99 '
            f"{fmt_num(pacing.get('p99_ms'), 2)} ms exceeds the limit of {fmt_num(pacing.get('limit_ms'), 2)} ms. "
            "The load generator could not keep real time, so the latencies of this run are not trustworthy; "
            "use fewer users per process (--processes) or a less loaded machine.</div>")


def status_html(turns: pd.DataFrame) -> str:
    counts = status_counts(turns)
    keys = ["total", "ok", "timeout", "error", "invalid_pacing"]
    keys += [k for k in counts if k not in keys]
    return table(keys, [[counts.get(k, 0) for k in keys]], numeric=[True] * len(keys))


def percentile_table_html(turns: pd.DataFrame) -> str:
    """Every metric: count, p50, p90, p95, p99, max, timeouts (exact values in data-value); under each
    percentile its 95 % bootstrap interval (data-low, data-high), or "n too small" below its minimum count."""
    stats = percentile_table(turns)
    columns = ("count",) + STAT_NAMES + ("timeouts",)
    head = "<th>metric</th>" + "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for metric, row in stats.iterrows():
        muted = ' class="muted"' if row["count"] == 0 else ""
        values = pd.to_numeric(turns[metric], errors="coerce").to_numpy(dtype="float64") if metric in turns else None
        cells = [f"<td>{esc(metric)}</td>"]
        for column in columns:
            value = row[column]
            exact = "" if value is None or pd.isna(value) else repr(float(value))
            shown, extra = fmt_num(value), ""
            if column in PERCENTILE_COLUMNS and exact and values is not None:
                interval = percentile_interval(values, float(column[1:]))
                if interval is not None:
                    extra = f' data-low="{interval[0]!r}" data-high="{interval[1]!r}"'
                shown = _percentile_html(values, float(column[1:]), value)
            cells.append(f'<td class="num" data-metric="{esc(metric)}" data-stat="{column}" '
                         f'data-value="{exact}"{extra}>{shown}</td>')
        body.append(f"<tr{muted}>{''.join(cells)}</tr>")
    note = ('<p class="muted">Under each percentile: its 95 % confidence interval (percentile bootstrap, 2000 '
            f"resamples, fixed seed); p50 needs {min_count(50)} values, p90/p95/p99 {min_count(95)}, else "
            f"{TOO_FEW}.</p>")
    return note + f'<table id="percentiles"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _percentile_html(values: Any, q: float, point: Any) -> str:
    """A percentile with its 95 % interval under it, or "n too small" (the point in the tooltip)."""
    interval = percentile_interval(values, q)
    if interval is None:
        return f'<span class="muted" title="point {fmt_num(point)}: fewer than {min_count(q)} values">{TOO_FEW}</span>'
    return f'{fmt_num(point)}<br><span class="ci">[{fmt_num(interval[0])}, {fmt_num(interval[1])}]</span>'


def breakdown_html(turns: pd.DataFrame, metric: str, by: tuple[str, ...] = ("scenario", "format")) -> str:
    """p50/p95/p99 of one metric per group (each with its interval): which scenario or format is slow."""
    measured = turns[turns[metric].notna()]
    if measured.empty:
        return f'<p class="muted">No turn measured {esc(metric)}.</p>'
    rows = []
    for key, group in measured.groupby([measured[c].fillna("?") for c in by], sort=True):
        stats = metric_stats(group[metric])
        values = group[metric].to_numpy(dtype="float64")
        rows.append([esc(k) for k in key] + [fmt_num(stats["count"])]
                    + [_percentile_html(values, q, stats[f"p{q}"]) for q in (50, 95, 99)] + [fmt_num(stats["max"])])
    headers = list(by) + ["count", "p50", "p95", "p99", "max"]
    return table(headers, rows, raw_html_columns=tuple(range(len(headers))))


def pacing_table_html(summary: dict[str, Any] | None, turns: pd.DataFrame) -> str:
    pacing = (summary or {}).get("pacing") or {}
    worst = turns["send_lateness_max_ms"].max()
    rows = [("p50 (ms)", pacing.get("p50_ms")), ("p99 (ms)", pacing.get("p99_ms")), ("max (ms)", pacing.get("max_ms")),
            ("limit (ms)", pacing.get("limit_ms")), ("gate", "passed" if pacing.get("passed", True) else "FAILED"),
            ("worst turn max (ms)", None if pd.isna(worst) else float(worst)),
            ("turns flagged invalid_pacing", int((turns["status"] == "invalid_pacing").sum()))]
    return table(["send lateness", "value"], [(k, fmt_num(v, 2)) for k, v in rows])


def failure_html(summary: dict[str, Any] | None, turns: pd.DataFrame) -> str:
    """For a failed run, the explanation first: what failed and why, in the run's own words."""
    if summary is None:
        return ('<div class="banner warn" id="failure">No summary.json: this run directory was never assembled, so '
                "no gate was evaluated (complete it with <code>harness finalize RUN_DIR</code>).</div>")
    if summary.get("passed"):
        return ""
    code = summary.get("exit_code")
    title = FAILURE_TITLES.get(int(code) if isinstance(code, int) else -1, "The run failed")
    items = [esc(reason) for reason in summary.get("why") or []]
    sessions = summary.get("sessions") or {}
    if code == 3 or sessions.get("connect_failed"):
        items.append(esc(f"{sessions.get('connect_failed', 0)} of {sessions.get('total', 0)} sessions could not "
                         f"connect or were refused; {len(turns)} turns were recorded"))
        items += [f"the target said: {esc(e)}" for e in sessions.get("errors") or []]
    for slo in summary.get("slos") or []:
        if not slo.get("passed"):
            note = f" ({slo['note']})" if slo.get("note") else ""
            items.append(esc(f"FAIL {slo.get('expr')}: value {fmt_num(slo.get('value'), 2)}{note}"))
    body = "".join(f"<li>{item}</li>" for item in dict.fromkeys(items))
    return (f'<div class="banner bad" id="failure">FAILED (exit code {esc(code)}): {esc(title)}'
            f"<ul>{body}</ul></div>")


def _flat_settings(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows += _flat_settings(f"{prefix}.{key}" if prefix else str(key), inner)
        return rows
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list)) for v in value):
            return [(prefix, " ".join(str(v) for v in value) if prefix == "argv" else ", ".join(str(v) for v in value))]
        return [row for i, v in enumerate(value) for row in _flat_settings(f"{prefix}[{i}]", v)]
    text = "" if value is None else str(value)
    if "://" in text:
        text = redact_url(text)
    return [(prefix, text)]


def settings_html(run: dict[str, Any]) -> str:
    """Every field of run.json (the run's settings, simulator settings, versions, host), one row each."""
    if not run:
        return '<p class="muted">No run.json in this run directory.</p>'
    rows = _flat_settings("", run)
    return '<div class="scroll">' + table(["setting", "value"], rows) + "</div>"
