"""Percentiles without numpy, for the live path: a turn's record is built in the load process while
every caller of it waits, and numpy's percentile costs ~100 us a call (~10 ms the first time).

`linear(values, q)` is numpy's default method ("linear": the value at rank (n - 1) * q / 100,
interpolated between its neighbours), so offline summaries and live records agree.
"""

from __future__ import annotations

import math
from typing import Sequence


def linear(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of an ascending, non-empty sequence."""
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    a, b = float(sorted_values[low]), float(sorted_values[high])
    return a + (b - a) * (rank - low)
