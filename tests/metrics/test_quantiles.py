"""The live path's percentile equals numpy's default (linear) percentile."""

from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from harness.metrics import quantiles


@given(st.lists(st.integers(min_value=-10**9, max_value=10**9), min_size=1, max_size=400),
       st.floats(min_value=0, max_value=100))
def test_linear_percentile_equals_numpy_s_default_method(values: list[int], q: float) -> None:
    ordered = sorted(values)
    expected = float(np.percentile(np.asarray(ordered, dtype="float64"), q))
    assert abs(quantiles.linear(ordered, q) - expected) <= 1e-6 * max(1.0, abs(expected))


def test_a_single_value_is_every_percentile() -> None:
    assert quantiles.linear([7], 0) == quantiles.linear([7], 99) == 7.0
