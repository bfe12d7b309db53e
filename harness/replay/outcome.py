"""What one replay did, in one line: the incident came back, or what happened instead.

A replay that does not reproduce must say why: the target refused the session (with its own
error message and close code), every turn timed out, the session was closed mid-way, the turn
never ran, another cause happened, or the turns simply went well. Everything here is read from
the replay's trace (its marks and received `error` events) and its turn records.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.trace import Trace
from harness.trace.vocabulary import Mark

MESSAGE_CHARS = 200   # a target's error message is quoted up to this many characters


def _quote(text: Any) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "...")


def server_story(trace: Trace) -> dict[str, Any]:
    """What the target said about the session: its `error` events, the close, the caller's error
    marks, and whether the session ever connected and started streaming."""
    errors, marks = [], []
    close: dict[str, Any] | None = None
    connect_failed: str | None = None
    streamed = connected = False
    for record in trace.records:
        rec, mark = record.get("rec"), record.get("mark")
        if rec == "recv" and record.get("type") == "error":
            error = (record.get("event") or {}).get("error") or {}
            if isinstance(error, dict):
                errors.append({"code": error.get("code"), "message": error.get("message"), "type": error.get("type")})
        elif mark == Mark.CONNECTED:
            connected = True
        elif mark == Mark.STREAM_START:
            streamed = True
        elif mark == Mark.CONNECT_FAILED:
            connect_failed = str(record.get("error") or "connection failed")
        elif mark == Mark.ERROR:
            marks.append(str(record.get("message") or ""))
        elif mark == Mark.CLOSE and close is None:
            close = {"code": record.get("code"), "reason": record.get("reason") or "", "by": record.get("by")}
    return {"connected": connected, "streamed": streamed, "connect_failed": connect_failed,
            "server_errors": errors, "error_marks": marks, "close": close}


def _said(story: dict[str, Any]) -> str:
    """The target's own words: its error events and the close, e.g.
    `error beta_api_shape_disabled 'The beta ... interface.'; closed 4000 (beta_api_shape_disabled)`."""
    parts = [f"error {e.get('code') or e.get('type') or '?'} {_quote(e.get('message') or '')}"
             for e in story["server_errors"][:3]]
    close = story["close"]
    if close is not None and (close.get("by") == "server" or close.get("code") not in (None, 1000)):
        reason = f" ({close['reason']})" if close.get("reason") else ""
        parts.append(f"closed {close.get('code')}{reason}" + (" by the server" if close.get("by") == "server" else ""))
    return "; ".join(parts)


def _statuses(rows: list[dict[str, Any]]) -> str:
    counts = Counter(str(r.get("status")) for r in rows)
    return ", ".join(f"{n} {status}" for status, n in counts.most_common()) or "no turns"


def _cut(row: dict[str, Any] | None) -> float | None:
    return ((row or {}).get("incident_evidence") or {}).get("cut_ms")


def explain(trace: Trace, rows: list[dict[str, Any]], wanted: dict[str, Any],
            turn_timeout_s: float | None = None) -> dict[str, Any]:
    """One replay's outcome against the bundle's incident `wanted` (its `turn` and `incident`):
    `reproduced`, the turn's `incident`/`status`/`ttfa_ms`/`cut_ms`, the `statuses` of every
    turn, what the server said, and `why`: one line, never a bare None."""
    turn, cause = wanted.get("turn"), wanted.get("incident")
    row = next((r for r in rows if r.get("turn") == turn), None)
    story = server_story(trace)
    said = _said(story)
    timeouts = [r for r in rows if r.get("status") == "timeout"]
    incident = (row or {}).get("incident")
    reproduced = row is not None and cause is not None and incident == cause
    if reproduced:
        why = f"{cause} recurred in turn {turn}"
    elif story["connect_failed"] is not None and story["connected"]:
        # connected, then refused in the target's own words (an error or a close before the session started)
        why = f"the target refused the session before any audio was sent: {story['connect_failed']}"
    elif story["connect_failed"] is not None:
        why = f"could not connect: {story['connect_failed']}"
    elif not story["streamed"]:
        detail = said or "; ".join(m for m in story["error_marks"] if m) or "no reason given"
        why = f"the target refused the session before any audio was sent: {detail}"
    elif rows and len(timeouts) == len(rows):
        waits = sorted({str(m.get("waiting_for")) for m in trace.records
                        if m.get("mark") == Mark.TIMEOUT and m.get("waiting_for")})
        limit = f"the {turn_timeout_s:g} s turn timeout" if turn_timeout_s else "the turn timeout"
        why = (f"every turn timed out ({len(rows)} of {len(rows)} had no answer within {limit} after the "
               "utterance was sent" + (f"; waiting for {', '.join(waits)}" if waits else "") + ")")
    elif rows and not any(r.get("response_id") for r in rows):
        why = (f"no turn was answered ({len(rows)} of {len(rows)} got no response before the session ended; "
               f"turns: {_statuses(rows)})")
    elif row is None:
        why = f"turn {turn} never ran (the session ended after {len(rows)} turn(s): {_statuses(rows)})"
    elif incident:
        why = f"a different cause: {incident} in turn {turn} (turn {row.get('status')})"
    elif row.get("status") == "timeout":
        why = f"turn {turn} timed out (turns: {_statuses(rows)})"
    elif row.get("status") != "ok":
        why = f"turn {turn} ended {row.get('status')}, with no incident (turns: {_statuses(rows)})"
    elif not row.get("response_id"):
        why = f"turn {turn} got no response (turns: {_statuses(rows)})"
    elif row.get("response_status") == "completed" and row.get("ttfa_ms") is not None:
        why = f"no incident: turn {turn} played out (ttfa {row['ttfa_ms']:.1f} ms); turns: {_statuses(rows)}"
    else:
        reason = f" ({row['response_reason']})" if row.get("response_reason") else ""
        status = row.get("response_status") or "unfinished"
        why = (f"no incident: turn {turn}'s response ended {status}{reason} after {row.get('audio_ms') or 0:.0f} ms "
               f"of audio; turns: {_statuses(rows)}")
    if said and not reproduced and said not in why:
        why += f"; the target said: {said}"
    return {"reproduced": reproduced, "incident": incident, "status": (row or {}).get("status"),
            "ttfa_ms": (row or {}).get("ttfa_ms"), "cut_ms": _cut(row), "statuses": dict(Counter(
                str(r.get("status")) for r in rows)), "why": why, **story}
