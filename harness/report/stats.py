"""Numbers the report and the comparison show, computed from the turn table.

Percentiles are exact over the turn records (numpy `percentile`, default linear method), the
same definition `summary.json` uses (docs/contracts.md section 10); figures get reduced views
(quantile grids, time bins, capped samples) so that a 100,000-turn run stays a small page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.metrics import metric_stats as summary_metric_stats
from harness.report.turn_table import METRIC_COLUMNS

STAT_NAMES = ("p50", "p90", "p95", "p99", "max")
EXPECTED_IN_EVERY_TURN = ("ttfa_ms", "response_done_ms")


def metric_stats(values: Any) -> dict[str, float | int | None]:
    """count, p50/p90/p95/p99 and max of the finite values (None when there are none).

    harness.metrics' own function, so the report and summary.json cannot disagree; the finite
    values are picked out with numpy first because it walks its input in Python.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="object")
    array = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return summary_metric_stats(array[np.isfinite(array)].tolist())


def timeouts_for(turns: pd.DataFrame, metric: str, timed_out: pd.Series | None = None) -> int:
    """Timed-out turns without a value, in the scenarios that measure this metric at all.

    A plain turn that times out never had a cancellation to time, so it counts against
    `ttfa_ms` but not against `cancel_ack_ms`. Every timed-out turn counts against the latencies
    every answer has (`ttfa_ms`, `response_done_ms`). The same rule as `harness.metrics.summarize`.
    """
    if timed_out is None:
        timed_out = (turns["status"] == "timeout").fillna(False)
    missing = timed_out & turns[metric].isna()
    if metric in EXPECTED_IN_EVERY_TURN:
        return int(missing.sum())
    scenarios = turns.loc[turns[metric].notna(), "scenario"].dropna().unique()
    return int((missing & turns["scenario"].isin(scenarios).fillna(False)).sum())


def percentile_table(turns: pd.DataFrame, metrics: tuple[str, ...] = METRIC_COLUMNS) -> pd.DataFrame:
    """One row per metric: count, p50, p90, p95, p99, max, timeouts."""
    timed_out = (turns["status"] == "timeout").fillna(False)
    rows = []
    for metric in metrics:
        stats = metric_stats(turns[metric]) if metric in turns else metric_stats([])
        stats["timeouts"] = timeouts_for(turns, metric, timed_out) if metric in turns else 0
        rows.append({"metric": metric, **stats})
    return pd.DataFrame.from_records(rows).set_index("metric")


def status_counts(turns: pd.DataFrame) -> dict[str, int]:
    counts = turns["status"].value_counts(dropna=True)
    out = {"total": int(len(turns))}
    out.update({str(k): int(v) for k, v in counts.items()})
    return out


def incident_counts(turns: pd.DataFrame) -> pd.DataFrame:
    """count and rate (per turn, every turn in the denominator) of each incident cause."""
    causes = turns["incident"].dropna()
    counts = causes.value_counts()
    total = max(len(turns), 1)
    frame = pd.DataFrame({"count": counts.astype(int), "rate": counts / total})
    frame.index.name = "cause"
    return frame.sort_values("count", ascending=False)


def cdf_points(values: Any, max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(x, fraction <= x) for an empirical CDF, on at most `max_points` quantiles."""
    array = np.sort(np.asarray(values, dtype="float64"))
    array = array[np.isfinite(array)]
    if array.size <= max_points:
        return array, np.arange(1, array.size + 1) / max(array.size, 1)
    fractions = np.linspace(0.0, 1.0, max_points)
    return np.quantile(array, fractions), fractions


def time_bins(t_s: pd.Series, values: pd.Series, bins: int = 120) -> pd.DataFrame:
    """p50/p95 and count of `values` per time bin (bin centres in seconds since the first turn)."""
    frame = pd.DataFrame({"t": t_s.astype("float64"), "v": values.astype("float64")}).dropna()
    if frame.empty:
        return pd.DataFrame(columns=["t", "p50", "p95", "count"])
    span = max(frame["t"].max() - frame["t"].min(), 1e-9)
    width = span / bins
    frame["bin"] = np.floor((frame["t"] - frame["t"].min()) / width).clip(upper=bins - 1)
    grouped = frame.groupby("bin")["v"]
    out = pd.DataFrame({
        "p50": grouped.quantile(0.5), "p95": grouped.quantile(0.95), "count": grouped.size(),
    })
    out["t"] = frame["t"].min() + (out.index.to_numpy() + 0.5) * width
    return out.reset_index(drop=True)


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    """At most `max_rows` rows, drawn uniformly and reproducibly (scatter plots of big runs)."""
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()
