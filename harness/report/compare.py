"""Run comparison: percentile deltas per metric, overlaid CDFs, incident-rate changes, a verdict.

`compare_runs(A, B, out_html, metric, stat, max_regression_ms, max_regression_pct)` writes a
side-by-side page and returns (regressed, table). Every metric here is "lower is better", so a
regression is B's statistic above A's by more than a limit: more than `max_regression_ms`
milliseconds, or more than `max_regression_pct` percent (either limit, when both are given).
With no limit given the default is 10 %. A run B that measured nothing where A did regressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from harness.report.errors import ReportInputError
from harness.report.html_page import Page, esc, fmt_num, styled, table
from harness.report.run_files import RunFiles
from harness.report.stats import STAT_NAMES, cdf_points, incident_counts, metric_stats, status_counts
from harness.report.turn_table import METRIC_COLUMNS, read_turns

DEFAULT_MAX_REGRESSION_PCT = 10.0
TABLE_STATS = ("p50", "p95", "p99")
CDF_METRICS = ("ttfa_ms", "vad_commit_ms", "cancel_ack_ms", "barge_in_ms", "tool_roundtrip_ms")


@dataclass
class Verdict:
    metric: str
    stat: str
    a: float | None
    b: float | None
    regressed: bool
    message: str


def delta_table(a: pd.DataFrame, b: pd.DataFrame, stats: tuple[str, ...] = ("count",) + STAT_NAMES) -> pd.DataFrame:
    """Long table: metric, stat, a, b, delta, delta_pct for every metric either run measured."""
    rows = []
    for metric in METRIC_COLUMNS:
        sa, sb = metric_stats(a[metric]), metric_stats(b[metric])
        if sa["count"] == 0 and sb["count"] == 0:
            continue
        for stat in stats:
            va, vb = sa[stat], sb[stat]
            delta = None if va is None or vb is None else float(vb) - float(va)
            pct = None if delta is None or not va else 100.0 * delta / float(va)
            rows.append({"metric": metric, "stat": stat, "a": va, "b": vb, "delta": delta, "delta_pct": pct})
    return pd.DataFrame.from_records(rows, columns=["metric", "stat", "a", "b", "delta", "delta_pct"])


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
    if over:
        return Verdict(metric, stat, va, vb, True, f"REGRESSION {change}, {' and '.join(over)}")
    return Verdict(metric, stat, va, vb, False, f"ok {change}")


def _delta_cell(delta: float | None, pct: float | None) -> str:
    """Δ with its percentage; red when B is more than 5 % slower, green when more than 5 % faster."""
    if delta is None or pd.isna(delta):
        return '<td class="num">—</td>'
    pct_text = "" if pct is None or pd.isna(pct) else f" ({pct:+.1f} %)"
    css = "fail" if pct is not None and not pd.isna(pct) and pct > 5 else (
        "pass" if pct is not None and not pd.isna(pct) and pct < -5 else "")
    return f'<td class="num {css}">{delta:+,.1f}{pct_text}</td>'


def wide_delta_html(deltas: pd.DataFrame, judged_metric: str) -> str:
    """One row per metric: counts, then A, B and Δ for p50, p95, p99 and max."""
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
            cells += [f'<td class="num">{fmt_num(row.a)}</td>', f'<td class="num">{fmt_num(row.b)}</td>',
                      _delta_cell(row.delta, row.delta_pct)]
        style = ' style="outline:2px solid #1d2330"' if metric == judged_metric else ""
        body.append(f"<tr{style}>{''.join(cells)}</tr>")
    return f'<table id="deltas"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def console_table(table_long: pd.DataFrame) -> str:
    """The p50/p95/p99 rows as fixed-width text for the terminal."""
    lines = [f"{'metric':<22}{'stat':>6}{'A':>12}{'B':>12}{'delta':>12}{'delta %':>10}"]
    for row in table_long[table_long["stat"].isin(TABLE_STATS)].itertuples(index=False):
        cells = [fmt_num(row.a), fmt_num(row.b), fmt_num(row.delta),
                 "—" if row.delta_pct is None or pd.isna(row.delta_pct) else f"{row.delta_pct:+.1f}"]
        lines.append(f"{row.metric:<22}{row.stat:>6}" + "".join(f"{c:>12}" for c in cells[:3]) + f"{cells[3]:>10}")
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
                 max_regression_pct: float | None = None) -> tuple[bool, pd.DataFrame]:
    """Write the side-by-side page; returns (regressed, long delta table; its attrs["verdict"] says why)."""
    a, b = read_turns(run_a), read_turns(run_b)
    verdict = judge(a, b, metric, stat, max_regression_ms, max_regression_pct)
    deltas = delta_table(a, b)
    files_a, files_b = RunFiles.load(run_a), RunFiles.load(run_b)
    page = Page("compare runs")
    page.add("<h1>Run comparison</h1>")
    facts_a, facts_b = dict(files_a.header_facts()), dict(files_b.header_facts())
    page.add(table(["", "A", "B"], [(k, facts_a.get(k), facts_b.get(k)) for k in facts_a]))
    page.add(f'<div class="banner {"bad" if verdict.regressed else "good"}">{esc(verdict.message)}</div>')
    counts_a, counts_b = status_counts(a), status_counts(b)
    statuses = ["total"] + sorted((set(counts_a) | set(counts_b)) - {"total"})
    page.add(table(["turns"] + statuses, [["A"] + [counts_a.get(k, 0) for k in statuses],
                                          ["B"] + [counts_b.get(k, 0) for k in statuses]],
                   numeric=[False] + [True] * len(statuses)))
    page.heading("Percentiles (ms): B minus A")
    page.add(wide_delta_html(deltas, metric))
    page.heading("Distributions")
    figures = [_cdf_overlay(a, b, m) for m in CDF_METRICS]
    page.add('<div class="grid">' + "".join(page.figure_html(f) for f in figures if f is not None) + "</div>")
    page.heading("Incident rates")
    rates = _incident_rates(a, b)
    page.add(table(["cause", "A count", "A rate", "B count", "B rate", "change"], rates, numeric=[False, True, False, True, False, False])
             if rates else "<p>Neither run had incidents.</p>")
    page.write(Path(out_html))
    deltas.attrs["verdict"] = verdict.message
    return verdict.regressed, deltas
