"""The report's "Under load" section: the real user count, turn rate, errors, timeouts and
incidents over time; latency over time in adaptive bins; latency against concurrency and the
concurrency at which each SLO first fails. Users come from Locust's own history (load_history).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from harness.report.concurrency import by_concurrency, label, slo_first_failure
from harness.report.html_page import Page, esc, styled, table
from harness.report.load_history import UserHistory
from harness.report.stats import MIN_TURNS_PER_BIN, adaptive_bins, bin_index, sample_rows, time_bins

LATENCY_METRICS = ("ttfa_ms", "vad_commit_ms")
MAX_SCATTER_POINTS = 2000
HOVER_TEXT_CHARS = 60


def _hover_text(rows: pd.DataFrame) -> list[str]:
    """Escaped hover lines; transcripts come from the target side of the conversation, so escape them."""
    text = []
    for session, turn, scenario, transcript in zip(rows["session_id"], rows["turn"], rows["scenario"],
                                                   rows["transcript"]):
        said = "" if transcript is None or transcript is pd.NA else str(transcript)[:HOVER_TEXT_CHARS]
        text.append(f"{esc(session)} turn {esc(turn)} ({esc(scenario)})<br>{esc(said)}")
    return text


def activity_bins(turns: pd.DataFrame, t0: float) -> pd.DataFrame:
    """Per adaptive time bin (>= MIN_TURNS_PER_BIN turns): start, end, turns, and turns, errors,
    timeouts and incidents per second."""
    times = (turns["t_wall_s"] - t0).to_numpy(dtype="float64")
    columns = ["start", "end", "turns", "turns_per_s", "errors_per_s", "timeouts_per_s", "incidents_per_s"]
    if not np.isfinite(times).any():
        return pd.DataFrame(columns=columns)
    edges = adaptive_bins(times)
    index = bin_index(times, edges)
    status = turns["status"].astype("object").to_numpy()
    incident = turns["incident"].notna().to_numpy() if "incident" in turns else np.zeros(len(turns), dtype=bool)
    rows = []
    for i in range(len(edges) - 1):
        inside = index == i
        width = max(float(edges[i + 1] - edges[i]), 1.0)   # a bin of simultaneous starts counts over a second
        rows.append({"start": edges[i], "end": edges[i + 1], "turns": int(inside.sum()),
                     "turns_per_s": inside.sum() / width, "errors_per_s": float((status[inside] == "error").sum()) / width,
                     "timeouts_per_s": float((status[inside] == "timeout").sum()) / width,
                     "incidents_per_s": float(incident[inside].sum()) / width})
    return pd.DataFrame(rows, columns=columns)


def _users_trace(history: UserHistory, t0: float) -> go.Scatter:
    frame = history.frame
    return go.Scatter(x=(frame["t_wall_s"] - t0).to_numpy(), y=frame["users"].to_numpy(), mode="lines",
                      line={"shape": "hv", "color": "#2ca02c", "width": 2}, name="users", yaxis="y2",
                      hovertemplate="%{y} users at %{x:.0f} s<extra></extra>")


def _with_users_axis(fig: go.Figure) -> None:
    fig.update_layout(yaxis2={"title": {"text": "users"}, "overlaying": "y", "side": "right", "showgrid": False,
                              "rangemode": "tozero", "tickformat": "d"}, margin={"r": 70},
                      legend={"orientation": "h", "y": -0.2})


def activity_figure(turns: pd.DataFrame, history: UserHistory, t0: float) -> go.Figure | None:
    bins = activity_bins(turns, t0)
    if bins.empty and history.frame.empty:
        return None
    fig = go.Figure()
    centre = ((bins["start"] + bins["end"]) / 2).to_numpy()
    for column, name, color in (("turns_per_s", "turns/s", "#1f77b4"), ("errors_per_s", "errors/s", "#7b1b14"),
                                ("timeouts_per_s", "timeouts/s", "#ff7f0e"), ("incidents_per_s", "incidents/s", "#d62728")):
        fig.add_trace(go.Scatter(x=centre, y=bins[column].to_numpy(), mode="lines+markers", name=name,
                                 line={"color": color}, customdata=bins["turns"].to_numpy(),
                                 hovertemplate="%{y:.2f}/s (bin of %{customdata} turns)<extra></extra>"))
    fig.add_trace(_users_trace(history, t0))
    _with_users_axis(fig)
    fig.update_xaxes(title_text="seconds since the first turn")
    fig.update_layout(yaxis_title_text="per second")
    return styled(fig, f"Users, turn rate, errors, timeouts and incidents over time (bins of >= {MIN_TURNS_PER_BIN} turns)",
                  height=380)


def latency_over_time_figure(turns: pd.DataFrame, metric: str, history: UserHistory, t0: float) -> go.Figure | None:
    measured = turns[turns[metric].notna() & turns["t_wall_s"].notna()]
    if measured.empty:
        return None
    bins = time_bins(measured["t_wall_s"] - t0, measured[metric])
    fig = go.Figure()
    sample = sample_rows(measured, MAX_SCATTER_POINTS)
    fig.add_trace(go.Scatter(
        x=(sample["t_wall_s"] - t0).to_numpy(), y=sample[metric].to_numpy(), mode="markers",
        name=f"turns ({len(sample)} of {len(measured)})", marker={"size": 4, "opacity": 0.35, "color": "#8a94a6"},
        text=_hover_text(sample), hovertemplate="%{y:.0f} ms at %{x:.0f} s<br>%{text}<extra></extra>"))
    for stat, color in (("p50", "#1f77b4"), ("p95", "#ff7f0e"), ("p99", "#d62728")):
        fig.add_trace(go.Scatter(x=bins["t"].to_numpy(), y=bins[stat].to_numpy(), mode="lines+markers", name=stat,
                                 line={"color": color}, customdata=bins["count"].to_numpy(),
                                 hovertemplate="%{y:.0f} ms (%{customdata} turns)<extra></extra>"))
    fig.add_trace(_users_trace(history, t0))
    _with_users_axis(fig)
    fig.update_xaxes(title_text="seconds since the first turn")
    fig.update_layout(yaxis_title_text=f"{metric} (ms)")
    return styled(fig, f"{metric} over time (bins of >= {MIN_TURNS_PER_BIN} turns)", height=360)


def concurrency_figure(table_: pd.DataFrame, metric: str) -> go.Figure | None:
    if table_.empty:
        return None
    x = ((table_["users_low"] + table_["users_high"]) / 2).to_numpy(dtype=float)
    names = [label(a, b) for a, b in zip(table_["users_low"], table_["users_high"])]
    fig = go.Figure()
    for stat, color in (("p50", "#1f77b4"), ("p95", "#ff7f0e"), ("p99", "#d62728")):
        fig.add_trace(go.Scatter(x=x, y=table_[stat].to_numpy(), mode="lines+markers", name=stat, line={"color": color},
                                 customdata=np.stack([names, table_["count"].to_numpy()], axis=-1),
                                 hovertemplate="%{customdata[0]} users: %{y:.0f} ms (n=%{customdata[1]})<extra></extra>"))
    fig.update_xaxes(title_text="users (Locust's count when the turn started)")
    fig.update_yaxes(title_text=f"{metric} (ms)")
    return styled(fig, f"{metric} against concurrency", height=340)


def load_section(page: Page, turns: pd.DataFrame, history: UserHistory, summary: dict[str, Any] | None) -> None:
    page.heading("Under load", "load")
    page.add(f'<p class="muted">Users from {esc(history.source)}. Time bins and concurrency groups hold at least '
             f"{MIN_TURNS_PER_BIN} turns each (adaptive widths), so no point rests on a single turn.</p>")
    if turns["t_wall_s"].notna().any():
        t0 = float(min(turns["t_wall_s"].min(), history.frame["t_wall_s"].min() if not history.frame.empty else np.inf))
    elif not history.frame.empty:
        t0 = float(history.frame["t_wall_s"].min())
    else:
        page.add('<p class="muted">No turn has a start time: nothing to draw over time.</p>')
        return
    activity = activity_figure(turns, history, t0)
    if activity is not None:
        page.figure(activity)
    figures = [latency_over_time_figure(turns, m, history, t0) for m in LATENCY_METRICS]
    page.add('<div class="grid">' + "".join(page.figure_html(f) for f in figures if f is not None) + "</div>")
    page.add('<h3 id="concurrency">Latency against concurrency</h3>')
    users = pd.Series(history.users_at(turns["t_wall_s"]), index=turns.index)
    tables = {m: by_concurrency(turns, users, m) for m in LATENCY_METRICS}
    figures = [concurrency_figure(t, m) for m, t in tables.items()]
    page.add('<div class="grid">' + "".join(page.figure_html(f) for f in figures if f is not None) + "</div>")
    slos = [s for s in (summary or {}).get("slos") or []]
    if slos:
        rows = [(s.get("expr"), "pass" if s.get("passed") else "FAIL", slo_first_failure(s, turns, users)["text"])
                for s in slos]
        page.add(table(["SLO", "whole run", "against concurrency"], rows))
    else:
        page.add('<p class="muted">No SLOs were set, so none is split by concurrency.</p>')
