"""Latency figures: CDFs by scenario and format, latency over time, latency against active users.

Each figure is built from reduced data (quantile grids, time bins, a capped sample of points)
so its size does not grow with the number of turns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from harness.report.html_page import esc, styled
from harness.report.stats import cdf_points, sample_rows, time_bins

MAX_SCATTER_POINTS = 3000
HOVER_TEXT_CHARS = 60


def cdf_figure(turns: pd.DataFrame, metric: str, title: str) -> go.Figure | None:
    """One CDF line per (scenario, format) that measured `metric`; None when nothing did."""
    measured = turns[turns[metric].notna()]
    if measured.empty:
        return None
    fig = go.Figure()
    groups = measured.groupby([measured["scenario"].fillna("?"), measured["format"].fillna("?")], sort=True)
    for (scenario, fmt), group in groups:
        x, y = cdf_points(group[metric].to_numpy())
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=esc(f"{scenario} / {fmt} (n={len(group)})"),
                                 hovertemplate="%{x:.0f} ms: %{y:.1%}<extra></extra>"))
    fig.update_xaxes(title_text=f"{metric} (ms)")
    fig.update_yaxes(title_text="fraction of turns", range=[0, 1.01], tickformat=".0%")
    fig = styled(fig, title, height=420)
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "font": {"size": 11}})
    return fig


def _hover_text(rows: pd.DataFrame) -> list[str]:
    """Escaped hover lines; transcripts come from the target side of the conversation, so escape them."""
    text = []
    for session, turn, scenario, transcript in zip(rows["session_id"], rows["turn"], rows["scenario"],
                                                   rows["transcript"]):
        said = "" if transcript is None or transcript is pd.NA else str(transcript)[:HOVER_TEXT_CHARS]
        text.append(f"{esc(session)} turn {esc(turn)} ({esc(scenario)})<br>{esc(said)}")
    return text


def over_time_figure(turns: pd.DataFrame, metric: str) -> go.Figure | None:
    """p50/p95 per time bin, over a capped sample of individual turns."""
    measured = turns[turns[metric].notna() & turns["t_wall_s"].notna()]
    if measured.empty:
        return None
    t0 = float(turns["t_wall_s"].min())
    sample = sample_rows(measured, MAX_SCATTER_POINTS)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=(sample["t_wall_s"] - t0).to_numpy(), y=sample[metric].to_numpy(), mode="markers",
        name=f"turns ({len(sample)} of {len(measured)})", marker={"size": 4, "opacity": 0.35, "color": "#8a94a6"},
        text=_hover_text(sample), hovertemplate="%{y:.0f} ms at %{x:.0f} s<br>%{text}<extra></extra>",
    ))
    bins = time_bins(measured["t_wall_s"] - t0, measured[metric])
    for stat, color in (("p50", "#1f77b4"), ("p95", "#d62728")):
        fig.add_trace(go.Scatter(x=bins["t"].to_numpy(), y=bins[stat].to_numpy(), mode="lines",
                                 name=stat, line={"color": color, "width": 2}))
    if turns["users"].notna().any():
        users = turns[turns["users"].notna()]
        user_bins = time_bins(users["t_wall_s"] - t0, users["users"].astype("float64"))
        fig.add_trace(go.Scatter(x=user_bins["t"].to_numpy(), y=user_bins["p50"].to_numpy(), mode="lines",
                                 name="active users", yaxis="y2", line={"color": "#2ca02c", "dash": "dot"}))
        fig.update_layout(yaxis2={"title": {"text": "active users"}, "overlaying": "y", "side": "right",
                                  "showgrid": False, "rangemode": "tozero", "tickformat": "d"})
    fig.update_xaxes(title_text="seconds since the first turn")
    fig.update_layout(yaxis_title_text=f"{metric} (ms)")  # update_yaxes would retitle the users axis too
    fig = styled(fig, f"{metric} over time", height=380)
    fig.update_layout(margin={"r": 70}, legend={"orientation": "h", "y": -0.2})
    return fig


def against_users_figure(turns: pd.DataFrame, metric: str) -> go.Figure | None:
    """p50/p95/p99 of `metric` for each number of active users: where the agent starts to degrade."""
    measured = turns[turns[metric].notna() & turns["users"].notna()]
    if measured.empty:
        return None
    grouped = measured.groupby(measured["users"].astype("int64"))[metric]
    table = pd.DataFrame({f"p{q}": grouped.quantile(q / 100) for q in (50, 95, 99)})
    table["count"] = grouped.size()
    if len(table) > 200:  # many distinct user counts: bucket them
        edges = np.linspace(table.index.min(), table.index.max() + 1, 101)
        buckets = pd.cut(measured["users"].astype("int64"), edges, right=False)
        grouped = measured.groupby(buckets, observed=True)[metric]
        table = pd.DataFrame({f"p{q}": grouped.quantile(q / 100) for q in (50, 95, 99)})
        table["count"] = grouped.size()
        table.index = [interval.left for interval in table.index]
    fig = go.Figure()
    for stat, color in (("p50", "#1f77b4"), ("p95", "#ff7f0e"), ("p99", "#d62728")):
        fig.add_trace(go.Scatter(x=table.index.to_numpy(dtype=float), y=table[stat].to_numpy(), mode="lines+markers",
                                 name=stat, line={"color": color}, customdata=table["count"].to_numpy(),
                                 hovertemplate="%{x} users: %{y:.0f} ms (n=%{customdata})<extra></extra>"))
    fig.update_xaxes(title_text="active users")
    fig.update_yaxes(title_text=f"{metric} (ms)")
    return styled(fig, f"{metric} against active users", height=340)
