"""Run comparison: percentile deltas per metric, overlaid CDFs, incident-rate changes, a verdict.

`compare_runs(A, B, out_html, metric, stat, max_regression_ms, max_regression_pct)` writes a
side-by-side page and returns (regressed, table). Every metric here is "lower is better", so a
regression is B's statistic above A's by more than a limit: more than `max_regression_ms`
milliseconds, or more than `max_regression_pct` percent (either limit, when both are given).
With no limit given the default is 10 %. A percentile is a regression only when, besides, the 95 %
bootstrap intervals of A and B separate (B's lower bound above A's upper bound); a percentile
below its minimum count is withheld ("n too small") and not judged. A run B that measured
nothing where A did regressed. Warnings (compare_checks) name the settings the runs differ in
and a run that failed a gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from harness.metrics.uncertainty import separated
from harness.report.compare_checks import gate_warnings, interval_row, setting_warnings
from harness.report.compare_probes import probe_rows
from harness.report.errors import ReportInputError
from harness.report.html_page import Page, esc, fmt_num, styled, table
from harness.report.progress import Progress
from harness.report.run_files import RunFiles
from harness.report.stats import STAT_NAMES, cdf_points, incident_counts, metric_stats, status_counts
from harness.report.turn_table import METRIC_COLUMNS, read_turns

DEFAULT_MAX_REGRESSION_PCT = 10.0
TABLE_STATS = ("p50", "p95", "p99")
PERCENTILE_STATS = ("p50", "p90", "p95", "p99")
CDF_METRICS = ("ttfa_ms", "vad_commit_ms", "cancel_ack_ms", "barge_in_ms", "tool_roundtrip_ms")


@dataclass
class Verdict:
    metric: str
    stat: str
    a: float | None
    b: float | None
    regressed: bool
    message: str
    a_ci: list[float] | None = None
    b_ci: list[float] | None = None


def delta_table(a: pd.DataFrame, b: pd.DataFrame, stats: tuple[str, ...] = ("count",) + STAT_NAMES) -> pd.DataFrame:
    """Long table: metric, stat, a, b, delta, delta_pct, and for percentiles each run's 95 % interval
    (a_ci, b_ci; None with a_note/b_note "n too small") and whether they separate (+1 B above A)."""
    rows = []
    for metric in METRIC_COLUMNS:
        sa, sb = metric_stats(a[metric]), metric_stats(b[metric])
        if sa["count"] == 0 and sb["count"] == 0:
            continue
        values_a, values_b = _values(a, metric), _values(b, metric)
        for stat in stats:
            va, vb = sa[stat], sb[stat]
            delta = None if va is None or vb is None else float(vb) - float(va)
            pct = None if delta is None or not va else 100.0 * delta / float(va)
            row: dict[str, Any] = {"metric": metric, "stat": stat, "a": va, "b": vb, "delta": delta, "delta_pct": pct,
                   "a_ci": None, "b_ci": None, "a_note": None, "b_note": None, "separated": 0}
            if stat in PERCENTILE_STATS:
                row["a_ci"], row["a_note"] = interval_row(values_a, stat)
                row["b_ci"], row["b_note"] = interval_row(values_b, stat)
                row["separated"] = separated(row["a_ci"], row["b_ci"])
            rows.append(row)
    return pd.DataFrame.from_records(rows, columns=DELTA_COLUMNS)


DELTA_COLUMNS = ["metric", "stat", "a", "b", "delta", "delta_pct", "a_ci", "b_ci", "a_note", "b_note", "separated"]


def _values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    return pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def judge(a: pd.DataFrame, b: pd.DataFrame, metric: str, stat: str, max_regression_ms: float | None,
          max_regression_pct: float | None) -> Verdict:
    if metric not in METRIC_COLUMNS:
        raise ReportInputError(f"unknown metric {metric!r}; choose one of {', '.join(METRIC_COLUMNS)}")
    if stat not in STAT_NAMES:
        raise ReportInputError(f"unknown statistic {stat!r}; choose one of {', '.join(STAT_NAMES)}")
    if max_regression_ms is None and max_regression_pct is None:
        max_regression_pct = DEFAULT_MAX_REGRESSION_PCT
    va, vb = metric_stats(a[metric])[stat], metric_stats(b[metric])[stat]
    if va is None:
        raise ReportInputError(f"run A has no {metric} values; compare a metric both runs measured")
    if vb is None:
        return Verdict(metric, stat, va, None, True, f"{metric} {stat}: run B measured nothing (A: {va:.1f})")
    delta = vb - va
    pct = 100.0 * delta / va if va else float("inf") if delta > 0 else 0.0
    over = []
    if max_regression_ms is not None and delta > max_regression_ms:
        over.append(f"more than {max_regression_ms:g} ms")
    if max_regression_pct is not None and pct > max_regression_pct:
        over.append(f"more than {max_regression_pct:g} %")
    change = f"{metric} {stat}: {va:.1f} -> {vb:.1f} ms ({delta:+.1f} ms, {pct:+.1f} %)"
    if stat not in PERCENTILE_STATS:   # max has no interval: judged on the point alone
        if over:
            return Verdict(metric, stat, va, vb, True, f"REGRESSION {change}, {' and '.join(over)}")
        return Verdict(metric, stat, va, vb, False, f"ok {change}")
    (a_ci, a_note), (b_ci, b_note) = interval_row(_values(a, metric), stat), interval_row(_values(b, metric), stat)
    if a_ci is None or b_ci is None:
        why = "; ".join(f"{name}: {note}" for name, note in (("A", a_note), ("B", b_note)) if note)
        return Verdict(metric, stat, va, vb, False, f"NOT JUDGED {change}: {stat} withheld ({why})", a_ci, b_ci)
    intervals = f"95 % intervals A [{a_ci[0]:.1f}, {a_ci[1]:.1f}], B [{b_ci[0]:.1f}, {b_ci[1]:.1f}]"
    if over and separated(a_ci, b_ci) == 1:
        return Verdict(metric, stat, va, vb, True, f"REGRESSION {change}, {' and '.join(over)}; {intervals} "
                                                   "separate", a_ci, b_ci)
    if over:
        return Verdict(metric, stat, va, vb, False, f"ok (within noise) {change}, {' and '.join(over)} but the "
                                                    f"{intervals} overlap", a_ci, b_ci)
    return Verdict(metric, stat, va, vb, False, f"ok {change}; {intervals}", a_ci, b_ci)


def _delta_cell(delta: float | None, pct: float | None, separation: int | None = None) -> str:
    """Δ with its percentage; red when B is slower, green when faster: for a percentile only when the
    intervals separate, otherwise (max) when by more than 5 %."""
    if delta is None or pd.isna(delta):
        return '<td class="num">—</td>'
    pct_text = "" if pct is None or pd.isna(pct) else f" ({pct:+.1f} %)"
    if separation is not None:
        css = {1: "fail", -1: "pass"}.get(int(separation), "")
    else:
        css = "fail" if pct is not None and not pd.isna(pct) and pct > 5 else (
            "pass" if pct is not None and not pd.isna(pct) and pct < -5 else "")
    return f'<td class="num {css}">{delta:+,.1f}{pct_text}</td>'


def _value_cell(value: float | None, interval: list[float] | None, note: str | None) -> str:
    """A percentile with its interval under it, or "n too small" (the point then only in the tooltip)."""
    if not isinstance(interval, list):
        interval = None
    if isinstance(note, str) and value is not None:
        return f'<td class="num muted" title="point {fmt_num(value)}; {esc(note)}">{esc(note.split(" (")[0])}</td>'
    if interval is None:
        return f'<td class="num">{fmt_num(value)}</td>'
    return (f'<td class="num">{fmt_num(value)}<br><span class="ci">[{fmt_num(interval[0])}, '
            f'{fmt_num(interval[1])}]</span></td>')


def wide_delta_html(deltas: pd.DataFrame, judged_metric: str) -> str:
    """One row per metric: counts, then A, B (each with its 95 % interval) and Δ for p50, p95, p99 and max.

    A Δ is coloured only when the intervals separate (or, for max, when it is over 5 %)."""
    stats = ("p50", "p95", "p99", "max")
    head = "<th>metric</th><th>count A</th><th>count B</th>" + "".join(
        f"<th>{s} A</th><th>{s} B</th><th>Δ {s}</th>" for s in stats)
    body = []
    for metric, group in deltas.groupby("metric", sort=False):
        by_stat = {row.stat: row for row in group.itertuples(index=False)}
        cells = [f"<td>{esc(metric)}</td>", f'<td class="num">{fmt_num(by_stat["count"].a)}</td>',
                 f'<td class="num">{fmt_num(by_stat["count"].b)}</td>']
        for stat in stats:
            row = by_stat[stat]
            cells += [_value_cell(row.a, row.a_ci, row.a_note), _value_cell(row.b, row.b_ci, row.b_note),
                      _delta_cell(row.delta, row.delta_pct, row.separated if stat in PERCENTILE_STATS else None)]
        style = ' style="outline:2px solid #1d2330"' if metric == judged_metric else ""
        body.append(f"<tr{style}>{''.join(cells)}</tr>")
    return f'<table id="deltas"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _interval_text(interval: list[float] | None, note: str | None) -> str:
    if not isinstance(interval, list):
        return "n too small" if isinstance(note, str) and note.startswith("n too small") else "—"
    digits = 0 if max(abs(interval[0]), abs(interval[1])) >= 1000 else 1
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def console_table(table_long: pd.DataFrame) -> str:
    """The p50/p95/p99 rows as fixed-width text for the terminal, with each run's 95 % interval."""
    lines = [f"{'metric':<22}{'stat':>6}{'A':>10}{'A 95% CI':>16}{'B':>10}{'B 95% CI':>16}{'delta':>10}{'delta %':>9}"]
    for row in table_long[table_long["stat"].isin(TABLE_STATS)].itertuples(index=False):
        pct = "—" if row.delta_pct is None or pd.isna(row.delta_pct) else f"{row.delta_pct:+.1f}"
        lines.append(f"{row.metric:<22}{row.stat:>6}{fmt_num(row.a):>10}{_interval_text(row.a_ci, row.a_note):>16}"
                     f"{fmt_num(row.b):>10}{_interval_text(row.b_ci, row.b_note):>16}{fmt_num(row.delta):>10}{pct:>9}")
    return "\n".join(lines)


