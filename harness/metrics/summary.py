"""Summaries of turn records: exact percentiles, counts, groups, incident rates, conformance.

Percentiles are numpy's default (linear) over the finite values of a metric, never Locust's
bucketed ones; each metric's `ci` holds the seeded bootstrap interval of every percentile, or
None below its minimum count (`harness.metrics.uncertainty`). Every turn (timed out and failed included) stays in the turn counts and in the
denominators of incident and status rates; a metric's `timeouts` counts the timed-out turns of
the scenarios that measure it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Iterable

import numpy as np

from harness.metrics.incidents import CAUSES, UNHEARD_CAUSES
from harness.metrics.record import STATUSES, VAD_VERDICTS
from harness.metrics.uncertainty import describe, mean_interval, percentile_intervals
from harness.protocol.rules import SESSION_RULES

METRICS = ("ttfa_ms", "ttfa_from_commit_ms", "ttfa_audible_ms", "vad_stop_ms", "vad_commit_ms", "vad_end_error_ms",
           "response_done_ms", "cancel_ack_ms", "cancel_leak_ms", "barge_in_ms", "truncate_ack_ms",
           "tool_args_ms", "tool_roundtrip_ms", "underrun_count", "underrun_ms", "audio_ms", "leading_silence_ms",
           "send_lateness_p99_ms", "heard_ms", "discarded_ms", "endpointing_cost_ms", "network_rtt_ms")
GROUP_BY = ("scenario", "format", "dialect", "utterance")
PERCENTILES = (50, 90, 95, 99)


def _finite(values: Iterable[Any]) -> np.ndarray:
    out = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return np.asarray(out, dtype="float64")


def metric_stats(values: Iterable[Any]) -> dict[str, Any]:
    array = values[np.isfinite(values)] if isinstance(values, np.ndarray) else _finite(values)
    if array.size == 0:
        return {"count": 0, "p50": None, "p90": None, "p95": None, "p99": None, "max": None}
    points = np.percentile(array, PERCENTILES)
    return {"count": int(array.size), **{f"p{p}": float(v) for p, v in zip(PERCENTILES, points)},
            "max": float(array.max())}


def _metrics_block(records: list[dict[str, Any]]) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for metric in METRICS:
        values = _finite(r.get(metric) for r in records)
        stats = metric_stats(values)
        stats["ci"] = percentile_intervals(values, PERCENTILES)
        measuring = {r.get("scenario") for r in records if r.get(metric) is not None}
        stats["timeouts"] = sum(1 for r in records if r.get("status") == "timeout" and r.get(metric) is None
                                and (r.get("scenario") in measuring or metric in ("ttfa_ms", "response_done_ms")))
        block[metric] = stats
    return block


def incident_block(records: list[dict[str, Any]]) -> dict[str, Any]:
    total = len(records)
    counts = Counter(r["incident"] for r in records if r.get("incident"))
    by_cause = {cause: {"count": counts.get(cause, 0), "rate": (counts.get(cause, 0) / total) if total else 0.0}
                for cause in CAUSES}
    # ok turns whose answer the caller could not hear (no audio, silent, another format)
    unheard = sum(1 for r in records if r.get("status") == "ok" and r.get("incident") in UNHEARD_CAUSES)
    return {"total": sum(counts.values()), "rate": (sum(counts.values()) / total) if total else 0.0,
            "by_cause": by_cause, "unheard_ok_turns": unheard}


def vad_block(records: list[dict[str, Any]]) -> dict[str, Any]:
    """VAD verdicts over the server-VAD turns that ran to their end (a turn with a verdict: not a
    manual turn, not stopped by the run, not invalid_pacing): count and rate of each."""
    verdicts = Counter(r["vad_verdict"] for r in records if r.get("vad_verdict"))
    total = sum(verdicts.values())
    return {"turns": total, "by_verdict": {v: {"count": verdicts.get(v, 0),
                                                "rate": verdicts.get(v, 0) / total if total else None}
                                            for v in VAD_VERDICTS}}


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The `turns`, `metrics`, `by`, `vad`, `incidents` and `uncertainty` parts of summary.json."""
    status_counts = Counter(r.get("status") for r in records)
    turns = {"total": len(records), **{s: status_counts.get(s, 0) for s in STATUSES}}
    by: dict[str, Any] = {}
    for key in GROUP_BY:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            groups.setdefault(str(r.get(key)), []).append(r)
        by[key] = {name: _metrics_block(rows) for name, rows in sorted(groups.items())}
    return {"turns": turns, "metrics": _metrics_block(records), "by": by, "vad": vad_block(records),
            "incidents": incident_block(records), "probes": probe_block(records),
            "uncertainty": describe()}


