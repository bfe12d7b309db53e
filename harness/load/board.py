"""The running test's exact figures, kept as turns end, for the web UI's Realtime tab.

Each turn record adds its values to sorted lists (`bisect.insort`: no sort, no numpy in the
load process), so a percentile is an index lookup and the board's rows cost microseconds at any
turn count. Percentiles are numpy's linear ones (`harness.metrics.quantiles.linear`), the same the
run directory's `summary.json` holds; pacing merges the sessions' 10 us lateness buckets the way
the pacing gate does (`harness.rundir.pacing_of`). One board per test: `reset` at each start.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from typing import Any, Iterable

from harness.metrics import quantiles
from harness.rundir import pacing_of

PERCENTILES = (50, 95, 99)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


class LiveBoard:
    def __init__(self, metrics: Iterable[str]) -> None:
        self.metrics = tuple(metrics)
        self._lock = threading.Lock()
        self.reset("", "")

    def reset(self, run_id: str, out: str, pacing_limit_ms: float = 5.0) -> None:
        with self._lock:
            self.run_id, self.out, self.pacing_limit_ms = run_id, out, pacing_limit_ms
            self.values: dict[str, list[float]] = {m: [] for m in self.metrics}
            self.statuses: Counter[str] = Counter()
            self.incidents: Counter[str] = Counter()
            self.buckets: dict[int, int] = {}
            self.max_ns: int | None = None
            self.sessions = 0
            self.message = ""   # why the test could not start, or how it ended

    def add_turn(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.statuses[str(record.get("status"))] += 1
            if record.get("incident"):
                self.incidents[str(record["incident"])] += 1
            for metric in self.metrics:
                value = record.get(metric)
                if isinstance(value, (int, float)):
                    bisect.insort(self.values[metric], float(value))

    def add_session(self, session: dict[str, Any]) -> None:
        lateness = session.get("lateness") or {}
        with self._lock:
            self.sessions += 1
            for key, count in (lateness.get("buckets") or {}).items():
                self.buckets[int(key)] = self.buckets.get(int(key), 0) + int(count)
            if lateness.get("max_ns") is not None:
                self.max_ns = max(self.max_ns or 0, int(lateness["max_ns"]))

    def pacing(self) -> dict[str, Any]:
        with self._lock:
            merged = {"lateness": {"buckets": dict(self.buckets), "max_ns": self.max_ns}}
        return pacing_of([merged], self.pacing_limit_ms)

    def rows(self) -> list[dict[str, str]]:
        """The Realtime tab's table: one row per metric (exact percentiles), then turns, incidents,
        pacing and the sessions ended with the run's id and directory."""
        rows = []
        with self._lock:
            for metric in self.metrics:
                values = self.values[metric]
                cells = {f"p{q}": _fmt(quantiles.linear(values, q)) if values else "" for q in PERCENTILES}
                rows.append({"name": metric, "count": str(len(values)), **cells, "detail": "ms, exact"})
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
            incidents = ", ".join(f"{k} {v}" for k, v in sorted(self.incidents.items())) or "none"
            total, n_incidents = sum(self.statuses.values()), sum(self.incidents.values())
            rows.append({"name": "turns", "count": str(total), "detail": statuses or "none yet"})
            rows.append({"name": "incidents", "count": str(n_incidents), "detail": incidents})
        pacing = self.pacing()
        verdict = "" if pacing["p99_ms"] is None else ("within" if pacing["passed"] else "OVER")
        rows.append({"name": "pacing (send lateness ms)", "count": str(pacing["appends"]),
                     "p50": _fmt(pacing["p50_ms"]), "p99": _fmt(pacing["p99_ms"]),
                     "detail": f"{verdict} the {pacing['limit_ms']:g} ms limit" if verdict else "no audio sent yet"})
        rows.append({"name": "sessions ended", "count": str(self.sessions), "detail": "; ".join(
            part for part in (f"run {self.run_id}", f"dir {self.out}", self.message) if part)})
        return rows

    def snapshot(self) -> dict[str, Any]:
        """The board as JSON (the web UI's /realtime route)."""
        with self._lock:
            counts = {"turns": dict(self.statuses), "incidents": dict(self.incidents), "sessions": self.sessions}
            percentiles = {m: {f"p{q}": quantiles.linear(v, q) for q in PERCENTILES} | {"count": len(v)}
                           for m, v in self.values.items() if v}
            ident = {"run_id": self.run_id, "out": self.out, "message": self.message}
        return {**ident, **counts, "percentiles": percentiles, "pacing": self.pacing()}
