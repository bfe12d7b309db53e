"""The event log beside a session timeline: every record except the appends, as table rows.

Rows are (ms since the session start, direction, event, details); details are compact JSON of
the event's fields, truncated, and escaped by the table that shows them.
"""

from __future__ import annotations

import json
from typing import Any

from harness.trace import Trace
from harness.trace.vocabulary import Mark

MAX_ROWS = 3000
DETAIL_CHARS = 240
_DIRECTIONS = {"send": "client →", "recv": "← server", "mark": "caller", "violation": "violation"}


def _details(rec: dict[str, Any]) -> str:
    if rec.get("rec") in ("send", "recv"):
        body = {k: v for k, v in (rec.get("event") or {}).items() if k not in ("type", "event_id")}
    else:
        body = {k: v for k, v in rec.items() if k not in ("rec", "t_ns", "mark")}
    text = json.dumps(body, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _turn_window(records: list[dict[str, Any]], turn: int) -> tuple[int, int] | None:
    start = end = None
    for rec in records:
        if rec.get("rec") == "mark" and rec.get("turn") == turn:
            if rec.get("mark") == Mark.TURN_START:
                start = rec["t_ns"]
            elif rec.get("mark") == Mark.TURN_END:
                end = rec["t_ns"]
    if start is None:
        return None
    return start, end if end is not None else 2**63


def event_rows(trace: Trace, turn: int | None = None) -> list[tuple[float, str, str, str]]:
    """Table rows for the non-append records of the session (or of one turn), in time order."""
    records = sorted(trace.records, key=lambda r: r.get("t_ns") or 0)
    if not records:
        return []
    t0 = records[0].get("t_ns") or 0
    window = _turn_window(records, turn) if turn is not None else None
    rows: list[tuple[float, str, str, str]] = []
    for rec in records:
        kind = rec.get("rec")
        if kind == "append":
            continue
        t_ns = rec.get("t_ns") or t0
        if window is not None and not window[0] <= t_ns <= window[1]:
            continue
        name = rec.get("type") or rec.get("mark") or rec.get("rule") or kind
        rows.append((round((t_ns - t0) / 1e6, 1), _DIRECTIONS.get(str(kind), str(kind)), str(name), _details(rec)))
        if len(rows) >= MAX_ROWS:
            rows.append((rows[-1][0], "", f"... more records in {trace.path.name}", ""))
            break
    return rows
