"""Locust's LoadTestShape for a `--shape` plan (the only part of the shapes that imports Locust)."""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

from harness.load.shapes import ShapePlan


def locust_shape(plan: ShapePlan, runner: Any) -> Any:
    """Locust's LoadTestShape following `plan`, bound to `runner`."""
    class HarnessShape(LoadTestShape):
        use_common_options = True   # the web UI keeps its users / spawn rate / run time fields

        def tick(self) -> tuple[int, float] | None:
            return plan.tick(self.get_run_time(), self.get_current_user_count())

        def target_users(self) -> int:
            return plan.users_at(self.get_run_time())

    shape = HarnessShape()
    shape.runner = runner
    return shape
