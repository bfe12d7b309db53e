"""The simulator's own lateness against its latency model: actual minus intended, for everything it does.

Three kinds of samples, each in ns:
- `send`: every frame, its send time minus the moment it was meant to go. A delayed stage is meant
  for its deadline (trigger + delay); any other frame for the moment it became sendable (queued,
  and its lane's previous frame sent: frames of one lane keep their order by design).
- `decision`: every VAD decision, the moment it was handled minus the arrival of the audio that
  completed it.
- `timer`: a probe the event loop runs every few ms, its run time minus its due time. Audio that
  arrives while the loop is busy waits in the socket, unseen by the two kinds above; the probe
  measures exactly that wait, so a starved process cannot look punctual.

Samples go into buckets of 10 us up to 20 ms and of 1 ms above (percentiles exact to the bucket,
maximum exact); summaries from several processes merge by adding buckets. A simulator whose p99 passes the run's limit could not keep its
own latency model: what the caller measured is the simulator's overload, not a target's latency.
"""

from __future__ import annotations

from typing import Any

BUCKET_NS = 10_000
FINE_KEYS = 2000  # 10 us buckets up to 20 ms
COARSE_NS = 1_000_000
MAX_KEY = FINE_KEYS + 60_000  # 1 ms buckets up to a minute; later samples share the last one
KINDS = ("send", "decision", "timer")
PROBE_INTERVAL_S = 0.005


def bucket(late_ns: int) -> int:
    if late_ns < FINE_KEYS * BUCKET_NS:
        return late_ns // BUCKET_NS if late_ns > 0 else 0
    return min(MAX_KEY, FINE_KEYS + (late_ns - FINE_KEYS * BUCKET_NS) // COARSE_NS)


def upper_edge_ns(key: int) -> int:
    if key < FINE_KEYS:
        return (key + 1) * BUCKET_NS
    return FINE_KEYS * BUCKET_NS + (key - FINE_KEYS + 1) * COARSE_NS


class Lateness:
    """Histograms of lateness per kind; `summary()` is JSON-ready and `merge_summaries` adds several."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, int]] = {kind: {} for kind in KINDS}
        self.max_ns: dict[str, int] = {kind: 0 for kind in KINDS}
        self.count: dict[str, int] = {kind: 0 for kind in KINDS}
        self._send = self.buckets["send"]

    def add_send(self, late_ns: int) -> None:
        if late_ns < 20_000_000:
            key = late_ns // BUCKET_NS if late_ns > 0 else 0
        else:
            key = bucket(late_ns)
        buckets = self._send
        buckets[key] = buckets.get(key, 0) + 1
        if late_ns > self.max_ns["send"]:
            self.max_ns["send"] = late_ns

    def add(self, kind: str, late_ns: int) -> None:
        key = bucket(late_ns)
        buckets = self.buckets[kind]
        buckets[key] = buckets.get(key, 0) + 1
        if late_ns > self.max_ns[kind]:
            self.max_ns[kind] = late_ns

    def summary(self) -> dict[str, Any]:
        kinds = {}
        for kind in KINDS:
            buckets = self.buckets[kind]
            kinds[kind] = {"buckets": {str(k): v for k, v in sorted(buckets.items())},
                           "max_ns": max(0, self.max_ns[kind]), "count": sum(buckets.values())}
        return describe({"bucket_ns": BUCKET_NS, "kinds": kinds})


def _percentile_ms(buckets: dict[int, int], total: int, max_ns: int, q: float) -> float:
    rank, seen = q / 100.0 * total, 0
    for key in sorted(buckets):
        seen += buckets[key]
        if seen >= rank:
            return min(upper_edge_ns(key), max_ns) / 1e6
    return max_ns / 1e6


def _stats(buckets: dict[int, int], max_ns: int) -> dict[str, Any]:
    total = sum(buckets.values())
    if not total:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"count": total, "p50_ms": _percentile_ms(buckets, total, max_ns, 50),
            "p99_ms": _percentile_ms(buckets, total, max_ns, 99), "max_ms": max_ns / 1e6}


def describe(raw: dict[str, Any]) -> dict[str, Any]:
    """A summary (buckets per kind) with p50/p99/max over all samples and per kind."""
    kinds = raw.get("kinds") or {}
    pooled: dict[int, int] = {}
    pooled_max = 0
    out: dict[str, Any] = {"bucket_ns": raw.get("bucket_ns", BUCKET_NS), "kinds": {}}
    for kind, data in kinds.items():
        buckets = {int(k): int(v) for k, v in (data.get("buckets") or {}).items()}
        max_ns = int(data.get("max_ns") or 0)
        for key, value in buckets.items():
            pooled[key] = pooled.get(key, 0) + value
        pooled_max = max(pooled_max, max_ns)
        out["kinds"][kind] = {"buckets": {str(k): v for k, v in sorted(buckets.items())}, "max_ns": max_ns,
                              **_stats(buckets, max_ns)}
    out.update(_stats(pooled, pooled_max))
    return out


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary over several processes' summaries (buckets added, maxima taken)."""
    kinds: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        for kind, data in (summary.get("kinds") or {}).items():
            into = kinds.setdefault(kind, {"buckets": {}, "max_ns": 0})
            for key, value in (data.get("buckets") or {}).items():
                into["buckets"][str(key)] = into["buckets"].get(str(key), 0) + int(value)
            into["max_ns"] = max(into["max_ns"], int(data.get("max_ns") or 0))
    merged = describe({"bucket_ns": BUCKET_NS, "kinds": kinds})
    merged["processes"] = len(summaries)
    return merged


def headline(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The few numbers a run shows: count and p50/p99/max in ms, overall and per kind (no buckets)."""
    if not summary:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    out = {key: summary.get(key) for key in ("count", "p50_ms", "p99_ms", "max_ms", "processes") if key in summary}
    out["kinds"] = {kind: {key: data.get(key) for key in ("count", "p50_ms", "p99_ms", "max_ms")}
                    for kind, data in (summary.get("kinds") or {}).items()}
    return out
