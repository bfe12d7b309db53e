"""Confidence intervals for percentiles: a seeded percentile bootstrap, cheap at any sample size.

Method (the README's *Uncertainty*): the percentile bootstrap. B = 2000 resamples of the n
values, drawn with replacement; each resample's q-th percentile (numpy's linear definition, the
one `summary.json` uses); the interval is the (1 - level) / 2 and (1 + level) / 2 quantiles of
those B replicates. The generator is seeded (SEED), so the same values always give the same
interval.

A resample's percentile only depends on two of its order statistics (ranks floor(h) and
floor(h) + 1, h = (n - 1) q / 100), so they are drawn directly instead of drawing n values B
times: the k-th smallest of n uniform draws is Beta(k, n + 1 - k), the next one lies above it
as the smallest of the n - k others (U + (1 - U) Beta(1, n - k)), and a uniform U picks the
sorted sample's value at floor(n U). That is exactly the distribution of resampling with
replacement (tests/metrics/test_uncertainty.py holds it to a brute-force bootstrap), at a cost of
2 B draws per percentile whatever n is, so every percentile of a 100,000-turn run gets its
interval after the run in well under a second. Never called in the load process's hot path.

Below a minimum count (MIN_COUNT: 10 values for p50, 30 for p90, p95 and p99) no interval is
given: the percentile is "n too small".
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20_17_18
MIN_COUNT: dict[float, int] = {50: 10, 90: 30, 95: 30, 99: 30}
METHOD = f"percentile bootstrap, {RESAMPLES} resamples, seed {SEED}"
TOO_FEW = "n too small"


def min_count(q: float) -> int:
    """The fewest values for which the q-th percentile gets an interval (30 above the median)."""
    return MIN_COUNT.get(q, 10 if q <= 50 else 30)


def _finite_sorted(values: Iterable[Any]) -> np.ndarray:
    if isinstance(values, np.ndarray):
        array = values.astype("float64", copy=False)
    else:
        array = np.asarray([float(v) for v in values if v is not None], dtype="float64")
    return np.sort(array[np.isfinite(array)])


def bootstrap_replicates(sorted_values: np.ndarray, q: float, resamples: int = RESAMPLES,
                         seed: int = SEED) -> np.ndarray:
    """`resamples` bootstrap replicates of the q-th percentile of an ascending, non-empty sample."""
    n = int(sorted_values.size)
    if n == 1:
        return np.full(resamples, float(sorted_values[0]))
    rng = np.random.default_rng(seed)
    h = (n - 1) * q / 100.0
    low = min(int(math.floor(h)), n - 1)
    frac = h - low
    k = low + 1                                   # 1-based rank of the lower order statistic
    u_low = rng.beta(k, n + 1 - k, resamples)
    v_low = sorted_values[np.minimum((u_low * n).astype(np.int64), n - 1)]
    if k >= n or frac == 0.0:
        return v_low.astype("float64")
    u_high = u_low + (1.0 - u_low) * rng.beta(1, n - k, resamples)
    v_high = sorted_values[np.minimum((u_high * n).astype(np.int64), n - 1)]
    return v_low + frac * (v_high - v_low)


def percentile_interval(values: Iterable[Any], q: float, level: float = LEVEL, resamples: int = RESAMPLES,
                        seed: int = SEED, minimum: int | None = None) -> tuple[float, float] | None:
    """(low, high) of the `level` interval of the q-th percentile; None when n is too small."""
    return _interval_of_sorted(_finite_sorted(values), q, level, resamples, seed,
                               min_count(q) if minimum is None else minimum)


def _interval_of_sorted(array: np.ndarray, q: float, level: float, resamples: int, seed: int,
                        minimum: int) -> tuple[float, float] | None:
    if array.size == 0 or array.size < minimum:
        return None
    replicates = bootstrap_replicates(array, q, resamples, seed)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return float(low), float(high)


def percentile_intervals(values: Iterable[Any], percentiles: Sequence[float] = (50, 90, 95, 99),
                         level: float = LEVEL) -> dict[str, Any]:
    """The `ci` block of a metric in summary.json: per percentile [low, high], or None (no values, or
    below its minimum count: `withheld` says so with n). Level and method are in `describe()`."""
    array = _finite_sorted(values)
    block: dict[str, Any] = {}
    withheld = {}
    for q in percentiles:
        name = f"p{q:g}"
        interval = _interval_of_sorted(array, q, level, RESAMPLES, SEED, min_count(q))
        block[name] = None if interval is None else [interval[0], interval[1]]
        if interval is None and array.size:
            withheld[name] = f"{TOO_FEW} (n={array.size} < {min_count(q)})"
    if withheld:
        block["withheld"] = withheld
    return block


def mean_interval(values: Iterable[Any], level: float = LEVEL, resamples: int = RESAMPLES,
                  seed: int = SEED) -> tuple[float, float] | None:
    """(low, high) of the `level` percentile-bootstrap interval of the mean; None below 2 values.
    Resampled in blocks, so memory stays bounded for any n."""
    array = _finite_sorted(values)
    if array.size < 2:
        return None
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, 2_000_000 // array.size))
    means = np.concatenate([rng.choice(array, size=(min(block, resamples - start), array.size)).mean(axis=1)
                            for start in range(0, resamples, block)])
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def describe(level: float = LEVEL) -> dict[str, Any]:
    """summary.json's `uncertainty`: how every `ci` block was computed."""
    return {"level": level, "method": METHOD, "resamples": RESAMPLES, "seed": SEED,
            "min_count": {f"p{q:g}": n for q, n in MIN_COUNT.items()}}


def separated(a: Sequence[float] | None, b: Sequence[float] | None) -> int:
    """+1 when interval b lies wholly above a, -1 wholly below, 0 when they overlap or one is missing."""
    if a is None or b is None:
        return 0
    if b[0] > a[1]:
        return 1
    if b[1] < a[0]:
        return -1
    return 0
