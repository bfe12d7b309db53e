"""What makes two runs comparable: the settings they share, the gates they passed, the intervals.

`setting_warnings` reads each run's run.json (any field may be missing: a run directory from an
older harness, or one assembled by `harness finalize`; missing is "unknown", never a mismatch)
and `gate_warnings` its summary.json. `interval_row` gives a percentile's bootstrap interval
(`harness.metrics.uncertainty`) or says it is withheld ("n too small").
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from harness.metrics.uncertainty import LEVEL, TOO_FEW, min_count, percentile_interval
from harness.report.run_files import RunFiles

# run.json field -> how a person calls it
COMPARED_SETTINGS = (("corpus", "corpus"), ("corpus_fingerprint", "corpus content"), ("format", "format"),
                     ("dialect", "dialect"), ("users", "users"), ("scenarios", "scenario mix"),
                     ("scenario_params", "scenario parameters"), ("turns", "turns per session"),
                     ("shape", "load shape"), ("simulator", "simulator settings"))


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown(v) for v in value) or "none"
    return str(value)


def _corpus_name(value: Any) -> Any:
    """A corpus is named by its folder: `corpora/default` and `/abs/corpora/default` are the same one."""
    return str(value).rstrip("/").rsplit("/", 1)[-1] if isinstance(value, str) else value


def _differences(name: str, a: Any, b: Any) -> str | None:
    if name == "corpus":
        a, b = _corpus_name(a), _corpus_name(b)
    if json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        changed = [f"{k}: {_shown(a.get(k, 'unset'))} -> {_shown(b.get(k, 'unset'))}" for k in keys
                   if json.dumps(a.get(k), sort_keys=True, default=str) != json.dumps(b.get(k), sort_keys=True, default=str)]
        return "; ".join(changed)
    return f"{_shown(a)} -> {_shown(b)}"


def setting_warnings(a: RunFiles, b: RunFiles) -> tuple[list[str], list[str]]:
    """(warnings for settings both runs recorded and that differ, notes for those either did not record)."""
    warnings, unknown = [], []
    for key, label in COMPARED_SETTINGS:
        in_a, in_b = a.run.get(key), b.run.get(key)
        if in_a is None and in_b is None:
            continue
        if in_a is None or in_b is None:
            unknown.append(f"{label}: unknown in run {'A' if in_a is None else 'B'}")
            continue
        change = _differences(key, in_a, in_b)
        if change:
            warnings.append(f"the runs differ in {label} ({change}): the comparison mixes that change with the target's")
    return warnings, unknown


def gate_warnings(a: RunFiles, b: RunFiles) -> list[str]:
    """One line per run that failed a gate (an SLO, pacing, the simulator's) or did not record its verdict."""
    lines = []
    for name, files in (("A", a), ("B", b)):
        summary = files.summary
        if summary is None:
            lines.append(f"run {name} has no summary.json: whether it passed its gates is unknown")
            continue
        if summary.get("passed", True):
            continue
        failed = [str(s.get("expr")) for s in summary.get("slos") or [] if not s.get("passed")]
        why = "; ".join(summary.get("why") or []) or ", ".join(failed) or "see its report"
        lines.append(f"run {name} FAILED (exit code {summary.get('exit_code')}): {why}")
    return lines


def interval_row(values: np.ndarray, stat: str, level: float = LEVEL) -> tuple[list[float] | None, str | None]:
    """([low, high] of the percentile `stat` (p50...), None) or (None, why it is withheld)."""
    q = float(stat[1:])
    interval = percentile_interval(values, q, level=level)
    if interval is not None:
        return [interval[0], interval[1]], None
    finite = int(np.isfinite(values).sum()) if values.size else 0
    return None, (f"{TOO_FEW} (n={finite} < {min_count(q)})" if finite else "no values")
