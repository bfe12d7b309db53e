"""Latency CDFs: one empirical CDF per scenario and format, drawn as steps, p50/p95/p99 marked.

Each CDF is built from its exact corners (at most a few hundred per line, `stats.cdf_points`), so
its size does not grow with the number of turns. Latency over time and against concurrency are
in `report_load`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from harness.report.html_page import esc, styled
from harness.report.stats import cdf_points

MARKED_PERCENTILES = (50, 95, 99)
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def cdf_figure(turns: pd.DataFrame, metric: str, title: str) -> go.Figure | None:
    """One step CDF per (scenario, format) that measured `metric`, its p50/p95/p99 marked; None when nothing did."""
    measured = turns[turns[metric].notna()]
    if measured.empty:
        return None
    fig = go.Figure()
    groups = measured.groupby([measured["scenario"].fillna("?"), measured["format"].fillna("?")], sort=True)
    for number, ((scenario, fmt), group) in enumerate(groups):
        values = group[metric].to_numpy(dtype="float64")
        x, y = cdf_points(values)
        color = COLORS[number % len(COLORS)]
        name = esc(f"{scenario} / {fmt} (n={len(group)})")
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, legendgroup=name, line={"shape": "hv", "color": color},
                                 hovertemplate="%{x:.0f} ms: %{y:.1%} of turns at or below<extra></extra>"))
        marks = np.percentile(values, MARKED_PERCENTILES)
        fig.add_trace(go.Scatter(x=marks, y=[q / 100 for q in MARKED_PERCENTILES], mode="markers+text",
                                 text=[f"p{q}" for q in MARKED_PERCENTILES], textposition="middle left",
                                 marker={"color": color, "size": 8, "symbol": "diamond"}, legendgroup=name,
                                 showlegend=False, hovertemplate="%{text}: %{x:.0f} ms<extra></extra>"))
    fig.update_xaxes(title_text=f"{metric} (ms)")
    fig.update_yaxes(title_text="fraction of turns", range=[0, 1.02], tickformat=".0%")
    fig = styled(fig, title, height=420)
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "font": {"size": 11}})
    return fig