def _cdf_overlay(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> go.Figure | None:
    fig = go.Figure()
    for frame, name, dash in ((a, "A", "solid"), (b, "B", "dash")):
        values = frame[metric].dropna().to_numpy()
        if values.size:
            x, y = cdf_points(values)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{name} (n={values.size})", line={"dash": dash}))
    if not fig.data:
        return None
    fig.update_xaxes(title_text=f"{metric} (ms)")
    fig.update_yaxes(title_text="fraction of turns", tickformat=".0%")
    return styled(fig, f"CDF: {metric}", height=340)


def _incident_rates(a: pd.DataFrame, b: pd.DataFrame) -> list[tuple[str, int, str, int, str, str]]:
    ca, cb = incident_counts(a), incident_counts(b)
    rows = []
    for cause in sorted(set(ca.index) | set(cb.index)):
        ra = float(ca["rate"].get(cause, 0.0))
        rb = float(cb["rate"].get(cause, 0.0))
        rows.append((cause, int(ca["count"].get(cause, 0)), f"{100 * ra:.2f} %", int(cb["count"].get(cause, 0)),
                     f"{100 * rb:.2f} %", f"{100 * (rb - ra):+.2f} pp"))
    return rows


def compare_runs(run_a: str | Path, run_b: str | Path, out_html: str | Path, metric: str = "ttfa_ms",
                 stat: str = "p95", max_regression_ms: float | None = None,
                 max_regression_pct: float | None = None, progress: Progress | None = None) -> tuple[bool, pd.DataFrame]:
    """Write the side-by-side page; returns (regressed, long delta table; its attrs["verdict"] says why,
    attrs["warnings"] what makes the runs hard to compare)."""
    progress = progress or Progress("compare", quiet=True)
    progress.step("reading the turn tables ...")
    a, b = read_turns(run_a), read_turns(run_b)
    verdict = judge(a, b, metric, stat, max_regression_ms, max_regression_pct)
    progress.step(f"bootstrap intervals of {len(a)} and {len(b)} turns ...")
    deltas = delta_table(a, b)
    files_a, files_b = RunFiles.load(run_a), RunFiles.load(run_b)
    mismatches, unknown = setting_warnings(files_a, files_b)
    warnings = gate_warnings(files_a, files_b) + mismatches
    page = Page("compare runs")
    page.add("<h1>Run comparison</h1>")
    page.add(f'<div class="banner {"bad" if verdict.regressed else "good"}">{esc(verdict.message)}</div>')
    if warnings:
        page.add('<div class="banner warn">Read with care: <ul>' + "".join(f"<li>{esc(w)}</li>" for w in warnings)
                 + "</ul></div>")
    if unknown:
        page.add('<p class="muted">Not recorded, so not checked: ' + esc("; ".join(unknown)) + "</p>")
    facts_a, facts_b = dict(files_a.header_facts()), dict(files_b.header_facts())
    page.add(table(["", "A", "B"], [(k, facts_a.get(k), facts_b.get(k)) for k in facts_a]))
    counts_a, counts_b = status_counts(a), status_counts(b)
    statuses = ["total"] + sorted((set(counts_a) | set(counts_b)) - {"total"})
    page.add(table(["turns"] + statuses, [["A"] + [counts_a.get(k, 0) for k in statuses],
                                          ["B"] + [counts_b.get(k, 0) for k in statuses]],
                   numeric=[False] + [True] * len(statuses)))
    page.heading("Percentiles (ms): B minus A")
    page.add('<p class="muted">Under each percentile its 95 % confidence interval (percentile bootstrap, see the '
             "README's Uncertainty); a difference is coloured only when the intervals separate. p95 and p99 need "
             "30 values, p50 10: below that they are withheld (n too small).</p>")
    page.add(wide_delta_html(deltas, metric))
    progress.step("building figures ...")
    page.heading("Distributions")
    figures = [_cdf_overlay(a, b, m) for m in CDF_METRICS]
    page.add('<div class="grid">' + "".join(page.figure_html(f) for f in figures if f is not None) + "</div>")
    page.heading("Incident rates")
    rates = _incident_rates(a, b)
    page.add(table(["cause", "A count", "A rate", "B count", "B rate", "change"], rates, numeric=[False, True, False, True, False, False])
             if rates else "<p>Neither run had incidents.</p>")
    probes = probe_rows(files_a.summary, files_b.summary)
    if probes:
        page.heading("Probes")
        page.add(table(["probe", "level", "A", "B", "change"], probes))
    page.write(Path(out_html))
    progress.done(f"wrote {out_html}")
    deltas.attrs["verdict"] = verdict.message
    deltas.attrs["warnings"] = warnings
    return verdict.regressed, deltas
