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
MIN_TURNS_PER_BIN = 20   # a time bin's percentiles come from at least this many turns
MAX_TIME_BINS = 60
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
    """Corners of the empirical CDF, (x, fraction of values <= x), to be drawn as steps ("hv").

    Every point is exact: y is the share of all values at or below x. A big sample keeps at most
    `max_points` corners, evenly spaced in rank, the smallest and largest values included.
    """
    array = np.sort(np.asarray(values, dtype="float64"))
    array = array[np.isfinite(array)]
    if array.size == 0:
        return array, array
    if array.size <= max_points:
        x = np.unique(array)
    else:
        x = np.unique(array[np.unique(np.round(np.linspace(0, array.size - 1, max_points)).astype(np.int64))])
    return x, np.searchsorted(array, x, side="right") / array.size


def adaptive_bins(t_s: Any, min_count: int = MIN_TURNS_PER_BIN, max_bins: int = MAX_TIME_BINS) -> np.ndarray:
    """Bin edges over the times `t_s` such that every bin holds at least `min_count` of them.

    As many bins as the turns allow (n // min_count, at most `max_bins`), each holding the same
    number of turns give or take one (edges at rank quantiles, so a busy minute gets narrow bins
    and a quiet one wide bins); fewer than `min_count` turns make one bin. Edges ascend from the
    first to the last time; a value belongs to [edge i, edge i+1), the last bin is closed.
    """
    times = np.sort(np.asarray(t_s, dtype="float64"))
    times = times[np.isfinite(times)]
    if times.size == 0:
        return times
    count = max(1, min(max_bins, times.size // max(min_count, 1)))
    ranks = np.linspace(0, times.size, count + 1).round().astype(np.int64)
    edges = [times[0]]
    for rank in ranks[1:-1]:
        edge = times[rank]
        if edge > edges[-1] and np.searchsorted(times, edge, side="left") - np.searchsorted(times, edges[-1], "left") >= min_count \
                and times.size - np.searchsorted(times, edge, side="left") >= min_count:
            edges.append(edge)
    edges.append(times[-1])
    return np.asarray(edges, dtype="float64")


def bin_index(t_s: Any, edges: np.ndarray) -> np.ndarray:
    """Which bin of `edges` each time falls in (the last bin closed), -1 outside."""
    times = np.asarray(t_s, dtype="float64")
    index = np.searchsorted(edges, times, side="right") - 1
    index[times == edges[-1]] = len(edges) - 2
    index[(times < edges[0]) | (times > edges[-1]) | ~np.isfinite(times)] = -1
    return index


def time_bins(t_s: pd.Series, values: pd.Series, min_count: int = MIN_TURNS_PER_BIN,
              max_bins: int = MAX_TIME_BINS) -> pd.DataFrame:
    """p50/p95/p99, count, start and end of `values` per adaptive time bin (>= min_count values each)."""
    frame = pd.DataFrame({"t": pd.to_numeric(t_s, errors="coerce").astype("float64"),
                          "v": pd.to_numeric(values, errors="coerce").astype("float64")}).dropna()
    columns = ["t", "start", "end", "p50", "p95", "p99", "count"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    edges = adaptive_bins(frame["t"], min_count, max_bins)
    frame["bin"] = bin_index(frame["t"].to_numpy(), edges)
    grouped = frame.groupby("bin")["v"]
    out = pd.DataFrame({"p50": grouped.quantile(0.5), "p95": grouped.quantile(0.95), "p99": grouped.quantile(0.99),
                        "count": grouped.size()})
    index = out.index.to_numpy()
    out["start"], out["end"] = edges[index], edges[index + 1]
    out["t"] = (out["start"] + out["end"]) / 2
    return out.reset_index(drop=True)[columns]


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    """At most `max_rows` rows, drawn uniformly and reproducibly (scatter plots of big runs)."""
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()