def _cost_stats(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "mean": float(np.mean(values)) if values else None,
            "p50": float(np.percentile(values, 50)) if values else None, "ci95_mean": _listed(mean_interval(values))}


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def _share_by(records: list[dict[str, Any]], level: str, hit: Callable[[dict[str, Any]], bool],
              name: str) -> dict[str, Any]:
    """Per value of `level` (a pause length, an offset, an SNR): turns, hits and their share."""
    table: dict[str, dict[str, Any]] = {}
    for value in sorted({float(r[level]) for r in records if r.get(level) is not None}):
        rows = [r for r in records if r.get(level) is not None and float(r[level]) == value
                and r.get("status") == "ok"]
        hits = sum(1 for r in rows if hit(r))
        table[f"{value:g}"] = {"turns": len(rows), name: hits, "rate": hits / len(rows) if rows else None}
    return table


def probe_block(records: list[dict[str, Any]]) -> dict[str, Any]:
    """summary.json `probes`: endpointing cost overall and per utterance, the pause ladder's split
    share per pause, the backchannels' cancel share per offset (with a finding per cancel), the
    noise ladder's false barge-in rate per SNR; empty parts when no such turns ran."""
    costs = [r for r in records if r.get("endpointing_cost_ms") is not None]
    by_utterance: dict[str, list[float]] = {}
    for r in costs:
        by_utterance.setdefault(str(r.get("utterance")), []).append(float(r["endpointing_cost_ms"]))
    findings = [{"session_id": r.get("session_id"), "turn": r.get("turn"), "utterance": r.get("utterance"),
                 "backchannel_offset_ms": r.get("backchannel_offset_ms"), "response_id": r.get("response_id")}
                for r in records if r.get("backchannel_cancelled")]
    return {
        "endpointing": {"overall": _cost_stats([float(r["endpointing_cost_ms"]) for r in costs]),
                        "by_utterance": {u: _cost_stats(v) for u, v in sorted(by_utterance.items())}},
        "pause_ladder": _share_by(records, "pause_ms", lambda r: bool(r.get("pause_split")), "split"),
        "backchannel": {"by_offset_ms": _share_by(records, "backchannel_offset_ms",
                                                  lambda r: bool(r.get("backchannel_cancelled")), "cancelled"),
                        "findings": findings},
        "noise_ladder": _share_by(records, "snr_db", lambda r: r.get("incident") == "false_barge_in",
                                  "false_barge_in"),
    }


def conformance(violations: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Violations by rule: count, side, the first examples (from violation records)."""
    table: dict[str, dict[str, Any]] = {}
    for v in violations:
        row = table.setdefault(v.get("rule", "?"), {"count": 0, "side": v.get("side"), "examples": []})
        row["count"] += 1
        if len(row["examples"]) < 3:
            row["examples"].append(v.get("message"))
    return dict(sorted(table.items(), key=lambda kv: -kv[1]["count"]))


def target_findings(table: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """The rows of a conformance table that are findings about the target's behaviour as a voice
    agent (the session rules: config drift, an ignored update, VAD events on nothing, an error
    without its response.done, no server VAD commit): each fails the run's default gate."""
    return {rule: row for rule, row in (table or {}).items() if rule in SESSION_RULES and row.get("side") == "remote"}


def merged_conformance(per_session: Iterable[dict[str, dict[str, Any]] | None]) -> dict[str, dict[str, Any]]:
    """The run's conformance table from each session's own (rule -> count, side, examples)."""
    table: dict[str, dict[str, Any]] = {}
    for session in per_session:
        for rule, entry in (session or {}).items():
            row = table.setdefault(rule, {"count": 0, "side": entry.get("side"), "examples": [], "sessions": 0})
            row["count"] += int(entry.get("count") or 0)
            row["sessions"] += 1
            for example in entry.get("examples") or []:
                if len(row["examples"]) < 3 and example not in row["examples"]:
                    row["examples"].append(example)
    return dict(sorted(table.items(), key=lambda kv: -kv[1]["count"]))
