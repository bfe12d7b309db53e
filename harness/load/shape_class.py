"""Locust's LoadTestShape for a `--shape` plan (the only part of the shapes that imports Locust)."""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

from harness.load.shapes import ShapePlan


def locust_shape(plan: ShapePlan, environment: Any) -> Any:
    """Locust's LoadTestShape following `plan`, bound to the environment's runner, ending at the
    test's run time (-t, or the web UI's field, read at each tick): a headless Locust with a shape
    waits for the shape to end before it ever looks at -t."""
    class HarnessShape(LoadTestShape):
        use_common_options = True   # the web UI keeps its users / spawn rate / run time fields

        def tick(self) -> tuple[int, float] | None:
            elapsed_s, limit_s = self.get_run_time(), getattr(environment.parsed_options, "run_time", None)
            if limit_s and elapsed_s >= limit_s:
                return None
            return plan.tick(elapsed_s, self.get_current_user_count())

        def target_users(self) -> int:
            return plan.users_at(self.get_run_time())

    shape = HarnessShape()
    shape.runner = environment.runner
    return shape
