"""HTML assembly: an escaped page with plotly's JavaScript once: inlined, or (in a run directory)
one plotly.min.js shared by the report and every timeline, referenced relatively.

Everything that reaches the page as text goes through `esc` (transcripts, error messages, URLs,
cause names: all of it may come from the target), and figures are embedded with
`include_plotlyjs=False`, so a page with twenty figures carries one copy of plotly.js. Plotly
writes its figure JSON with `<` escaped as `\\u003c`, so data cannot close a script element.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

PLOTLY_JS_FILE = "plotly.min.js"
PlotlyJsMode = Literal["inline", "directory", "auto"]
RUN_DIR_MARKERS = ("summary.json", "run.json", "turns.parquet")


def run_dir_of(path: Path, levels: int = 3) -> Path | None:
    """The run directory `path` lies in (itself or up to `levels` folders up), if any."""
    folder = Path(path).resolve().parent
    for _ in range(levels):
        if any((folder / marker).is_file() for marker in RUN_DIR_MARKERS):
            return folder
        if folder.parent == folder:
            break
        folder = folder.parent
    return None

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.5rem;margin:8px 0 4px}h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
h3{font-size:1rem;margin:16px 0 6px}
table{border-collapse:collapse;font-size:.85rem;background:#fff;margin:6px 0}
th,td{border:1px solid #dde1e7;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#7a8291}.pass{color:#126b2f;font-weight:600}.fail{color:#b3261e;font-weight:600}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.banner.bad{background:#fde8e6;border:1px solid #f3b3ad;color:#8c1d15}
.banner.good{background:#e6f4ea;border:1px solid #a8d5b5;color:#0f5223}
.banner.warn{background:#fff4d6;border:1px solid #f0d27a;color:#6b4e00}
.kv td:first-child{font-weight:600;background:#f3f5f8}
.fig{background:#fff;border:1px solid #e3e6eb;border-radius:6px;margin:8px 0;padding:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:10px}.grid>div{min-width:0}
.scroll{max-height:520px;overflow:auto}
nav a{margin-right:12px;font-size:.9rem}
.ci{color:#7a8291;font-size:.75rem}
"""
# Printing (or "save as PDF"): no navigation, no scroll boxes, no figure or table split across pages.
PRINT_STYLE = """
@media print{body{background:#fff;font-size:10pt}main{max-width:none;padding:0}nav{display:none}
.scroll{max-height:none;overflow:visible}.fig,table,.banner{break-inside:avoid;page-break-inside:avoid}
.grid{display:block}h2{break-after:avoid;page-break-after:avoid}a{color:inherit;text-decoration:underline}
.banner{border-width:2px}.modebar{display:none!important}}
"""

# A small template: plotly's default one adds ~10 kB of JSON to every figure.
_TEMPLATE = go.layout.Template(layout=go.Layout(
    font={"family": "system-ui, sans-serif", "size": 12}, paper_bgcolor="white", plot_bgcolor="#fbfbfd",
    margin={"l": 60, "r": 20, "t": 40, "b": 45}, hovermode="closest",
    xaxis={"gridcolor": "#e6e8ec", "zeroline": False}, yaxis={"gridcolor": "#e6e8ec", "zeroline": False},
    colorway=["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"],
))


def esc(value: Any) -> str:
    """Text for HTML (and for plotly hover text, which plotly parses as a small HTML subset)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def fmt_num(value: Any, digits: int = 1) -> str:
    if value is None or value is pd.NA:
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if math.isnan(number):
        return "—"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:,.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None,
          raw_html_columns: Sequence[int] = ()) -> str:
    """An HTML table; every cell escaped except the columns named in `raw_html_columns` (our own links)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            is_num = bool(numeric and index < len(numeric) and numeric[index])
            text = cell if index in raw_html_columns else (fmt_num(cell) if is_num else esc(cell))
            cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def styled(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(template=_TEMPLATE, title={"text": esc(title), "x": 0.01}, height=height)
    return fig


class Page:
    """Sections of HTML plus figures; `render()` returns the finished document."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.figure_count = 0

    def add(self, html_text: str) -> None:
        self.parts.append(html_text)

    def heading(self, text: str, anchor: str | None = None) -> None:
        anchor_attr = f' id="{esc(anchor)}"' if anchor else ""
        self.parts.append(f"<h2{anchor_attr}>{esc(text)}</h2>")

    def figure(self, fig: go.Figure) -> None:
        self.parts.append(self.figure_html(fig))

    def figure_html(self, fig: go.Figure) -> str:
        self.figure_count += 1
        body = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False,
                           config={"displaylogo": False, "responsive": True})
        return f'<div class="fig">{body}</div>'

    def render(self, plotlyjs: PlotlyJsMode = "inline", js_src: str = PLOTLY_JS_FILE) -> str:
        if self.figure_count == 0:
            script = ""
        elif plotlyjs == "inline":
            script = f'<script type="text/javascript">{get_plotlyjs()}</script>'
        else:
            script = f'<script src="{esc(js_src)}"></script>'
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{STYLE}{PRINT_STYLE}</style>{script}</head>"
            f"<body><main>{''.join(self.parts)}</main></body></html>\n"
        )

    def write(self, path: Path, plotlyjs: PlotlyJsMode = "inline", js_dir: Path | None = None) -> Path:
        """Write the page. "directory": plotly.min.js is written once into `js_dir` (default: beside the
        page) and referenced relatively; "auto": into the run directory the page lies in (the report,
        timelines/, incidents/<bundle>/ share one copy), inlined when the page is in none."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if plotlyjs == "auto":
            js_dir = run_dir_of(path)
            plotlyjs = "directory" if js_dir is not None else "inline"
        js_src = PLOTLY_JS_FILE
        if plotlyjs == "directory" and self.figure_count:
            folder = Path(js_dir) if js_dir is not None else path.parent
            js_path = folder / PLOTLY_JS_FILE
            if not js_path.is_file():
                js_path.write_text(get_plotlyjs(), encoding="utf-8")
            js_src = Path(os.path.relpath(js_path.resolve(), path.parent.resolve())).as_posix()
        path.write_text(self.render(plotlyjs, js_src), encoding="utf-8")
        return path
