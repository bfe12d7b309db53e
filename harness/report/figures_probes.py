"""The probes' section of the report: endpointing cost, the pause ladder and noise ladder curves,
backchannel cancels, heard/discarded audio and network RTT (only what the run measured).

`probes_section(page, turns, summary)` adds it to a report page; nothing is added when the run
ran no probe and measured no RTT.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from harness.report.html_page import Page, table


def ladder_figure(ladder: dict[str, Any], x_title: str, y_title: str, title: str) -> go.Figure | None:
    """A share per level (summary.json probes.pause_ladder / noise_ladder) as a curve."""
    levels = sorted(ladder, key=float)
    if not levels:
        return None
    rates = [ladder[level]["rate"] for level in levels]
    text = [f"{level}: {next(v for k, v in ladder[level].items() if k not in ('turns', 'rate'))} of "
            f"{ladder[level]['turns']} turns" for level in levels]
    fig = go.Figure(go.Scatter(x=[float(v) for v in levels], y=rates, mode="lines+markers", hovertext=text,
                               hoverinfo="text", name=title))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, yaxis_range=[-0.05, 1.05],
                      height=320, margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return fig


def _stat_row(turns: pd.DataFrame, column: str) -> list[Any] | None:
    values = pd.to_numeric(turns[column], errors="coerce").dropna() if column in turns else pd.Series(dtype=float)
    if values.empty:
        return None
    return [column, int(values.size), float(values.quantile(0.5)), float(values.quantile(0.95)), float(values.max())]


def probes_section(page: Page, turns: pd.DataFrame, summary: dict[str, Any] | None) -> None:
    probes = (summary or {}).get("probes") or {}
    rows = [r for r in (_stat_row(turns, c) for c in ("endpointing_cost_ms", "heard_ms", "discarded_ms",
                                                       "ttfa_ms", "network_rtt_ms")) if r is not None]
    pause, noise = probes.get("pause_ladder") or {}, probes.get("noise_ladder") or {}
    backchannel = (probes.get("backchannel") or {}).get("by_offset_ms") or {}
    if not (pause or noise or backchannel or any(r[0] != "ttfa_ms" for r in rows)):
        return
    page.heading("Probes: endpointing, turn-taking, network", "probes")
    page.add(table(["metric", "count", "p50", "p95", "max"], rows, numeric=[False, True, True, True, True]))
    for ladder, x_title, y_title, title in ((pause, "pause inside the utterance (ms)", "share of turns split",
                                             "Pause ladder: turns the server ended inside the pause"),
                                            (noise, "SNR during playback (dB)", "false barge-in rate",
                                             "Noise ladder: false barge-ins by SNR")):
        fig = ladder_figure(ladder, x_title, y_title, title)
        if fig is not None:
            page.figure(fig)
    if backchannel:
        page.add(table(["backchannel offset (ms)", "answers", "cancelled", "share"],
                       [[k, v["turns"], v["cancelled"], v["rate"]] for k, v in sorted(backchannel.items(),
                                                                                       key=lambda kv: float(kv[0]))],
                       numeric=[True] * 4))
