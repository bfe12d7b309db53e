"""Quality figures: VAD accuracy, playout underruns, pacing of the generator, incidents, violations.

Histograms are binned here (numpy) and drawn as bars, so the page carries bin counts rather
than one number per turn.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from harness.report.html_page import esc, styled

VERDICT_ORDER = ("early", "ok", "late", "missed")
VERDICT_COLORS = {"early": "#d62728", "ok": "#2ca02c", "late": "#ff7f0e", "missed": "#7f7f7f"}


def _histogram_bar(values: np.ndarray, bins: int, name: str, color: str) -> go.Bar | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    try:
        counts, edges = np.histogram(values, bins=bins)
    except ValueError:   # values a float's precision apart have no finite-sized bins: one bar holds them
        counts, edges = np.histogram(values, bins=1)
    centres = (edges[:-1] + edges[1:]) / 2
    return go.Bar(x=centres, y=counts, width=np.diff(edges), name=name, marker={"color": color},
                  hovertemplate="%{x:.0f} ms: %{y} turns<extra></extra>")


def vad_accuracy_figure(turns: pd.DataFrame) -> go.Figure | None:
    """End-of-speech error histogram (negative = early) beside early/ok/late/missed counts."""
    errors = turns["vad_end_error_ms"].to_numpy(dtype="float64")
    verdicts = turns["vad_verdict"].dropna().value_counts()
    if not np.isfinite(errors).any() and verdicts.empty:
        return None
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3],
                        subplot_titles=("end-of-speech error (server audio_end_ms − true end)", "verdicts"))
    bar = _histogram_bar(errors, 60, "turns", "#1f77b4")
    if bar is not None:
        fig.add_trace(bar, row=1, col=1)
    order = [v for v in VERDICT_ORDER if v in verdicts.index] + [v for v in verdicts.index if v not in VERDICT_ORDER]
    fig.add_trace(go.Bar(x=[esc(v) for v in order], y=[int(verdicts[v]) for v in order],
                         marker={"color": [VERDICT_COLORS.get(v, "#9467bd") for v in order]}, name="verdicts",
                         text=[int(verdicts[v]) for v in order], textposition="outside"), row=1, col=2)
    fig.add_vline(x=0, line={"color": "#444", "dash": "dot"}, row=1, col=1)
    fig.update_xaxes(title_text="ms (negative = VAD stopped early)", row=1, col=1)
    fig.update_layout(showlegend=False, bargap=0.05)
    return styled(fig, "VAD accuracy", height=340)


def playout_figure(turns: pd.DataFrame) -> go.Figure | None:
    """Underruns per turn (capped at 10+) and the stall time of turns that had any."""
    counts = turns["underrun_count"].dropna()
    if counts.empty or not (counts > 0).any():
        return None  # the report says "no underruns" in words
    capped = counts.clip(upper=10).astype(int).value_counts().sort_index()
    labels = [f"{k}+" if k == 10 else str(k) for k in capped.index]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("underruns per turn", "stall time of turns with underruns"))
    fig.add_trace(go.Bar(x=labels, y=capped.to_numpy(), name="turns", marker={"color": "#9467bd"},
                         text=capped.to_numpy(), textposition="outside"), row=1, col=1)
    stalls = turns.loc[turns["underrun_count"] > 0, "underrun_ms"].to_numpy(dtype="float64")
    bar = _histogram_bar(stalls, 40, "turns", "#8c564b")
    if bar is not None:
        fig.add_trace(bar, row=1, col=2)
    fig.update_xaxes(title_text="underruns", type="category", row=1, col=1)
    fig.update_xaxes(title_text="underrun_ms", row=1, col=2)
    fig.update_layout(showlegend=False)
    return styled(fig, "Playout", height=320)


def pacing_figure(turns: pd.DataFrame, limit_ms: float | None) -> go.Figure | None:
    """Per-turn send lateness (p99 and max of each turn's appends) against the pacing limit."""
    p99 = turns["send_lateness_p99_ms"].to_numpy(dtype="float64")
    worst = turns["send_lateness_max_ms"].to_numpy(dtype="float64")
    fig = go.Figure()
    for values, name, color in ((p99, "per-turn p99", "#1f77b4"), (worst, "per-turn max", "#ff7f0e")):
        bar = _histogram_bar(values, 60, name, color)
        if bar is not None:
            bar.update(opacity=0.6, hovertemplate="%{x:.2f} ms: %{y} turns<extra>" + name + "</extra>")
            fig.add_trace(bar)
    if not fig.data:
        return None
    if limit_ms is not None:
        fig.add_vline(x=float(limit_ms), line={"color": "#b3261e", "dash": "dash"},
                      annotation_text=f"limit {float(limit_ms):g} ms")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="send lateness (ms): actual − scheduled send time")
    fig.update_yaxes(title_text="turns", type="log", dtick=1)  # decades: the tail stays visible
    return styled(fig, "Pacing quality of the generator", height=320)


def counts_bar_figure(counts: Mapping[str, int], title: str, axis_title: str, color: str) -> go.Figure | None:
    """Horizontal bars of named counts (incident causes, violation rules), largest on top."""
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(y=[esc(k) for k, _ in items], x=[v for _, v in items], orientation="h",
                           marker={"color": color}, text=[v for _, v in items], textposition="outside"))
    fig.update_xaxes(title_text=axis_title)
    fig.update_yaxes(automargin=True)
    return styled(fig, title, height=max(200, 90 + 28 * len(items)))
