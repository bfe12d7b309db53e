"""One session as a waterfall: what the caller sent, what the server did, what the caller heard.

Lanes, top to bottom: caller audio as sent (speech and silence runs of appends), server VAD
(speech_started..speech_stopped, commits), each response's lifetime coloured by its final
status, audio deltas as they arrived, the caller's playout (with underruns), the client's own
control events (commit, cancel, truncate, tool output), and errors/violations/closes. A red
line marks the moment playout was cut. Used by the report for every incident and by
`harness replay`; the standalone page also lists the session's events (escaped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from harness.report.html_page import Page, PlotlyJsMode, esc, styled, table
from harness.report.timeline_events import event_rows
from harness.trace import Trace, read_trace, redact_url
from harness.trace.vocabulary import Mark

LANES = ("caller audio", "server VAD", "responses", "audio deltas", "playout", "client events", "errors")
STATUS_COLORS = {"completed": "#2ca02c", "cancelled": "#d62728", "incomplete": "#ff7f0e", "failed": "#7b1b14"}
CONTROL_MARKS = ("commit_sent", "response_create_sent", "cancel_sent", "truncate_sent", "function_output_sent")
ERROR_MARKS = ("timeout", "error", "close", "connect_failed")
WARNING_MARKS = ("pacing_invalid", "send_backlog", "stopped")  # the caller's own trouble, not the target's
LEGEND = ("Caller audio: dark green = speech sent, grey = silence sent. Server VAD: orange = speech_started to "
          "speech_stopped, diamond = committed. Responses: green completed, red cancelled, orange incomplete, "
          "dark red failed. Playout: cyan = playing, red = underrun. Red line = the moment playout was cut. "
          "Hover any mark for its event.")


@dataclass
class Lanes:
    """Bars (lane, start_ms, length_ms, colour, hover) and points (lane, at_ms, symbol, colour, hover)."""

    bars: list[tuple[str, float, float, str, str]] = field(default_factory=list)
    points: list[tuple[str, float, str, str, str]] = field(default_factory=list)
    cuts: list[tuple[float, str]] = field(default_factory=list)
    turns: list[tuple[int, float, float | None]] = field(default_factory=list)


def _audio_runs(records: list[dict[str, Any]], ms_of: Any, lanes: Lanes) -> None:
    """Merge consecutive appends with the same speech flag into one bar each."""
    run: list[float] | None = None  # [start_ms, end_ms, speech]
    for rec in records:
        if rec.get("rec") != "append":
            continue
        start, length, speech = ms_of(rec["t_ns"]), float(rec.get("audio_ms") or 20.0), bool(rec.get("speech"))
        if run is not None and run[2] == speech and start - run[1] <= 2 * length:
            run[1] = start + length
            continue
        if run is not None:
            _close_audio_run(run, lanes)
        run = [start, start + length, speech]
    if run is not None:
        _close_audio_run(run, lanes)


def _close_audio_run(run: list[Any], lanes: Lanes) -> None:
    label = "speech" if run[2] else "silence"
    lanes.bars.append(("caller audio", run[0], run[1] - run[0], "#1b7837" if run[2] else "#c7ccd4",
                       f"{label} sent {run[0]:.0f}–{run[1]:.0f} ms"))


def _ms_text(value: Any) -> str:
    """A duration for hover text: numbers rounded to 0.1 ms, anything else escaped."""
    if isinstance(value, (int, float)):
        return f"{value:.1f}".removesuffix(".0")
    return esc(value)


def collect_lanes(trace: Trace) -> Lanes:
    records = sorted(trace.records, key=lambda r: r.get("t_ns") or 0)
    t0 = records[0]["t_ns"] if records else 0
    ms_of = lambda t_ns: (int(t_ns) - t0) / 1e6  # noqa: E731 - tiny local conversion
    lanes = Lanes()
    _audio_runs(records, ms_of, lanes)
    open_since: dict[str, float] = {}
    for rec in records:
        at, kind = ms_of(rec.get("t_ns") or t0), rec.get("rec")
        if kind == "recv":
            _server_event(rec, at, lanes, open_since)
        elif kind == "mark":
            _mark(rec, at, lanes, open_since)
        elif kind == "send" and rec.get("type") not in ("input_audio_buffer.append",):
            lanes.points.append(("client events", at, "triangle-up", "#5b5bd6", f"sent {esc(rec.get('type'))}"))
        elif kind == "violation":
            lanes.points.append(("errors", at, "x", "#9467bd",
                                 f"violation {esc(rec.get('rule'))}: {esc(rec.get('message'))}"))
    _server_side_cuts(records, ms_of, lanes)
    return lanes


def _server_side_cuts(records: list[dict[str, Any]], ms_of: Any, lanes: Lanes) -> None:
    """Cuts the caller did not make: a response that ended cancelled/incomplete/failed, or whose
    socket closed, while its audio was playing. The caller hears the cut when the audio it got
    runs out (its playout_end), so the line goes there."""
    played: dict[str, tuple[float, Any]] = {}
    stopped: set[str] = set()
    started: set[str] = set()
    endings: dict[str, str] = {}
    for rec in records:
        if rec.get("rec") == "mark":
            rid = str(rec.get("response_id"))
            if rec.get("mark") == Mark.PLAYOUT_START:
                started.add(rid)
            elif rec.get("mark") == Mark.PLAYOUT_END:
                played[rid] = (ms_of(rec["t_ns"]), rec.get("played_ms"))
            elif rec.get("mark") == Mark.PLAYOUT_STOP and rec.get("reason") not in (None, "end"):
                stopped.add(rid)
            elif rec.get("mark") == Mark.CLOSE and not (rec.get("by") == "client" and rec.get("code") in (1000, None)):
                for open_rid in started - set(endings) - stopped:
                    endings[open_rid] = f"socket closed ({esc(rec.get('code'))})"
                    played.setdefault(open_rid, (ms_of(rec["t_ns"]), None))
        elif rec.get("rec") == "recv" and rec.get("kind") == "response_done":
            response = (rec.get("event") or {}).get("response") or {}
            status = str(response.get("status"))
            if status != "completed":
                details = response.get("status_details") or {}
                reason = details.get("reason") or (details.get("error") or {}).get("code") or ""
                endings[str(response.get("id"))] = f"response {esc(status)} {esc(reason)}".strip()
    for rid, why in endings.items():
        if rid in started and rid not in stopped and rid in played:
            at, played_ms = played[rid]
            heard = f" after {_ms_text(played_ms)} ms" if played_ms is not None else ""
            lanes.cuts.append((at, f"audio cut: {why}{heard}"))


def _server_event(rec: dict[str, Any], at: float, lanes: Lanes, open_since: dict[str, float]) -> None:
    kind, event = rec.get("kind"), rec.get("event") or {}
    if kind == "speech_started":
        open_since["vad"] = at
        lanes.points.append(("server VAD", at, "circle", "#ff7f0e", f"speech_started audio_start_ms={esc(event.get('audio_start_ms'))}"))
    elif kind == "speech_stopped":
        start = open_since.pop("vad", at)
        lanes.bars.append(("server VAD", start, max(at - start, 1.0), "#fdb863", "server heard speech"))
        lanes.points.append(("server VAD", at, "circle-open", "#b35806", f"speech_stopped audio_end_ms={esc(event.get('audio_end_ms'))}"))
    elif kind == "committed":
        lanes.points.append(("server VAD", at, "diamond", "#542788", "committed"))
    elif kind == "response_created":
        open_since["resp:" + str((event.get("response") or {}).get("id"))] = at
    elif kind == "response_done":
        response = event.get("response") or {}
        status = str(response.get("status"))
        start = open_since.pop("resp:" + str(response.get("id")), at)
        details = response.get("status_details") or {}
        reason = details.get("reason") or (details.get("error") or {}).get("code") or ""
        lanes.bars.append(("responses", start, max(at - start, 1.0), STATUS_COLORS.get(status, "#7f7f7f"),
                           f"{esc(response.get('id'))}: {esc(status)} {esc(reason)}"))
    elif kind == "output_audio_delta":
        delta = event.get("delta") or {}
        lanes.points.append(("audio deltas", at, "line-ns-open", "#1f77b4", f"delta {_ms_text(delta.get('ms'))} ms of audio"))
    elif kind == "error":
        error = event.get("error") or {}
        lanes.points.append(("errors", at, "x", "#b3261e", f"error {esc(error.get('code'))}: {esc(error.get('message'))}"))


def _mark(rec: dict[str, Any], at: float, lanes: Lanes, open_since: dict[str, float]) -> None:
    name = rec.get("mark")
    if name == "turn_start":
        lanes.turns.append((int(rec.get("turn") or 0), at, None))
    elif name == "turn_end" and lanes.turns:
        turn, start, _ = lanes.turns[-1]
        lanes.turns[-1] = (turn, start, at)
    elif name == "playout_start":
        open_since["play:" + str(rec.get("response_id"))] = at
    elif name in ("playout_stop", "playout_end"):
        start = open_since.pop("play:" + str(rec.get("response_id")), at)
        reason = rec.get("reason") or "end"
        lanes.bars.append(("playout", start, max(at - start, 1.0), "#17becf",
                           f"played {_ms_text(rec.get('played_ms'))} ms, {esc(reason)}"))
        if name == "playout_stop" and reason != "end":
            lanes.cuts.append((at, f"audio cut ({esc(reason)}) after {_ms_text(rec.get('played_ms'))} ms"))
    elif name == "underrun":
        lanes.bars.append(("playout", at, float(rec.get("ms") or 0.0), "#d62728", f"underrun {_ms_text(rec.get('ms'))} ms"))
    elif name in CONTROL_MARKS:
        lanes.points.append(("client events", at, "triangle-down", "#d62728" if name == "cancel_sent" else "#5b5bd6",
                             esc(name)))
    elif name == "close" and rec.get("by") == "client" and rec.get("code") in (1000, None):
        lanes.points.append(("client events", at, "square", "#7f7f7f", f"closed by the client ({esc(rec.get('code'))})"))
    elif name in WARNING_MARKS:
        details = {k: v for k, v in rec.items() if k not in ("rec", "t_ns", "mark")}
        lanes.points.append(("errors", at, "triangle-up", "#ff7f0e", f"{esc(name)} {esc(details)}"))
    elif name in ERROR_MARKS:
        lanes.points.append(("errors", at, "x", "#b3261e", f"{esc(name)} {esc(rec.get('message') or rec.get('reason') or '')}"))


def _vline(at: float, line: dict[str, Any]) -> dict[str, Any]:
    return {"type": "line", "x0": at, "x1": at, "xref": "x", "y0": 0, "y1": 1, "yref": "paper", "line": line}


def timeline_figure(trace: Trace, turn: int | None = None, title: str | None = None) -> go.Figure:
    lanes = collect_lanes(trace)
    fig = go.Figure()
    by_colour: dict[tuple[str, str], list[tuple[str, float, float, str]]] = {}
    for lane, start, length, colour, hover in lanes.bars:
        by_colour.setdefault((lane, colour), []).append((lane, start, length, hover))
    for (_, colour), bars in by_colour.items():
        fig.add_trace(go.Bar(y=[b[0] for b in bars], base=[b[1] for b in bars], x=[b[2] for b in bars],
                             orientation="h", marker={"color": colour}, hovertext=[b[3] for b in bars],
                             hoverinfo="text", showlegend=False, width=0.6))
    by_style: dict[tuple[str, str], list[tuple[str, float, str]]] = {}
    for lane, at, symbol, colour, hover in lanes.points:
        by_style.setdefault((symbol, colour), []).append((lane, at, hover))
    for (symbol, colour), points in by_style.items():
        fig.add_trace(go.Scatter(y=[p[0] for p in points], x=[p[1] for p in points], mode="markers",
                                 marker={"symbol": symbol, "color": colour, "size": 10, "line": {"width": 2, "color": colour}},
                                 hovertext=[p[2] for p in points], hoverinfo="text", showlegend=False))
    # Shapes and annotations set in one go: plotly's add_vline re-validates the layout each call.
    shapes, notes = [], []
    for at, label in lanes.cuts:
        shapes.append(_vline(at, {"color": "#b3261e", "width": 2}))
        notes.append({"x": at, "y": 1.02, "yref": "paper", "text": label, "showarrow": False, "xanchor": "right",
                      "font": {"color": "#b3261e"}})
    for number, start, end in lanes.turns:
        shapes.append(_vline(start, {"color": "#888", "dash": "dot", "width": 1}))
        notes.append({"x": start, "y": -0.08, "yref": "paper", "text": f"turn {number}", "showarrow": False, "xanchor": "left"})
        if turn is not None and number == turn:
            fig.update_xaxes(range=[start - 300, (end or start + 10_000) + 300])
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(LANES)), range=[-0.5, len(LANES) - 0.5])
    fig.update_xaxes(title_text="ms since the session started")
    fig = styled(fig, title or f"session {trace.header.get('session_id')}", height=460)
    fig.update_layout(barmode="overlay", margin={"l": 110, "b": 60})
    return fig


def render_session_timeline(trace_path: str | Path, out_html: str | Path, turn: int | None = None,
                            plotlyjs: PlotlyJsMode = "auto") -> Path:
    """Write a timeline page for one session trace (zoomed on `turn` when given); inside a run directory
    it shares the run's plotly.min.js (`plotlyjs="auto"`), elsewhere it carries its own."""
    trace = read_trace(trace_path)
    header = trace.header
    page = Page(f"timeline {header.get('session_id')}")
    page.add(f"<h1>Session {esc(header.get('session_id'))}</h1>")
    facts = [("worker", header.get("worker")), ("scenario", header.get("scenario")), ("target", redact_url(str(header.get("target") or ""))),
             ("dialect", header.get("dialect")), ("format", header.get("format")), ("turn", turn),
             ("trace", Path(trace_path).name), ("complete", trace.complete)]
    page.add('<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in facts) + "</table>")
    page.figure(timeline_figure(trace, turn=turn))
    page.add(f'<p class="muted">{LEGEND}</p>')
    rows = event_rows(trace, turn=turn)
    page.heading("Events" + (f" of turn {turn}" if turn is not None else ""))
    page.add('<div class="scroll">' + table(["ms", "direction", "event", "details"], rows, numeric=[True]) + "</div>")
    return page.write(Path(out_html), plotlyjs=plotlyjs)
