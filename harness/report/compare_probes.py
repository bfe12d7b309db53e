"""The probes of two runs side by side (summary.json `probes`): the pause ladder's split share per
pause, the backchannels' cancel share per offset, the noise ladder's false barge-in rate per SNR,
and the endpointing cost. Empty when neither run ran a probe scenario."""

from __future__ import annotations

from typing import Any

# (summary path of the table, its rows' name, the count key) per probe
LADDERS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("pause ladder: turns split inside the pause", ("pause_ladder",), "pause ms", "split"),
    ("backchannels: answers cancelled", ("backchannel", "by_offset_ms"), "offset ms", "cancelled"),
    ("noise ladder: false barge-ins", ("noise_ladder",), "SNR dB", "false_barge_in"),
)


def _table(summary: dict[str, Any] | None, path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = (summary or {}).get("probes") or {}
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _share(row: dict[str, Any] | None, hits: str) -> tuple[str, float | None]:
    if not row or not row.get("turns"):
        return "-", None
    rate = row.get("rate")
    return f"{row.get(hits, 0)}/{row['turns']} ({100 * rate:.0f} %)", rate


def _level_key(level: str) -> float:
    try:
        return float(level)
    except ValueError:
        return float("inf")


def probe_rows(summary_a: dict[str, Any] | None, summary_b: dict[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """(probe, level, A, B, change) rows; change in percentage points when both runs have the level."""
    rows: list[tuple[str, str, str, str, str]] = []
    for title, path, unit, hits in LADDERS:
        table_a, table_b = _table(summary_a, path), _table(summary_b, path)
        for level in sorted(set(table_a) | set(table_b), key=_level_key):
            shown_a, rate_a = _share(table_a.get(level), hits)
            shown_b, rate_b = _share(table_b.get(level), hits)
            change = f"{100 * (rate_b - rate_a):+.0f} pp" if rate_a is not None and rate_b is not None else ""
            rows.append((title, f"{level} {unit}", shown_a, shown_b, change))
    costs = [(_table(s, ("endpointing",)).get("overall") or {}) for s in (summary_a, summary_b)]
    if any(c.get("count") for c in costs):
        shown = [f"{c['mean']:.1f} ms (n={c['count']})" if c.get("count") else "-" for c in costs]
        change = (f"{costs[1]['mean'] - costs[0]['mean']:+.1f} ms" if all(c.get("count") for c in costs) else "")
        rows.append(("endpointing cost (VAD minus manual commit)", "mean", shown[0], shown[1], change))
    return rows
