"""Latency against concurrency: each turn's real user count (Locust's history), percentiles per
concurrency level, and the concurrency at which each SLO first fails.

Levels are the distinct user counts the turns started at, ascending; neighbouring levels are
merged until each group holds enough turns (MIN_TURNS_PER_BIN, and for a percentile SLO the
percentile's own minimum count), so no point rests on a handful of turns. An SLO is evaluated in
each group as on the whole run (a percentile of the exact values, or its bound for `@NN%`; a rate
over the group's turns); the run-level gates (pacing, simulator lateness) have no per-turn value.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness.metrics.uncertainty import min_count, percentile_interval
from harness.report.stats import MIN_TURNS_PER_BIN

OPERATORS: dict[str, Callable[[float, float], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                        ">=": operator.ge}


MAX_GROUPS = 60


def level_groups(users: pd.Series, minimum: int = MIN_TURNS_PER_BIN) -> list[tuple[float, float, pd.Index]]:
    """[(lowest users, highest users, row labels)] over ascending user counts, each group >= minimum rows
    (and at most MAX_GROUPS groups; a short last group joins the one before it)."""
    known = users.dropna()
    minimum = max(minimum, -(-len(known) // MAX_GROUPS))
    groups: list[tuple[float, float, list[Any]]] = []
    current: list[Any] = []
    low = 0.0
    for level, rows in known.groupby(known, sort=True).groups.items():
        low = float(level) if not current else low
        current.extend(rows)
        if len(current) >= minimum:
            groups.append((float(low), float(level), current))
            current = []
    if current:
        if groups:
            first, _, rows = groups.pop()
            groups.append((first, float(known.max()), rows + current))
        else:
            groups.append((float(known.min()), float(known.max()), current))
    return [(a, b, pd.Index(rows)) for a, b, rows in groups]


def label(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def by_concurrency(turns: pd.DataFrame, users: pd.Series, metric: str,
                   minimum: int = MIN_TURNS_PER_BIN) -> pd.DataFrame:
    """users_low, users_high, count, p50, p95, p99 of `metric` per concurrency group of the turns measuring it."""
    measured = turns[metric].notna() & users.notna()
    rows = []
    for low, high, index in level_groups(users[measured], minimum):
        values = turns.loc[index, metric].to_numpy(dtype="float64")
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        rows.append({"users_low": low, "users_high": high, "count": int(values.size), "p50": p50, "p95": p95, "p99": p99})
    return pd.DataFrame(rows, columns=["users_low", "users_high", "count", "p50", "p95", "p99"])


def _group_value(slo: dict[str, Any], group: pd.DataFrame) -> float | None:
    metric, stat = str(slo.get("metric")), slo.get("stat")
    total = len(group)
    if metric in ("timeout_rate", "error_rate"):
        return float((group["status"] == metric.split("_")[0]).sum() / total) if total else None
    if metric == "incident_rate":
        incidents = group["incident"].notna() if stat == "any" else (group["incident"] == stat)
        return float(incidents.sum() / total) if total else None
    if metric.startswith("vad_") and metric.endswith("_rate"):
        verdicts = group["vad_verdict"].dropna()
        return float((verdicts == metric[4:-5]).sum() / len(verdicts)) if len(verdicts) else None
    if metric not in group:
        return None
    values = group[metric].dropna().to_numpy(dtype="float64")
    if values.size == 0:
        return None
    if stat == "max":
        return float(values.max())
    if stat == "count":
        return float(values.size)
    q = float(str(stat)[1:])
    if slo.get("level_pct") is not None:
        interval = percentile_interval(values, q, level=float(slo["level_pct"]) / 100)
        return None if interval is None else interval[1 if slo.get("op") in ("<", "<=") else 0]
    return float(np.percentile(values, q))


def per_turn(slo: dict[str, Any], turns: pd.DataFrame) -> bool:
    metric = str(slo.get("metric"))
    return metric in turns or metric in ("timeout_rate", "error_rate", "incident_rate") or (
        metric.startswith("vad_") and metric.endswith("_rate"))


def slo_first_failure(slo: dict[str, Any], turns: pd.DataFrame, users: pd.Series) -> dict[str, Any]:
    """{expr, verdict text, first_fail ("14-15" users or None), value there, levels checked}."""
    expr = str(slo.get("expr"))
    if not per_turn(slo, turns) or slo.get("op") not in OPERATORS:
        return {"expr": expr, "first_fail": None, "text": "a run-level gate: no per-turn value to split by concurrency"}
    stat = str(slo.get("stat") or "")
    minimum = max(MIN_TURNS_PER_BIN, min_count(float(stat[1:]))) if stat[:1] == "p" and stat[1:].isdigit() \
        else MIN_TURNS_PER_BIN
    rows = turns[users.notna()]
    if str(slo.get("metric")) in turns:
        rows = rows[rows[str(slo.get("metric"))].notna()]
    groups = level_groups(users[rows.index], minimum)
    if not groups:
        return {"expr": expr, "first_fail": None, "text": "no turn with a known user count measured it"}
    check = OPERATORS[str(slo["op"])]
    for low, high, index in groups:
        value = _group_value(slo, turns.loc[index])
        if value is not None and not check(value, float(slo["threshold"])):
            return {"expr": expr, "first_fail": label(low, high), "value": value, "count": len(index),
                    "text": f"first fails at {label(low, high)} users ({value:.4g} over {len(index)} turns)"}
    top = label(groups[-1][0], groups[-1][1])
    return {"expr": expr, "first_fail": None,
            "text": f"holds at every concurrency reached ({len(groups)} levels, up to {top} users)"}
