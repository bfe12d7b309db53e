"""SLO gates: parse expressions or a TOML file, evaluate them on the exact turn records.

Expressions:
    METRIC:STAT<VALUE          ttfa_ms:p95<1200, vad_commit_ms:p50<=400, barge_in_ms:max<800
    incident_rate:CAUSE<VALUE  incident_rate:false_barge_in<0.01 (CAUSE `any` = all causes)
    timeout_rate<VALUE, error_rate<VALUE
    vad_early_rate<VALUE       also vad_late_rate, vad_missed_rate, vad_ok_rate: over the VAD turns
                               that ran to their end
STAT is p50, p90, p95, p99, max or count; the operator is <, <=, >, >=. A percentile may ask
for its confidence bound instead of its point: `ttfa_ms:p95<1200@95%` holds when the upper bound
of the 95 % bootstrap interval (`harness.metrics.uncertainty`) is under 1200 (the lower bound for
> and >=); below the percentile's minimum count the bound is "n too small" and the SLO fails.
A TOML file holds
`slo = ["ttfa_ms:p95<1200", ...]`. The pacing gate (p99 send lateness under the limit) is
always evaluated, as its own entry.
"""

from __future__ import annotations

import operator
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.metrics import CAUSES, METRICS, VAD_VERDICTS
from harness.metrics.uncertainty import TOO_FEW, min_count, percentile_interval


class SloError(ValueError):
    user_error = True


OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
STATS = ("p50", "p90", "p95", "p99", "max", "count")
VAD_RATES = {f"vad_{verdict}_rate": verdict for verdict in VAD_VERDICTS}
PERCENTILE_STATS = ("p50", "p90", "p95", "p99")
_EXPR = re.compile(r"^\s*([a-z_0-9]+)(?::([a-z_0-9]+))?\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*(?:@\s*([^%\s]*)\s*%)?\s*$")


@dataclass(frozen=True)
class Slo:
    expr: str
    metric: str
    stat: str | None
    op: str
    threshold: float
    level_pct: float | None = None   # `@95%`: judge the interval's bound at this confidence, not the point

    def holds(self, value: float | None) -> bool:
        return value is not None and OPERATORS[self.op](value, self.threshold)


def parse_slo(expr: str) -> Slo:
    match = _EXPR.match(expr)
    if not match:
        raise SloError(f"--slo {expr!r}: not an SLO; write METRIC:STAT<VALUE (e.g. ttfa_ms:p95<1200), "
                       "incident_rate:CAUSE<VALUE or timeout_rate<VALUE (a percentile's bound: ttfa_ms:p95<1200@95%)")
    metric, stat, op, value, level = match.groups()
    try:
        threshold = float(value)
    except ValueError:
        raise SloError(f"--slo {expr!r}: {value!r} is not a number") from None
    if metric in ("timeout_rate", "error_rate", *VAD_RATES):
        if stat is not None:
            raise SloError(f"--slo {expr!r}: {metric} takes no stat; write {metric}<VALUE")
    elif metric == "incident_rate":
        if stat not in (*CAUSES, "any"):
            raise SloError(f"--slo {expr!r}: unknown incident cause {stat!r}; use one of any, {', '.join(CAUSES)}")
    elif metric in METRICS:
        if stat not in STATS:
            raise SloError(f"--slo {expr!r}: unknown stat {stat!r}; use one of {', '.join(STATS)}")
    else:
        raise SloError(f"--slo {expr!r}: unknown metric {metric!r}; use one of {', '.join(METRICS)}, "
                       f"incident_rate, timeout_rate, error_rate, {', '.join(VAD_RATES)}")
    return Slo(expr.strip(), metric, stat, op, threshold, _level(expr, metric, stat, level))


def _level(expr: str, metric: str, stat: str | None, level: str | None) -> float | None:
    if level is None:
        return None
    if metric not in METRICS or stat not in PERCENTILE_STATS:
        raise SloError(f"--slo {expr!r}: a confidence level (@95%) applies only to a percentile "
                       f"({', '.join(PERCENTILE_STATS)}) of a metric, e.g. ttfa_ms:p95<1200@95%")
    try:
        pct = float(level)
    except ValueError:
        pct = float("nan")
    if not 50 <= pct < 100:
        raise SloError(f"--slo {expr!r}: confidence level {level!r}% is not a number from 50 to below 100; "
                       "write e.g. @95%")
    return pct


def load_slos(items: list[str]) -> list[Slo]:
    """Each item is an expression or the path of a TOML file with `slo = [...]`."""
    slos: list[Slo] = []
    for item in items:
        if item.endswith(".toml") or Path(item).is_file():
            path = Path(item)
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise SloError(f"--slo {item}: cannot read the file ({exc.strerror})") from None
            except tomllib.TOMLDecodeError as exc:
                raise SloError(f"--slo {item}: not valid TOML ({exc}); write slo = [\"ttfa_ms:p95<1200\"]") from None
            exprs = data.get("slo")
            if not isinstance(exprs, list) or not all(isinstance(e, str) for e in exprs):
                raise SloError(f"--slo {item}: needs a list `slo = [\"ttfa_ms:p95<1200\", ...]`")
            slos.extend(parse_slo(e) for e in exprs)
        else:
            slos.append(parse_slo(item))
    return slos


def slo_value(slo: Slo, summary: dict[str, Any]) -> float | None:
    turns = summary["turns"]
    total = turns["total"]
    if slo.metric == "timeout_rate":
        return turns["timeout"] / total if total else None
    if slo.metric == "error_rate":
        return turns["error"] / total if total else None
    if slo.metric in VAD_RATES:
        return summary["vad"]["by_verdict"][VAD_RATES[slo.metric]]["rate"]
    if slo.metric == "incident_rate":
        incidents = summary["incidents"]
        return incidents["rate"] if slo.stat == "any" else incidents["by_cause"][slo.stat]["rate"]
    return summary["metrics"][slo.metric][slo.stat]


def slo_bound(slo: Slo, summary: dict[str, Any], records: list[dict[str, Any]] | None) -> tuple[float | None, str | None]:
    """(the interval's bound an `@NN%` SLO judges, a note); the upper bound for < and <=, the lower for > and >=.

    The summary's own interval when its level matches, else one computed from the records."""
    assert slo.level_pct is not None and slo.stat is not None
    upper = slo.op in ("<", "<=")
    block = summary["metrics"][slo.metric]
    ci = block.get("ci") or {}
    q = float(slo.stat[1:])
    level = float((summary.get("uncertainty") or {}).get("level") or 0)
    if ci and abs(level * 100 - slo.level_pct) < 1e-9:
        interval = ci.get(slo.stat)
    elif records is not None:
        interval = percentile_interval((r.get(slo.metric) for r in records), q, level=slo.level_pct / 100)
    else:
        return None, f"no records to compute the {slo.level_pct:g} % interval from"
    if interval is None:
        count = int(block.get("count") or 0)
        return None, f"{TOO_FEW} (n={count} < {min_count(q)})" if count else "no values"
    bound = interval[1] if upper else interval[0]
    return float(bound), f"{'upper' if upper else 'lower'} bound of the {slo.level_pct:g} % interval"


def evaluate(slos: list[Slo], summary: dict[str, Any], records: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each SLO's value and verdict; `records` (the run's turn records) serve `@NN%` levels other than
    the summary's own (95 %)."""
    results = []
    for slo in slos:
        note = None
        if slo.level_pct is None:
            value = slo_value(slo, summary)
        else:
            value, note = slo_bound(slo, summary, records)
        result = {"expr": slo.expr, "metric": slo.metric, "stat": slo.stat, "op": slo.op,
                  "threshold": slo.threshold, "value": value, "passed": slo.holds(value)}
        if slo.level_pct is not None:
            result.update(level_pct=slo.level_pct, point=slo_value(slo, summary), note=note)
        results.append(result)
    return results
